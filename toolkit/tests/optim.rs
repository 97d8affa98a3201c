#![allow(clippy::needless_range_loop)] // index loops mirror the formulas
//! Each optimizer's first steps against updates computed by hand: once as numbers worked out
//! on paper, and for every method in the talk's matrix form (all ranks at once, dense `W`),
//! which the ranks' implementation never uses.

use fogkit::optim::{Method, Optimizer, Schedule};
use fogkit::prelude::*;

const N: usize = 4;
const D: usize = 2;
const STEPS: usize = 4;
const GAMMA: f64 = 0.3;
const BETA: f64 = 0.6;

/// Rank i minimizes |x - b_i|^2 / 2 with b_i = (i, 1 - 2i); it starts at x_i = (i / 2, 1).
fn b(i: usize) -> [f64; D] {
    [i as f64, 1.0 - 2.0 * i as f64]
}
fn x0(i: usize) -> Vec<f64> {
    vec![i as f64 / 2.0, 1.0]
}

type State = Vec<Vec<f64>>; // one row per rank

fn mix(w: &[Vec<f64>], x: &State) -> State {
    (0..N)
        .map(|i| {
            (0..D)
                .map(|d| (0..N).map(|j| w[i][j] * x[j][d]).sum())
                .collect()
        })
        .collect()
}
fn lin(a: f64, x: &State, c: f64, y: &State) -> State {
    x.iter()
        .zip(y)
        .map(|(u, v)| u.iter().zip(v).map(|(p, q)| a * p + c * q).collect())
        .collect()
}
fn grad(x: &State) -> State {
    (0..N)
        .map(|i| (0..D).map(|d| x[i][d] - b(i)[d]).collect())
        .collect()
}
fn mean(x: &State) -> State {
    let avg: Vec<f64> = (0..D)
        .map(|d| x.iter().map(|r| r[d]).sum::<f64>() / N as f64)
        .collect();
    vec![avg; N]
}

/// The talk's and the papers' updates, all ranks at once.
fn reference(method: Method, w: &[Vec<f64>]) -> Vec<State> {
    let (g_, b_) = (GAMMA, BETA);
    let mut x: State = (0..N).map(x0).collect();
    let mut prev = x.clone();
    let zero = vec![vec![0.0; D]; N];
    let (mut m, mut u, mut prev_g) = (zero.clone(), zero.clone(), zero.clone());
    let mut prev_m = zero.clone();
    let anchor0 = x.clone();
    let mut anchor = anchor0;
    let mut out = Vec::new();
    for k in 0..STEPS {
        let g = grad(&x);
        let next = match method {
            Method::PmSgd => {
                m = lin(b_, &m, 1.0, &mean(&g));
                lin(1.0, &x, -g_, &m)
            }
            Method::Dsgd => mix(w, &lin(1.0, &x, -g_, &g)),
            Method::DsgdCta => lin(1.0, &mix(w, &x), -g_, &g),
            // x+ = W(x - gamma g) + beta (x - W x_prev), with x_prev = x at k = 0 (m = 0).
            Method::DmSgd => {
                let mom = if k == 0 {
                    zero.clone()
                } else {
                    lin(1.0, &x, -1.0, &mix(w, &prev))
                };
                lin(1.0, &mix(w, &lin(1.0, &x, -g_, &g)), b_, &mom)
            }
            // x+ = W(x - gamma g) + beta (x - x_prev).
            Method::DecentLam => lin(
                1.0,
                &mix(w, &lin(1.0, &x, -g_, &g)),
                b_,
                &lin(1.0, &x, -1.0, &prev),
            ),
            Method::DaDmSgd => {
                m = mix(w, &lin(b_, &m, 1.0, &g));
                mix(w, &lin(1.0, &x, -g_, &m))
            }
            Method::AwcDmSgd => {
                m = lin(b_, &m, 1.0, &g);
                lin(1.0, &mix(w, &x), -g_, &m)
            }
            Method::QgDmSgd => {
                let next = mix(w, &lin(1.0, &x, -g_, &lin(1.0, &g, b_, &m)));
                m = lin(b_, &m, (1.0 - b_) / g_, &lin(1.0, &x, -1.0, &next));
                next
            }
            Method::D2 => {
                if k == 0 {
                    mix(w, &lin(1.0, &x, -g_, &g))
                } else {
                    let y = lin(2.0, &x, -1.0, &prev);
                    mix(w, &lin(1.0, &lin(1.0, &y, -g_, &g), g_, &prev_g))
                }
            }
            // D^2 with m = beta m + g in place of g.
            Method::D2DmSgd => {
                m = lin(b_, &m, 1.0, &g);
                let next = if k == 0 {
                    mix(w, &lin(1.0, &x, -g_, &m))
                } else {
                    let y = lin(2.0, &x, -1.0, &prev);
                    mix(w, &lin(1.0, &lin(1.0, &y, -g_, &m), g_, &prev_m))
                };
                prev_m = m.clone();
                next
            }
            Method::SlowMo {
                period,
                slow_lr,
                slow_momentum,
            } => {
                m = lin(b_, &m, 1.0, &g);
                let mut next = mix(w, &lin(1.0, &x, -g_, &m));
                if (k + 1) % period == 0 {
                    u = lin(
                        slow_momentum,
                        &u,
                        1.0 / g_,
                        &lin(1.0, &anchor, -1.0, &mean(&next)),
                    );
                    anchor = lin(1.0, &anchor, -slow_lr * g_, &u);
                    next = anchor.clone();
                }
                next
            }
            Method::Atc(_) | Method::Awc(_) => unreachable!("tests/optim.rs covers the base forms"),
            Method::GossipPga { period } => {
                m = lin(b_, &m, 1.0, &g);
                let next = mix(w, &lin(1.0, &x, -g_, &m));
                if (k + 1) % period == 0 {
                    mean(&next)
                } else {
                    next
                }
            }
        };
        prev_g = g;
        prev = std::mem::replace(&mut x, next);
        out.push(x.clone());
    }
    out
}

