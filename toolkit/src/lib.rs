//! # fogkit
//!
//! Decentralized optimization and deep learning for Rust: what BlueFog is for Python.
//! Ranks exchange values with their neighbours over a topology; optimizers built on that
//! (DSGD, DmSGD, DecentLaM, ...) train dfdx models. Ranks are threads of one process by
//! default (nothing to install), or processes under `mpirun`.
//!
//! The talk's decentralized gradient descent, three lines per iteration:
//! ```
//! use fogkit::prelude::*;
//! // Each rank i holds f_i(x) = (x - b_i)^2 / 2 with b_i = i; the optimum is mean(b).
//! let xs = fogkit::run(8, |bf| {
//!     bf.set_topology(topology::exponential_two(bf.size()))?;
//!     let (b, gamma) = (bf.rank() as f64, 0.1);
//!     let mut x = vec![0.0];
//!     for _ in 0..400 {
//!         let grad = x[0] - b;                      // local gradient
//!         let y = vec![x[0] - gamma * grad];        // local update
//!         x = bf.neighbor_allreduce(&y)?;           // partial averaging
//!     }
//!     Ok(x[0])
//! })
//! .unwrap();
//! // `run` returns each rank's result as `Ranks`: every rank's in-process (as here);
//! // under mpirun each process holds its own rank's.
//! let xs = xs.into_vec().unwrap();
//! let mean = xs.iter().sum::<f64>() / 8.0;
//! assert!((mean - 3.5).abs() < 1e-9); // the ranks' average sits at the optimum
//! ```
//!
//! Modules, one idea each; arrows point down (`optim` over `ops` over `transport` over
//! `topology`): [`optim`] (the talk's optimizers) over [`ops`] (collectives written once,
//! and their per-rank engine [`ops::Comm`], which [`Fog`] fronts) over [`transport`] (how
//! bytes move; [`transport::connect`] chooses one) over [`topology`] (pure math). Beside
//! them: [`launch`] ([`run`] and `fogrun`), [`tensor`] (what can be communicated),
//! [`timeline`] (Chrome traces of every op), [`nn`], [`train`], [`data`], and three
//! modules behind features: `metrics` (polars frames; feature `frames`), `plot` (plotly
//! figures; feature `figures`) and `progress` (progress bars; feature `progress`). The
//! feature `metrics` turns on all three.

#![warn(missing_docs)]

pub mod data;
mod error;
pub mod experiments;
mod fog;
pub mod launch;
mod linalg;
#[cfg(feature = "frames")]
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod optim;
#[cfg(feature = "figures")]
pub mod plot;
#[cfg(feature = "progress")]
pub mod progress;
pub mod tensor;
pub mod timeline;
pub mod topology;
pub mod train;
pub mod transport;

pub use error::{Error, Result};
pub use fog::Fog;
pub use launch::{
    init, init_with, launched_by_mpirun, launched_size, run, run_with, Config, Ranks,
};

/// Re-exported so notebooks and programs need not name dfdx separately.
pub use dfdx;
/// Re-exported (feature `figures`) so notebooks can name figure types.
#[cfg(feature = "figures")]
pub use plotly;
/// Re-exported (feature `frames`) so notebooks can name frame types.
#[cfg(feature = "frames")]
pub use polars;
/// Re-exported so programs can mark their own timeline spans (`fogkit::tracing::info_span!`).
pub use tracing;

/// Everything a rank's code usually needs.
pub mod prelude {
    #[cfg(feature = "frames")]
    pub use crate::metrics::{FrameDisplay, Metrics};
    pub use crate::ops::{Handle, NeighborWeights, ReduceOp};
    #[cfg(all(feature = "frames", feature = "figures"))]
    pub use crate::plot::Convergence;
    pub use crate::tensor::{Communicable, Element};
    pub use crate::topology::{self, Topology};
    pub use crate::{run, run_with, Config, Error, Fog, Ranks};
    #[cfg(feature = "frames")]
    pub use polars::prelude::{col, lit, DataFrame, IntoLazy};
}
