//! Window optimizers on least squares, shared by the in-process and mpirun tests: every
//! rank stepping in turn (lockstep, which must be DSGD over a regular ring), and push-sum
//! with rank 1 five times slower (which must reach the optimum anyway). Each returns one
//! rank's result, so the same code runs on threads and on processes; none asserts (the
//! tests that call them do).

use std::time::{Duration, Instant};

use fogkit::data::LeastSquares;
use fogkit::optim::{Method, Optimizer, WindowOptimizer};
use fogkit::prelude::*;

use crate::digest;

/// Which optimizer a run steps with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// Synchronous DSGD (ATC), the reference.
    Dsgd,
    /// BlueFog's win_put optimizer.
    WinPut,
    /// Gradient-push over windows.
    PushSum,
}

/// Rank `rank`'s least-squares problem; `spread` 0 gives every rank the same optimum.
pub fn problem(rank: usize, spread: f64) -> LeastSquares {
    LeastSquares::heterogeneous(11, rank, 40, 6, spread)
}

/// The optimum of the sum of the `n` ranks' problems.
pub fn x_star(n: usize, spread: f64) -> Vec<f64> {
    let (h, c) = (0..n).fold((vec![0.0; 36], vec![0.0; 6]), |(mut h, mut c), r| {
        let (hr, cr) = problem(r, spread).normal_equations();
        h.iter_mut().zip(hr).for_each(|(a, b)| *a += b);
        c.iter_mut().zip(cr).for_each(|(a, b)| *a += b);
        (h, c)
    });
    fogkit::data::solve_spd(&h, &c).expect("the normal equations are positive definite")
}

/// `steps` steps of least squares over a ring of all ranks with `kind` (the window
/// optimizers in lockstep); returns this rank's parameters.
pub fn train_ring(bf: &Fog, steps: usize, kind: WindowKind) -> fogkit::Result<Vec<f64>> {
    bf.set_topology(topology::ring(bf.size()))?;
    let p = problem(bf.rank(), 0.5);
    let mut x = vec![0.0; p.dim()];
    let local = Optimizer::new(Method::Dsgd).lr(0.05);
    if kind == WindowKind::Dsgd {
        let mut opt = local;
        for _ in 0..steps {
            let g = p.grad_of(&x)?;
            opt.step(bf, &mut x, &g)?;
        }
        return Ok(x);
    }
    let mut opt = if kind == WindowKind::WinPut {
        WindowOptimizer::win_put(bf, local, &x)?
    } else {
        WindowOptimizer::push_sum(bf, local, &x)?
    }
    .lockstep(true);
    for _ in 0..steps {
        let g = p.grad_of(&x)?;
        opt.step(&mut x, &g)?;
    }
    opt.free()?;
    Ok(x)
}

/// The line a rank reports for the three lockstep runs of 60 steps: `rank R dsgd HEX
/// win_put HEX push_sum HEX`, the digests of the parameters' bits.
pub fn window_optimizer_line(bf: &Fog) -> fogkit::Result<String> {
    let mut line = format!("rank {}", bf.rank());
    for (name, kind) in [
        ("dsgd", WindowKind::Dsgd),
        ("win_put", WindowKind::WinPut),
        ("push_sum", WindowKind::PushSum),
    ] {
        let x = train_ring(bf, 60, kind)?;
        let bits: Vec<u64> = x.iter().map(|v| v.to_bits()).collect();
        line += &format!(" {name} {:016x}", digest(&bits));
    }
    Ok(line)
}

/// Push-sum with DmSGD (momentum 0.5) on identically distributed data over a ring, for
/// `duration`, every rank at its own pace (200 µs per step, rank 1 1000 µs), no rank
/// waiting; returns this rank's parameters and how many steps it took.
pub fn push_sum_with_a_slow_rank(
    bf: &Fog,
    duration: Duration,
) -> fogkit::Result<(Vec<f64>, usize)> {
    bf.set_topology(topology::ring(bf.size()))?;
    let p = problem(bf.rank(), 0.0);
    let mut x = vec![0.0; p.dim()];
    let local = Optimizer::new(Method::DmSgd).lr(0.05).momentum(0.5);
    let mut opt = WindowOptimizer::push_sum(bf, local, &x)?;
    let pace = Duration::from_micros(if bf.rank() == 1 { 1000 } else { 200 });
    let start = Instant::now();
    while start.elapsed() < duration {
        std::thread::sleep(pace);
        let g = p.grad_of(&x)?;
        opt.step(&mut x, &g)?;
    }
    let steps = opt.local().steps();
    opt.free()?;
    Ok((x, steps))
}
