//! Directed, time-varying networks: push-sum consensus and push-DIGing, on 8 ranks.
//!
//! At every step each rank pushes to one peer drawn at random (the same draw on every
//! rank, from a shared seed), so the graph is directed and changes every step, and some
//! ranks hear from two peers while others hear from none: no doubly stochastic weights
//! exist for it. Plain averaging of what arrives then agrees on a wrong value; push-sum
//! (Kempe et al. 2003) carries a weight beside the value and reaches the exact average;
//! push-DIGing (Nedic, Olshevsky and Shi 2017) adds gradient tracking and solves a
//! heterogeneous least-squares problem exactly, where push-sum gradient descent
//! (subgradient-push) stops at a bias. Each result is asserted.
//!
//! Run: `cargo run --release -p fogkit --example push_sum`, or over MPI (a build with
//! `--features mpi`): `fogrun -np 8 target/release/examples/push_sum`, same numbers.

use fogkit::data::{solve_spd, LeastSquares, Rng};
use fogkit::prelude::*;

const SEED: u64 = 2021;

/// The random directed graph of step `k`: `peer[i]` is the rank `i` pushes to (never
/// itself). Every rank computes the same list.
fn peers(n: usize, k: usize) -> Vec<usize> {
    let mut g = Rng::for_rank(SEED, k);
    (0..n).map(|i| (i + 1 + g.below(n - 1)) % n).collect()
}

/// This rank's weights at step `k`: push-sum (column-stochastic) or receiver-uniform
/// averaging (row-stochastic) over the same edges.
fn weights(bf: &Fog, k: usize, push: bool) -> NeighborWeights {
    let p = peers(bf.size(), k);
    let recv: Vec<usize> = (0..bf.size()).filter(|&j| p[j] == bf.rank()).collect();
    if push {
        NeighborWeights::push(&recv, &[p[bf.rank()]])
    } else {
        NeighborWeights::uniform(&recv, &[p[bf.rank()]])
    }
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f64>()
        .sqrt()
}

/// Largest distance of any rank's `x` from `target`.
fn worst(bf: &Fog, x: &[f64], target: &[f64]) -> fogkit::Result<f64> {
    Ok(bf.allreduce_op(&[dist(x, target)], ReduceOp::Max)?[0])
}

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let ranks = fogkit::launch::ranks_or(8);
    if ranks < 4 {
        return Err(Error::InvalidArgument(format!(
            "push_sum needs at least 4 ranks (random directed graphs with uneven in-degrees), \
             found {ranks}"
        )));
    }

    // ---- 1. Consensus: receiver-uniform averaging against push-sum ----
    fogkit::run(ranks, |bf: &Fog| -> fogkit::Result<()> {
        let x0 = Rng::for_rank(1, bf.rank()).normals(4);
        let avg = bf.allreduce(&x0)?;
        let mut x = x0.clone();
        // Push-sum: the value and its weight travel together, [x, w].
        let mut xw = x0.clone();
        xw.push(1.0);
        for k in 0..200 {
            x = bf.neighbor_allreduce_with(&x, &weights(bf, k, false))?;
            xw = bf.neighbor_allreduce_with(&xw, &weights(bf, k, true))?;
        }
        let w = xw[4];
        let ratio: Vec<f64> = xw[..4].iter().map(|v| v / w).collect();
        let (spread, avg_err) = (bf.consensus_error(&x)?, worst(bf, &x, &avg)?);
        let push_err = worst(bf, &ratio, &avg)?;
        if bf.rank() == 0 {
            println!(
                "Consensus on {} ranks ({} transport), a random directed graph every step, 200 steps:",
                bf.size(),
                bf.transport_name()
            );
            println!("  receiver-uniform averaging: ranks agree to {spread:.1e}, but are {avg_err:.3e} from the average");
            println!("  push-sum (x / w):           {push_err:.1e} from the average");
        }
        assert!(spread < 1e-12 && avg_err > 1e-2, "{spread} {avg_err}");
        assert!(push_err < 1e-12, "{push_err}");
        Ok(())
    })?;

    // ---- 2. Optimization: subgradient-push against push-DIGing ----
    let alpha = 0.02;
    let steps = 3000;
    fogkit::run(ranks, |bf: &Fog| -> fogkit::Result<()> {
        let p = LeastSquares::heterogeneous(7, bf.rank(), 40, 10, 1.0);
        let (h, c) = p.normal_equations();
        let star = solve_spd(
            &bf.allreduce_op(&h, ReduceOp::Avg)?,
            &bf.allreduce_op(&c, ReduceOp::Avg)?,
        )?;
        let d = p.dim();

        // Subgradient-push: u = C(u - alpha grad f(u / v)), v = C v.
        let mut uv = vec![0.0; d + 1];
        uv[d] = 1.0;
        for k in 0..steps {
            let x: Vec<f64> = uv[..d].iter().map(|u| u / uv[d]).collect();
            let g = p.grad_of(&x)?;
            for (u, g) in uv.iter_mut().zip(&g) {
                *u -= alpha * g;
            }
            uv = bf.neighbor_allreduce_with(&uv, &weights(bf, k, true))?;
        }
        let x: Vec<f64> = uv[..d].iter().map(|u| u / uv[d]).collect();
        let sgp = worst(bf, &x, &star)?;

        // Push-DIGing: u = C(u - alpha y), v = C v, x = u / v,
        // y = C y + grad f(x_new) - grad f(x_old); one fused exchange of [u - alpha y, y, v].
        let mut x = vec![0.0; d];
        let mut g_old = p.grad_of(&x)?;
        let (mut u, mut y, mut v) = (x.clone(), g_old.clone(), 1.0);
        for k in 0..steps {
            let mut msg: Vec<f64> = u.iter().zip(&y).map(|(u, y)| u - alpha * y).collect();
            msg.extend_from_slice(&y);
            msg.push(v);
            let mixed = bf.neighbor_allreduce_with(&msg, &weights(bf, k, true))?;
            u.copy_from_slice(&mixed[..d]);
            v = mixed[2 * d];
            x = u.iter().map(|u| u / v).collect();
            let g = p.grad_of(&x)?;
            for i in 0..d {
                y[i] = mixed[d + i] + g[i] - g_old[i];
            }
            g_old = g;
        }
        let pd = worst(bf, &x, &star)?;
        if bf.rank() == 0 {
            println!("Least squares, heterogeneous data, alpha = {alpha}, {steps} steps, max_i |x_i - x*|:");
            println!("  subgradient-push: {sgp:.3e} (stops at its bias)");
            println!("  push-DIGing:      {pd:.1e}");
        }
        assert!(sgp > 1e-3, "{sgp}");
        assert!(pd < 1e-10, "{pd}");
        Ok(())
    })?;
    Ok(())
}
