//! How bytes move between ranks. The whole contract is [`Transport`]: one primitive,
//! [`exchange`](Transport::exchange), on which every collective in `ops` is written once.
//!
//! A transport never does arithmetic and never lists the collectives: ops name their calls
//! with their own op type (any [`OpId`]), and receive the peers' bytes to combine in a
//! fixed order, so every transport gives the same bits. A transport must check that all
//! ranks' calls fit ([`check_consistent`]) before any data moves, and must fail, never
//! hang, when a peer is gone or late.
//!
//! Transports, one folder each: [`local`] (ranks are threads of this process, the embedded
//! default) and `mpi` (feature `mpi`: one rank per process under `mpirun`). [`connect`] is
//! the one place that chooses between them. Adding a transport (TCP, NCCL, ...) is:
//! 1. a folder `transport/NAME/` with a type implementing [`Transport`] (a transport that
//!    ships call descriptors over a wire uses [`descriptor`] for their codec, and
//!    [`check_consistent`] on what it decodes);
//! 2. one arm in [`connect`] saying when it is chosen;
//! 3. for windows, an implementation of [`OneSided`] (the second seam, [`window`]),
//!    returned by [`Transport::one_sided`].

mod check;
pub mod descriptor;
pub mod local;
mod machine;
#[cfg(feature = "mpi")]
pub mod mpi;
mod select;
pub mod window;

use std::fmt;

pub use check::{check_consistent, Posted};
pub use machine::Machine;
pub use select::{connect, launched_by_mpirun, launched_size, Want};
pub use window::{OneSided, Region};

use crate::tensor::Dtype;
use crate::Result;

/// The identity of a collective, as the layer above defines it (`crate::ops::Op`): a
/// transport compares, names and ships ops but never lists them.
pub trait OpId: Copy + Eq + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The op's stable code on the wire.
    fn code(self) -> u16;
    /// The op with this code, or `None` for a code this build does not know.
    fn from_code(code: u16) -> Option<Self>;
    /// What a different [`CallInfo::tag`] means for this op, for mismatch messages
    /// (e.g. `"a different topology"`).
    fn tag_meaning(self) -> &'static str;
}

/// What a rank says it is calling. All ranks' `CallInfo`s of one call are compared.
#[derive(Clone, Debug, PartialEq)]
pub struct CallInfo<O> {
    /// The collective.
    pub op: O,
    /// Element type (`None` for calls that carry no data).
    pub dtype: Option<Dtype>,
    /// Elements this rank contributes (bytes when `dtype` is `None`).
    pub len: usize,
    /// Whether all ranks must contribute the same number of elements.
    pub same_len: bool,
    /// Root rank, for rooted collectives.
    pub root: Option<usize>,
    /// Detail that must match across ranks (reduction op, topology fingerprint...).
    pub tag: u64,
}

impl<O> CallInfo<O> {
    /// A call with no data.
    pub fn bare(op: O) -> Self {
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

impl<O: fmt::Display> fmt::Display for CallInfo<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        match (self.dtype, self.root) {
            (Some(d), Some(r)) => write!(f, "({d} x {}, root {r})", self.len),
            (Some(d), None) => write!(f, "({d} x {})", self.len),
            (None, Some(r)) => write!(f, "({} bytes, root {r})", self.len),
            (None, None) => Ok(()),
        }
    }
}

/// Receives pieces of the incoming buffers: `visit(offset, bufs)` gives bytes
/// `offset..offset + bufs[k].len()` of the message from `recv_from[k]`, for every `k`.
/// A transport may call it once with whole buffers (offset 0) or several times with
/// consecutive pieces of equal-length messages, so that work starts while data arrives.
pub type Visit<'a> = dyn FnMut(usize, &[&[u8]]) -> Result<()> + 'a;

/// How a rank left `run`'s closure, told to its transport so that peers waiting for it
/// fail instead of hanging.
#[derive(Clone, Debug)]
pub enum Exit {
    /// Returned a value.
    Returned,
    /// Returned an error (peers still in a call with it fail when they notice).
    Failed(String),
    /// Panicked: every peer's current and later calls fail at once.
    Panicked(String),
}

/// The seam between collectives and the wire.
///
/// Every rank calls [`exchange`](Transport::exchange) for its k-th collective, saying what
/// it calls, what it sends to whom and whom it receives from; the transport checks that
/// all ranks' calls fit ([`check_consistent`]), delivers, and hands the received buffers
/// (in `recv_from` order) to `visit` (see [`Visit`]). A barrier is an exchange with
/// nothing to send. Transports emit the phases of a call as `tracing` spans named
/// `check`, `wait_peers`, `transfer`, `reduce` and `wait_readers` (the timeline shows
/// them).
pub trait Transport<O: OpId>: Send + Sync {
    /// This rank, `0..size`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// One collective step (see the trait docs). Blocks until the step is done on this
    /// rank; errors (never hangs) when the ranks' calls do not fit, a peer is gone, or the
    /// timeout passes.
    fn exchange(
        &self,
        info: &CallInfo<O>,
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
    /// One-sided access to windows (the second seam, [`OneSided`]), where this
    /// transport has it.
    fn one_sided(&self) -> Option<&dyn OneSided> {
        None
    }
    /// Called once when this rank leaves `run`'s closure. A transport whose ranks live in
    /// other processes may end the whole job here on a failure (it does not return then).
    fn leave(&self, exit: &Exit);
}
