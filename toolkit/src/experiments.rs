//! The talk's experiments as functions, shared by the examples, tests and notebooks.

use crate::data::{solve_spd, LeastSquares};
use crate::ops::ReduceOp;
use crate::optim::{Method, Optimizer};
use crate::topology::Topology;
use crate::{Fog, Result};

/// The limiting-bias experiment: full-batch linear regression on heterogeneous data
/// ([`LeastSquares::heterogeneous`] with seed 42, 50 rows and 10 unknowns per rank), run
/// with `method` for `steps` steps from zero; returns the mean-square deviation
/// `(1/n) sum_i |x_i - x*|^2` at the end (collective; every rank gets the same value).
///
/// With full gradients there is no stochastic bias, so what remains is the inconsistency
/// bias: DmSGD's is about `1/(1-beta)^2` times DSGD's, DecentLaM's equals DSGD's.
///
/// ```
/// use fogkit::experiments::linear_regression_msd;
/// use fogkit::optim::Method;
/// use fogkit::prelude::*;
/// let msd = fogkit::run(8, |bf: &Fog| -> fogkit::Result<f64> {
///     bf.set_topology(topology::ring(8))?;
///     let dsgd = linear_regression_msd(bf, Method::Dsgd, 0.5, 0.01, 20_000)?;
///     let dmsgd = linear_regression_msd(bf, Method::DmSgd, 0.5, 0.01, 20_000)?;
///     Ok(dmsgd / dsgd)
/// })
/// .unwrap();
/// assert!(msd[0] > 3.0 && msd[0] < 5.0); // 1/(1-beta)^2 = 4
/// ```
pub fn linear_regression_msd(
    bf: &Fog,
    method: Method,
    beta: f64,
    gamma: f64,
    steps: usize,
) -> Result<f64> {
    let (m, d) = (50, 10);
    let p = LeastSquares::heterogeneous(42, bf.rank(), m, d, 1.0);
    let (h, c) = p.normal_equations();
    let h = bf.allreduce_op(&h, ReduceOp::Avg)?;
    let c = bf.allreduce_op(&c, ReduceOp::Avg)?;
    let star = solve_spd(&h, &c)?;
    let mut opt = Optimizer::new(method).lr(gamma).momentum(beta);
    let mut x = vec![0.0; d];
    for _ in 0..steps {
        let g = p.grad_of(&x)?;
        opt.step(bf, &mut x, &g)?;
    }
    let dev: f64 = x.iter().zip(&star).map(|(a, b)| (a - b).powi(2)).sum();
    Ok(bf.allreduce_op(&[dev], ReduceOp::Avg)?[0])
}

/// One row of the limiting-bias table: the four methods' steady-state MSD for one
/// momentum and step size, on `n` ranks over `topology` (in-process ranks).
#[derive(Clone, Debug, PartialEq)]
pub struct BiasRow {
    /// Momentum beta.
    pub beta: f64,
    /// Step size gamma.
    pub gamma: f64,
    /// MSD of DSGD, DmSGD, DecentLaM, PmSGD.
    pub msd: [f64; 4],
}

impl BiasRow {
    /// DmSGD / DSGD, to compare with `1/(1-beta)^2`.
    pub fn dmsgd_ratio(&self) -> f64 {
        self.msd[1] / self.msd[0]
    }
    /// DecentLaM / DSGD, to compare with 1.
    pub fn decentlam_ratio(&self) -> f64 {
        self.msd[2] / self.msd[0]
    }
}

/// Runs [`linear_regression_msd`] for DSGD, DmSGD, DecentLaM and PmSGD on `n` in-process
/// ranks.
pub fn bias_row(
    n: usize,
    topology: &Topology,
    beta: f64,
    gamma: f64,
    steps: usize,
) -> Result<BiasRow> {
    let methods = [
        Method::Dsgd,
        Method::DmSgd,
        Method::DecentLam,
        Method::PmSgd,
    ];
    let msd = crate::run(n, |bf: &Fog| -> Result<Vec<f64>> {
        bf.set_topology(topology.clone())?;
        methods
            .iter()
            .map(|&m| linear_regression_msd(bf, m, beta, gamma, steps))
            .collect()
    })?;
    // Every rank holds the same averaged values; take whichever this process holds.
    let msd = msd
        .into_here()
        .into_iter()
        .next()
        .map(|(_, m)| m)
        .unwrap_or_default();
    match msd[..] {
        [a, b, c, d] => Ok(BiasRow {
            beta,
            gamma,
            msd: [a, b, c, d],
        }),
        _ => Err(crate::Error::InvalidArgument(format!(
            "expected 4 deviations, found {}",
            msd.len()
        ))),
    }
}
