//! Data for the experiments: a small seeded random generator ([`Rng`]), synthetic problems
//! whose data each rank makes for itself ([`LeastSquares`], [`Logistic`]), the IDX files of
//! MNIST and Fashion-MNIST ([`Idx`]), and splits of a data set across ranks, iid or
//! heterogeneous by label. Heterogeneity is what makes decentralized methods' bias visible.
//!
//! Everything here is deterministic: the same seed and rank give the same bits on every
//! run, so notebooks and tests can assert exact numbers. Integer draws, uniforms and
//! permutations are the same bits on every machine; normal, gamma and Dirichlet draws call
//! the platform's `ln`, `sin`, `cos` and `powf` (glibc on Linux), which another libm may
//! round differently in the last bit. This module never communicates; the ranks' shares
//! of a problem come from `(seed, rank)` alone.

mod idx;
mod images;
mod partition;
mod rng;
mod synthetic;

pub use idx::Idx;
pub use images::{
    cifar10, cifar_records, data_dir, fashion_mnist, idx_split, mnist, Batches, ImageSet, Split,
};
pub use partition::{partition_dirichlet, partition_iid};
pub use rng::Rng;
pub use synthetic::{solve_spd, LeastSquares, Logistic, Vector};
