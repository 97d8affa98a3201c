//! The talk's experiments as functions, shared by the examples, tests and notebooks.

use crate::data::{solve_spd, LeastSquares};
use crate::linalg::solve;
use crate::ops::ReduceOp;
use crate::optim::{Method, Optimizer};
use crate::topology::Topology;
use crate::{Error, Fog, Result};

/// Unknowns per rank in the limiting-bias problem.
const DIM: usize = 10;

/// Rank `rank`'s share of the limiting-bias problem: seed 42, 50 rows, [`DIM`] unknowns,
/// heterogeneous (spread 1).
fn bias_problem(rank: usize) -> LeastSquares {
    LeastSquares::heterogeneous(42, rank, 50, DIM, 1.0)
}

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
    let d = DIM;
    let p = bias_problem(bf.rank());
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

/// [`linear_regression_msd`] with stochastic gradients: at every step each rank's gradient
/// is the mean over `batch` rows drawn uniformly (with replacement) from its 50, or over
/// all of them for `None`. Runs `steps` steps from zero and returns the mean-square
/// deviation averaged over the last `tail` steps and the ranks: the steady state, whose
/// gradient noise a single step would not average out (collective). The draws depend on
/// the rank and the step only, so every method sees the same rows.
///
/// ```
/// use fogkit::experiments::stochastic_msd;
/// use fogkit::optim::Method;
/// use fogkit::prelude::*;
/// let msd = fogkit::run(4, |bf: &Fog| -> fogkit::Result<f64> {
///     bf.set_topology(topology::ring(4))?;
///     stochastic_msd(bf, Method::Dsgd, 0.0, 0.01, Some(1), 4000, 2000)
/// })
/// .unwrap();
/// assert!(msd[0] > 0.0 && msd[0] < 1.0);
/// ```
pub fn stochastic_msd(
    bf: &Fog,
    method: Method,
    beta: f64,
    gamma: f64,
    batch: Option<usize>,
    steps: usize,
    tail: usize,
) -> Result<f64> {
    let opt = Optimizer::new(method).lr(gamma).momentum(beta);
    msd_with(bf, opt, batch, steps, tail)
}

/// [`stochastic_msd`] with the optimizer given whole: its method, step size, momentum and
/// communication (a dynamic schedule, whose `W` changes every step and so has no fixed
/// point to solve for). `batch: None` is the full gradient (collective).
///
/// ```
/// use fogkit::experiments::msd_with;
/// use fogkit::optim::{Communication, Dynamic, Method, Optimizer};
/// use fogkit::prelude::*;
/// let msd = fogkit::run(8, |bf: &Fog| -> fogkit::Result<f64> {
///     let one_peer = Communication::Dynamic(Dynamic::OnePeerExponential);
///     let opt = Optimizer::new(Method::Dsgd).lr(0.01).communication(one_peer);
///     msd_with(bf, opt, None, 6000, 300)
/// })
/// .unwrap();
/// assert!(msd[0] > 0.0 && msd[0] < 1e-3);
/// ```
pub fn msd_with(
    bf: &Fog,
    mut opt: Optimizer<f64>,
    batch: Option<usize>,
    steps: usize,
    tail: usize,
) -> Result<f64> {
    if tail == 0 || tail > steps || batch == Some(0) {
        return Err(Error::InvalidArgument(format!(
            "stochastic_msd: expected a batch of at least 1 row and 1 <= tail <= steps, \
             found batch {batch:?}, tail {tail}, steps {steps}"
        )));
    }
    let d = DIM;
    let p = bias_problem(bf.rank());
    let (h, c) = p.normal_equations();
    let h = bf.allreduce_op(&h, ReduceOp::Avg)?;
    let c = bf.allreduce_op(&c, ReduceOp::Avg)?;
    let star = solve_spd(&h, &c)?;
    let mut x = vec![0.0; d];
    let mut draw = crate::data::Rng::for_rank(7, bf.rank());
    let mut sum = 0.0;
    for k in 0..steps {
        let g = match batch {
            None => p.grad_of(&x)?,
            Some(b) => {
                let mut g = vec![0.0; d];
                for _ in 0..b {
                    let r = draw.below(p.rows());
                    for (gi, si) in g.iter_mut().zip(p.sample_grad_of(&x, r)?) {
                        *gi += si / b as f64;
                    }
                }
                g
            }
        };
        opt.step(bf, &mut x, &g)?;
        if k >= steps - tail {
            sum += x
                .iter()
                .zip(&star)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>();
        }
    }
    Ok(bf.allreduce_op(&[sum / tail as f64], ReduceOp::Avg)?[0])
}

