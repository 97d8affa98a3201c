//! The consistency check every transport runs before data moves: all ranks' parts of one
//! call must fit together. It only compares; it never blocks.

use super::{CallInfo, OpId};
use crate::{Error, Result};

/// One rank's part in a call, as seen by the consistency check.
pub struct Posted<'a, O> {
    /// What it called.
    pub info: &'a CallInfo<O>,
    /// Ranks it sends to.
    pub send_to: Vec<usize>,
    /// Ranks it receives from.
    pub recv_from: &'a [usize],
}

fn mismatch(call: u64, detail: String) -> Error {
    Error::Mismatch { call, detail }
}

/// Checks that all ranks' parts of call number `call` fit together: same op, data type,
/// root and tag; same length where required; every receive matched by a send and the
/// reverse. The error names the first two ranks that disagree and what each called.
pub fn check_consistent<O: OpId>(call: u64, posts: &[Posted<'_, O>]) -> Result<()> {
    let n = posts.len();
    let Some(first) = posts.first() else {
        return Ok(());
    };
    for (r, p) in posts.iter().enumerate().skip(1) {
        let (a, b) = (first.info, p.info);
        let why = if a.op != b.op || a.dtype != b.dtype || a.root != b.root {
            Some(String::new())
        } else if a.tag != b.tag {
            Some(format!(" with {}", a.op.tag_meaning()))
        } else if a.same_len && a.len != b.len {
            Some(" with a different length".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(mismatch(
                call,
                format!("rank 0 called {a} but rank {r} called {b}{why}"),
            ));
        }
    }
    for (i, p) in posts.iter().enumerate() {
        let op = p.info.op;
        let mut seen = vec![false; n];
        for &j in p.recv_from {
            if j >= n || j == i {
                return Err(mismatch(
                    call,
                    format!(
                        "rank {i} in {op} expected to receive from another rank below {n}, found {j}"
                    ),
                ));
            }
            if std::mem::replace(&mut seen[j], true) {
                return Err(mismatch(
                    call,
                    format!("rank {i} in {op} lists source rank {j} twice"),
                ));
            }
            if !posts[j].send_to.contains(&i) {
                return Err(mismatch(
                    call,
                    format!(
                        "rank {i} in {op} expects data from rank {j}, but rank {j} sends to {:?}",
                        posts[j].send_to
                    ),
                ));
            }
        }
        for &j in &p.send_to {
            if j >= n || j == i || !posts[j].recv_from.contains(&i) {
                let receives = posts.get(j).map(|q| q.recv_from.to_vec());
                return Err(mismatch(
                    call,
                    format!(
                        "rank {i} in {op} sends to rank {j}, but rank {j} receives from {:?}",
                        receives.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    Ok(())
}
