//! How bytes move between ranks. One small trait, [`Transport`], is the whole contract;
//! `local` (ranks as threads) implements it now, `mpi` next. Every collective in `ops` is
//! written once on top of [`Transport::exchange`].
//!
//! A transport never does arithmetic: ops receive the peers' bytes and combine them in
//! a fixed order, so every transport gives the same bits.

pub mod local;
#[cfg(feature = "mpi")]
pub mod mpi;

use std::fmt;

use crate::tensor::Dtype;
use crate::{Error, Result};

/// Which collective a call is; ranks must agree on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `barrier`
    Barrier,
    /// `broadcast`
    Broadcast,
    /// `allreduce`
    Allreduce,
    /// `allgather`
    Allgather,
    /// `neighbor_allreduce`
    NeighborAllreduce,
    /// `neighbor_allgather`
    NeighborAllgather,
    /// `pair_gossip`
    PairGossip,
    /// `set_topology`
    SetTopology,
    /// `hierarchical_neighbor_allreduce`
    HierarchicalNeighborAllreduce,
    /// `gather_bytes` (e.g. metrics to rank 0)
    Gather,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Barrier => "barrier",
            Op::Broadcast => "broadcast",
            Op::Allreduce => "allreduce",
            Op::Allgather => "allgather",
            Op::NeighborAllreduce => "neighbor_allreduce",
            Op::NeighborAllgather => "neighbor_allgather",
            Op::PairGossip => "pair_gossip",
            Op::SetTopology => "set_topology",
            Op::HierarchicalNeighborAllreduce => "hierarchical_neighbor_allreduce",
            Op::Gather => "gather",
        })
    }
}

/// What a rank says it is calling. All ranks' `CallInfo`s of one call are compared.
#[derive(Clone, Debug, PartialEq)]
pub struct CallInfo {
    /// The collective.
    pub op: Op,
    /// Element type (`None` for calls that carry no data).
    pub dtype: Option<Dtype>,
    /// Elements this rank contributes.
    pub len: usize,
    /// Whether all ranks must contribute the same number of elements.
    pub same_len: bool,
    /// Root rank, for rooted collectives; a sub-kind (e.g. the reduction) otherwise.
    pub root: Option<usize>,
    /// Detail that must match across ranks (reduction op, topology fingerprint...).
    pub tag: u64,
}

impl CallInfo {
    /// A call with no data.
    pub fn bare(op: Op) -> Self {
        CallInfo {
            op,
            dtype: None,
            len: 0,
            same_len: true,
            root: None,
            tag: 0,
        }
    }
}

impl fmt::Display for CallInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        match (self.dtype, self.root) {
            (Some(d), Some(r)) => write!(f, "({d} x {}, root {r})", self.len)?,
            (Some(d), None) => write!(f, "({d} x {})", self.len)?,
            (None, Some(r)) => write!(f, "({} bytes, root {r})", self.len)?,
            (None, None) => {}
        }
        Ok(())
    }
}

/// One rank's part in a call, as seen by the consistency check.
pub struct Posted<'a> {
    /// What it called.
    pub info: &'a CallInfo,
    /// Ranks it sends to.
    pub send_to: Vec<usize>,
    /// Ranks it receives from.
    pub recv_from: &'a [usize],
}

