//! fogkit's window cores, compiled alone so that Miri checks them (its data-race detector
//! over real threads, its checks of every pointer): the local transport's regions behind
//! their locks (`toolkit/src/transport/local/window.rs`) and the MPI transport's
//! shared-memory regions behind lock words (`toolkit/src/transport/mpi/shared_window.rs`),
//! with the seam they implement (`toolkit/src/transport/window.rs`). The files are
//! fogkit's own, included here by path; this crate adds only the two error variants they
//! use, and the tests.
//!
//! `tests/run-all.sh` runs `cargo +nightly miri test -p fogkit-window-core`; plain
//! `cargo test` runs the same tests natively.

// The seam is included whole; only what the tests reach is used.
#![allow(dead_code)]

#[path = "../../../toolkit/src/transport/window.rs"]
mod seam;

#[path = "../../../toolkit/src/transport/local/window.rs"]
mod local_window;

#[path = "../../../toolkit/src/transport/mpi/shared_window.rs"]
mod shared_window;

/// The module paths the included files name.
mod transport {
    pub(crate) use super::seam as window;
}

/// The errors the included files return (the same variants and messages as fogkit's).
#[derive(Debug)]
pub enum Error {
    /// A bad argument.
    InvalidArgument(String),
    /// Another rank is gone or stuck.
    PeerLost {
        /// The rank reporting.
        rank: usize,
        /// What it was doing.
        op: String,
        /// What happened.
        reason: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidArgument(s) => write!(f, "invalid argument: {s}"),
            Error::PeerLost { rank, op, reason } => {
                write!(f, "rank {rank} cannot finish {op}: {reason}")
            }
        }
    }
}

/// fogkit's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests;
