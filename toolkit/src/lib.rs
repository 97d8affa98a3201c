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
//! let xs = fogkit::run(8, |bf: &Fog| -> fogkit::Result<f64> {
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
//! let mean = xs.iter().sum::<f64>() / 8.0;
//! assert!((mean - 3.5).abs() < 1e-9);
//! ```
//!
//! Modules, one idea each (arrows point down): `ops` (collectives, written once) over
//! [`transport`] (how bytes move) over [`topology`] (pure math); beside them [`tensor`]
//! (what can be communicated).

pub mod data;
mod error;
pub mod experiments;
mod fog;
pub mod launch;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod optim;
#[cfg(feature = "metrics")]
pub mod plot;
#[cfg(feature = "metrics")]
pub mod progress;
pub mod tensor;
pub mod topology;
pub mod train;
pub mod transport;

pub use error::{Error, Result};
pub use fog::{run, run_with, Config, Fog};
pub use launch::{launched_by_mpirun, launched_size};

/// Re-exported so notebooks and programs need not name dfdx separately.
pub use dfdx;
/// Re-exported (feature `metrics`) so notebooks can name frame and figure types.
#[cfg(feature = "metrics")]
pub use plotly;
#[cfg(feature = "metrics")]
pub use polars;

/// Everything a rank's code usually needs.
pub mod prelude {
    #[cfg(feature = "metrics")]
    pub use crate::metrics::{FrameDisplay, Metrics};
    pub use crate::ops::{Handle, NeighborWeights, ReduceOp};
    #[cfg(feature = "metrics")]
    pub use crate::plot::Convergence;
    pub use crate::tensor::{Communicable, Element};
    pub use crate::topology::{self, Topology};
    pub use crate::{run, run_with, Config, Error, Fog};
    #[cfg(feature = "metrics")]
    pub use polars::prelude::{col, lit, DataFrame, IntoLazy};
}
