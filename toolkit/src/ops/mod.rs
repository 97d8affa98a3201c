//! Collectives, written once over any [`Transport`](crate::transport::Transport): barrier,
//! broadcast, allreduce, allgather, neighbor_allreduce (static topology or per-call
//! weights), neighbor_allgather, pair_gossip, hierarchical_neighbor_allreduce, and their
//! nonblocking forms; and windows ([`Window`]: one-sided put, get, accumulate and update
//! over the transport's second seam, blocking and nonblocking).
//!
//! `ops` owns its engine, [`Comm`]: one per rank, holding the transport, the topologies
//! and the queue of nonblocking work (as data: which op, which buffers, which weights).
//! [`Fog`](crate::Fog) is a facade over it. Every call is a `tracing` span named after its
//! [`Op`], with the transport's phases inside (the timeline).
//!
//! Each collective takes anything [`Communicable`](crate::tensor::Communicable): `f32`/`f64`
//! slices, `Vec`s, arrays and dfdx tensors of any shape, and returns the same kind of
//! value (a `Vec` for a slice).

mod blocking;
mod core;
mod counted;
mod engine;
mod hierarchical;
mod kernel;
mod nonblocking;
mod op;
mod queue;
mod weights;
mod window;

pub use engine::Comm;
pub use kernel::ReduceOp;
pub use nonblocking::Handle;
pub(crate) use nonblocking::{Owned, Pending};
pub use op::Op;
pub use weights::NeighborWeights;
pub use window::{WinMutex, Window};

/// The transport as ops see it.
pub(crate) type Wire = dyn crate::transport::Transport<Op>;
