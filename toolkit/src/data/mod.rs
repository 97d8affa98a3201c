//! Data for the experiments: a small seeded random generator ([`Rng`]) and synthetic
//! problems whose data each rank makes for itself ([`LeastSquares`], [`Logistic`]), with
//! heterogeneity across ranks, which is what makes decentralized methods' bias visible.
//!
//! Everything here is deterministic: the same seed and rank give the same bits on every
//! machine, so notebooks and tests can assert exact numbers. This module never
//! communicates; the ranks' shares of a problem come from `(seed, rank)` alone.

mod rng;
mod synthetic;

pub use rng::Rng;
pub use synthetic::{solve_spd, LeastSquares, Logistic, Vector};