/// Checks that all ranks' parts of call number `call` fit together: same op, data type,
/// root and tag; same length where required; every receive matched by a send and the
/// reverse. The error names the first two ranks that disagree and what each called.
pub fn check_consistent(call: u64, posts: &[Posted<'_>]) -> Result<()> {
    let n = posts.len();
    let first = &posts[0];
    for (r, p) in posts.iter().enumerate().skip(1) {
        let a = first.info;
        let b = p.info;
        let what = if a.op != b.op || a.dtype != b.dtype || a.root != b.root {
            Some(String::new())
        } else if a.tag != b.tag {
            Some(match a.op {
                Op::SetTopology
                | Op::NeighborAllreduce
                | Op::NeighborAllgather
                | Op::HierarchicalNeighborAllreduce => " with a different topology".to_string(),
                Op::Allreduce => " with a different reduction".to_string(),
                _ => " with different options".to_string(),
            })
        } else if a.same_len && a.len != b.len {
            Some(" with a different length".to_string())
        } else {
            None
        };
        if let Some(why) = what {
            return Err(Error::Mismatch {
                call,
                detail: format!("rank 0 called {a} but rank {r} called {b}{why}"),
            });
        }
    }
    for (i, p) in posts.iter().enumerate() {
        let mut seen = vec![false; n];
        for &j in p.recv_from {
            if j >= n || j == i {
                return Err(Error::Mismatch {
                    call,
                    detail: format!(
                        "rank {i} in {} expected to receive from another rank below {n}, found {j}",
                        p.info.op
                    ),
                });
            }
            if std::mem::replace(&mut seen[j], true) {
                return Err(Error::Mismatch {
                    call,
                    detail: format!("rank {i} in {} lists source rank {j} twice", p.info.op),
                });
            }
            if !posts[j].send_to.contains(&i) {
                return Err(Error::Mismatch {
                    call,
                    detail: format!(
                        "rank {i} in {} expects data from rank {j}, but rank {j} sends to {:?}",
                        p.info.op, posts[j].send_to
                    ),
                });
            }
        }
        for &j in &p.send_to {
            if j >= n || j == i || !posts[j].recv_from.contains(&i) {
                return Err(Error::Mismatch {
                    call,
                    detail: format!(
                        "rank {i} in {} sends to rank {j}, but rank {j} receives from {:?}",
                        p.info.op,
                        posts
                            .get(j)
                            .map(|q| q.recv_from.to_vec())
                            .unwrap_or_default()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Receives pieces of the incoming buffers: `visit(offset, bufs)` gives bytes
/// `offset..offset + bufs[k].len()` of the message from `recv_from[k]`, for every `k`.
/// A transport may call it once with whole buffers (offset 0) or several times with
/// consecutive pieces of equal-length messages, so that work starts while data arrives.
pub type Visit<'a> = dyn FnMut(usize, &[&[u8]]) -> Result<()> + 'a;

/// The seam between collectives and the wire.
///
/// One primitive: every rank calls [`exchange`](Transport::exchange) for its k-th
/// collective, says what it calls, what it sends to whom and whom it receives from; the
/// transport checks that all ranks' calls fit ([`check_consistent`]), delivers, and hands
/// the received buffers (in `recv_from` order) to `visit` (see [`Visit`]). A barrier is
/// an exchange with nothing to send.
pub trait Transport: Send + Sync {
    /// This rank, `0..size`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// One collective step (see the trait docs). Blocks until the step is done on this
    /// rank; errors (never hangs) when the ranks' calls do not fit, a peer is gone, or the
    /// timeout passes.
    fn exchange(
        &self,
        info: &CallInfo,
        sends: &[(usize, &[u8])],
        recv_from: &[usize],
        visit: &mut Visit<'_>,
    ) -> Result<()>;
    /// Short name for messages and benchmarks (`"local"`, `"mpi"`).
    fn name(&self) -> &'static str;
    /// The name and how data moves, for people reading logs.
    fn describe(&self) -> String {
        self.name().to_string()
    }
    /// This rank's machine and its place there.
    fn machine(&self) -> Machine {
        Machine::single(self.rank(), self.size())
    }
}

/// Where a rank runs: ranks sharing a machine (a host, or a group the local transport
/// emulates) and the machines of the job. Machines hold equally many ranks, numbered
/// consecutively: rank = machine_rank * local_size + local_rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Rank among the ranks of this machine.
    pub local_rank: usize,
    /// Ranks on this machine.
    pub local_size: usize,
    /// Index of this machine.
    pub machine_rank: usize,
    /// Number of machines.
    pub machine_size: usize,
}

impl Machine {
    /// All ranks on one machine.
    pub fn single(rank: usize, size: usize) -> Self {
        Machine {
            local_rank: rank,
            local_size: size,
            machine_rank: 0,
            machine_size: 1,
        }
    }

    /// `size` ranks grouped into machines of `local_size` consecutive ranks; errors when
    /// `local_size` does not divide `size`.
    pub fn grouped(rank: usize, size: usize, local_size: usize) -> Result<Self> {
        if local_size == 0 || size % local_size != 0 {
            return Err(Error::InvalidArgument(format!(
                "ranks per machine must divide the {size} ranks, found {local_size}"
            )));
        }
        Ok(Machine {
            local_rank: rank % local_size,
            local_size,
            machine_rank: rank / local_size,
            machine_size: size / local_size,
        })
    }
}