fn run_ranks(method: Method, topo: fn(usize) -> Topology) -> Vec<Vec<Vec<f64>>> {
    fogkit::run(N, move |bf: &Fog| -> fogkit::Result<Vec<Vec<f64>>> {
        bf.set_topology(topo(N))?;
        let mut opt = Optimizer::new(method).lr(GAMMA).momentum(BETA);
        let mut x = x0(bf.rank());
        let mut traj = Vec::new();
        for _ in 0..STEPS {
            let g: Vec<f64> = (0..D).map(|d| x[d] - b(bf.rank())[d]).collect();
            opt.step(bf, &mut x, &g)?;
            traj.push(x.clone());
        }
        Ok(traj)
    })
    .unwrap()
    .into_vec()
    .unwrap()
}

#[test]
fn every_method_matches_its_matrix_form_for_the_first_steps() {
    let methods = [
        Method::PmSgd,
        Method::Dsgd,
        Method::DsgdCta,
        Method::DmSgd,
        Method::DecentLam,
        Method::DaDmSgd,
        Method::AwcDmSgd,
        Method::QgDmSgd,
        Method::D2,
        Method::D2DmSgd,
        Method::SlowMo {
            period: 2,
            slow_lr: 0.8,
            slow_momentum: 0.5,
        },
        Method::GossipPga { period: 3 },
    ];
    let w = topology::ring(N).matrix();
    for method in methods {
        let want = reference(method, &w);
        let got = run_ranks(method, topology::ring);
        for k in 0..STEPS {
            for i in 0..N {
                for d in 0..D {
                    let (g, e) = (got[i][k][d], want[k][i][d]);
                    assert!(
                        (g - e).abs() < 1e-12,
                        "{}: step {k}, rank {i}: {g} vs {e}",
                        method.name()
                    );
                }
            }
        }
        // The methods really differ: none is DSGD in disguise (after two steps).
        if method.has_momentum() {
            let dsgd = reference(Method::Dsgd, &w);
            assert!(
                (dsgd[1][1][0] - want[1][1][0]).abs() > 1e-3,
                "{}",
                method.name()
            );
        }
    }
}