/// The exact steady state of [`linear_regression_msd`]: the mean-square deviation at the
/// method's fixed point, from the fixed-point equations (one linear solve over all ranks'
/// unknowns, no iterations; not collective).
///
/// With full gradients the fixed points are DSGD's (ATC, `x = W(x - s grad f(x))`) at some
/// step `s`: DSGD's and DecentLaM's at `s = gamma` (at a fixed point DecentLaM's
/// `x - x_prev` is 0), DmSGD's at `s = gamma / (1 - beta)` (its `m` settles at
/// `g / (1 - beta)`). PmSGD's is `x*` on every rank: 0.
///
/// ```
/// use fogkit::experiments::fixed_point_msd;
/// use fogkit::optim::Method;
/// let ring = fogkit::topology::ring(8);
/// let dsgd = fixed_point_msd(&ring, Method::Dsgd, 0.5, 0.01).unwrap();
/// let dmsgd = fixed_point_msd(&ring, Method::DmSgd, 0.5, 0.01).unwrap();
/// // DmSGD's bias is DSGD's at twice the step: about, not exactly, 4 times DSGD's.
/// assert!(dmsgd / dsgd > 3.5 && dmsgd / dsgd < 4.0);
/// assert_eq!(fixed_point_msd(&ring, Method::PmSgd, 0.5, 0.01).unwrap(), 0.0);
/// ```
pub fn fixed_point_msd(topology: &Topology, method: Method, beta: f64, gamma: f64) -> Result<f64> {
    let step = match method {
        Method::Dsgd | Method::DecentLam => gamma,
        Method::DmSgd if beta < 1.0 => gamma / (1.0 - beta),
        Method::DmSgd => {
            return Err(Error::InvalidArgument(format!(
                "fixed_point_msd: DmSGD has a fixed point for momentum below 1, found {beta}"
            )))
        }
        Method::PmSgd => return Ok(0.0),
        m => {
            return Err(Error::InvalidArgument(format!(
                "fixed_point_msd: expected DSGD, DmSGD, DecentLaM or PmSGD, found {}",
                m.name()
            )))
        }
    };
    let (n, d) = (topology.size(), DIM);
    let parts: Vec<(Vec<f64>, Vec<f64>)> =
        (0..n).map(|r| bias_problem(r).normal_equations()).collect();
    let mut h = vec![0.0; d * d];
    let mut c = vec![0.0; d];
    for (hj, cj) in &parts {
        h.iter_mut().zip(hj).for_each(|(a, b)| *a += b / n as f64);
        c.iter_mut().zip(cj).for_each(|(a, b)| *a += b / n as f64);
    }
    let star = solve_spd(&h, &c)?;
    // x_i = sum_j w_ij (x_j - s (H_j x_j - c_j)) for every rank i, stacked:
    // (I - (W (x) I) M) x = s (W (x) I) c, with M = blockdiag(I - s H_j).
    let nd = n * d;
    let mut a = vec![0.0; nd * nd];
    let mut b = vec![0.0; nd];
    for i in 0..n {
        for j in 0..n {
            let w = topology.weight(i, j);
            if w == 0.0 {
                continue;
            }
            let (hj, cj) = &parts[j];
            for p in 0..d {
                b[i * d + p] += step * w * cj[p];
                for q in 0..d {
                    let m = if p == q { 1.0 } else { 0.0 } - step * hj[p * d + q];
                    a[(i * d + p) * nd + j * d + q] -= w * m;
                }
            }
        }
    }
    (0..nd).for_each(|k| a[k * nd + k] += 1.0);
    let x = solve(&a, &b, nd).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "fixed_point_msd: {} at step {step} has no unique fixed point",
            method.name()
        ))
    })?;
    let dev: f64 = x
        .chunks(d)
        .map(|xi| {
            xi.iter()
                .zip(&star)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
        })
        .sum();
    Ok(dev / n as f64)
}

/// One row of the limiting-bias table: the four methods' steady-state MSD for one
/// momentum and step size, on `n` ranks over `topology` (in-process ranks), measured and
/// exact.
#[derive(Clone, Debug, PartialEq)]
pub struct BiasRow {
    /// Momentum beta.
    pub beta: f64,
    /// Step size gamma.
    pub gamma: f64,
    /// MSD of DSGD, DmSGD, DecentLaM, PmSGD after the run.
    pub msd: [f64; 4],
    /// The same at the exact fixed points ([`fixed_point_msd`]).
    pub exact: [f64; 4],
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
    /// DmSGD / DSGD at the exact fixed points.
    pub fn exact_dmsgd_ratio(&self) -> f64 {
        self.exact[1] / self.exact[0]
    }
    /// The largest gap between a measured MSD and its exact value, relative to the exact
    /// value (PmSGD's, exactly 0, is left out).
    pub fn largest_gap(&self) -> f64 {
        self.msd[..3]
            .iter()
            .zip(&self.exact[..3])
            .map(|(m, e)| (m - e).abs() / e)
            .fold(0.0, f64::max)
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
        [a, b, c, d] => {
            let mut exact = [0.0; 4];
            for (e, &m) in exact.iter_mut().zip(&methods) {
                *e = fixed_point_msd(topology, m, beta, gamma)?;
            }
            Ok(BiasRow {
                beta,
                gamma,
                msd: [a, b, c, d],
                exact,
            })
        }
        _ => Err(crate::Error::InvalidArgument(format!(
            "expected 4 deviations, found {}",
            msd.len()
        ))),
    }
}
