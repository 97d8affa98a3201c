//! The fixed-size descriptor of one rank's call, for transports that ship calls over a
//! wire before any data moves (`mpi`): the call number, the [`CallInfo`] and the send and
//! receive sets as bit masks, in `u64` words. Decoding never guesses: an op code the
//! receiver does not know, or a data type code it cannot read, is [`Error::Mismatch`].

use super::{CallInfo, OpId};
use crate::tensor::Dtype;
use crate::{Error, Result};

/// Words before the two rank masks.
const HEAD: usize = 7;

/// Words in the descriptor of a job of `n` ranks.
pub fn words(n: usize) -> usize {
    HEAD + 2 * n.div_ceil(64)
}

/// One rank's call as decoded from its descriptor.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded<O> {
    /// The sender's call number.
    pub call: u64,
    /// What it called.
    pub info: CallInfo<O>,
    /// Ranks it sends to, ascending.
    pub send_to: Vec<usize>,
    /// Ranks it receives from, ascending.
    pub recv_from: Vec<usize>,
}

/// The descriptor of call number `call` in a job of `n` ranks.
///
/// ```
/// use fogkit::ops::Op;
/// use fogkit::transport::{descriptor, CallInfo};
/// let info = CallInfo::bare(Op::Barrier);
/// let d = descriptor::encode(7, &info, &[1], &[2], 4);
/// let back = descriptor::decode::<Op>(&d, 4, 0).unwrap();
/// assert_eq!((back.call, back.info, back.send_to, back.recv_from), (7, info, vec![1], vec![2]));
/// ```
pub fn encode<O: OpId>(
    call: u64,
    info: &CallInfo<O>,
    send_to: &[usize],
    recv_from: &[usize],
    n: usize,
) -> Vec<u64> {
    let masks = n.div_ceil(64);
    let mut d = vec![0u64; words(n)];
    d[0] = call;
    d[1] = u64::from(info.op.code());
    d[2] = match info.dtype {
        None => 0,
        Some(Dtype::F32) => 1,
        Some(Dtype::F64) => 2,
    };
    d[3] = info.len as u64;
    d[4] = info.same_len as u64;
    d[5] = info.root.map_or(0, |r| r as u64 + 1);
    d[6] = info.tag;
    for (base, ranks) in [(HEAD, send_to), (HEAD + masks, recv_from)] {
        for &r in ranks.iter().filter(|&&r| r < n) {
            d[base + r / 64] |= 1 << (r % 64);
        }
    }
    d
}

/// Reads the descriptor `d` that rank `from` sent, in a job of `n` ranks.
pub fn decode<O: OpId>(d: &[u64], n: usize, from: usize) -> Result<Decoded<O>> {
    let bad = |detail: String| Error::Mismatch { call: d[0], detail };
    if d.len() != words(n) {
        return Err(Error::Mismatch {
            call: d.first().copied().unwrap_or(0),
            detail: format!(
                "expected a call descriptor of {} words from rank {from}, found {}",
                words(n),
                d.len()
            ),
        });
    }
    let code = u16::try_from(d[1]).ok();
    let op = code.and_then(O::from_code).ok_or_else(|| {
        bad(format!(
            "rank {from} called op code {}, which this rank's fogkit does not know \
             (are all ranks running the same build?)",
            d[1]
        ))
    })?;
    let dtype = match d[2] {
        0 => None,
        1 => Some(Dtype::F32),
        2 => Some(Dtype::F64),
        other => {
            return Err(bad(format!(
                "rank {from} called {op} with data type code {other}, which this rank does not know"
            )))
        }
    };
    let masks = n.div_ceil(64);
    let bits = |base: usize| -> Vec<usize> {
        (0..n)
            .filter(|&r| d[base + r / 64] >> (r % 64) & 1 == 1)
            .collect()
    };
    Ok(Decoded {
        call: d[0],
        info: CallInfo {
            op,
            dtype,
            len: d[3] as usize,
            same_len: d[4] != 0,
            root: d[5].checked_sub(1).map(|r| r as usize),
            tag: d[6],
        },
        send_to: bits(HEAD),
        recv_from: bits(HEAD + masks),
    })
}