#[test]
fn decentlam_first_two_steps_by_hand() {
    // Two ranks, W = [[1/2, 1/2], [1/2, 1/2]]; f_0 = (x - 1)^2 / 2, f_1 = (x + 1)^2 / 2;
    // x0 = (0, 2), gamma = 1/2, beta = 1/2.
    // Step 1: g = (-1, 3); W(x - g/2) = (1/2, 1/2); no momentum yet: x1 = (1/2, 1/2).
    // Step 2: g = (-1/2, 3/2); W(x - g/2) = (1/4, 1/4); plus beta (x1 - x0) = (1/4, -3/4):
    //         x2 = (1/2, -1/2).
    let xs = fogkit::run(2, |bf: &Fog| -> fogkit::Result<Vec<f64>> {
        bf.set_topology(topology::fully_connected(2))?;
        let target = if bf.rank() == 0 { 1.0 } else { -1.0 };
        let mut opt = Optimizer::new(Method::DecentLam).lr(0.5).momentum(0.5);
        let mut x = vec![2.0 * bf.rank() as f64];
        let mut seen = Vec::new();
        for _ in 0..2 {
            let g = vec![x[0] - target];
            opt.step(bf, &mut x, &g)?;
            seen.push(x[0]);
        }
        Ok(seen)
    })
    .unwrap();
    assert_eq!(xs, vec![vec![0.5, 0.5], vec![0.5, -0.5]]);
}

#[test]
fn nesterov_weight_decay_and_warmup_enter_the_first_step_as_documented() {
    // One rank alone (W = 1): x0 = 1, grad 2, wd 0.5 => g = 2.5; warm-up 2 => gamma = 0.1 / 2.
    // DmSGD with Nesterov: m = g = 2.5; direction g + beta m = 2.5 + 0.9 * 2.5 = 4.75.
    let x = fogkit::run(1, |bf: &Fog| -> fogkit::Result<f64> {
        let mut opt = Optimizer::new(Method::DmSgd)
            .lr(0.1)
            .momentum(0.9)
            .nesterov(true)
            .weight_decay(0.5)
            .warmup(2);
        let mut x = vec![1.0f64];
        opt.step(bf, &mut x, &[2.0])?;
        Ok(x[0])
    })
    .unwrap();
    assert!((x[0] - (1.0 - 0.05 * 4.75)).abs() < 1e-15, "{}", x[0]);
    let cos = Optimizer::<f64>::new(Method::Dsgd)
        .lr(1.0)
        .schedule(Schedule::Cosine { total: 10 });
    assert!((cos.lr_at(5) - 0.5).abs() < 1e-12 && cos.lr_at(10) == 0.0);
}

#[test]
fn decentlam_refuses_a_directed_topology_and_bad_input_is_named() {
    let err = fogkit::run(4, |bf: &Fog| -> fogkit::Result<()> {
        bf.set_topology(topology::exponential_two(4))?;
        let mut x = vec![0.0f64];
        Optimizer::new(Method::DecentLam).step(bf, &mut x, &[1.0])
    })
    .unwrap_err();
    assert!(err.to_string().contains("symmetric"), "{err}");
    let err = fogkit::run(1, |bf: &Fog| -> fogkit::Result<()> {
        let mut x = vec![0.0f64; 3];
        Optimizer::new(Method::DmSgd).step(bf, &mut x, &[1.0])
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("a gradient of 1 values for 3 parameters"),
        "{err}"
    );
    let err = fogkit::run(1, |bf: &Fog| -> fogkit::Result<()> {
        let mut x = vec![0.0f64];
        Optimizer::new(Method::DmSgd)
            .momentum(1.0)
            .step(bf, &mut x, &[1.0])
    })
    .unwrap_err();
    assert!(err.to_string().contains("momentum in [0, 1)"), "{err}");
}
