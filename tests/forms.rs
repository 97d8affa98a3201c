//! Every optimizer rule over every communication it accepts, on 8 ranks in 2 machines of
//! 4, for the first steps: run by the ranks ([`run_case`]) and in the talk's and papers'
//! dense matrix form, all ranks at once ([`reference`]), which the ranks' code never uses.
//! Rank `i` minimizes `|x - b_i|^2 / 2`.

use std::f64::consts::PI;
use std::sync::Arc;

use fogkit::optim::{Base, Communication, Dynamic, Method, Optimizer, Schedule};
use fogkit::prelude::*;
use fogkit::topology::{
    inner_outer_exp2, inner_outer_ring, one_peer_exponential_two, one_peer_hypercube, OnePeer,
};

/// Ranks, machines of `LOCAL` ranks, parameters per rank, steps.
pub const N: usize = 8;
pub const LOCAL: usize = 4;
pub const D: usize = 2;
pub const STEPS: usize = 6;
const GAMMA: f64 = 0.3;
const BETA: f64 = 0.6;

/// The configuration the cases run under: two emulated machines of four ranks.
pub fn config() -> Config {
    Config::default().local_size(LOCAL)
}

fn b(i: usize) -> [f64; D] {
    [i as f64, 1.0 - 2.0 * i as f64]
}
fn x0(i: usize) -> Vec<f64> {
    vec![i as f64 / 2.0, 1.0]
}

/// How the step size moves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lr {
    Constant,
    /// Warm-up over 2 steps, then cosine down to 0 at step 5 (the last step has gamma 0).
    WarmCosine,
}

impl Lr {
    fn at(self, k: usize) -> f64 {
        match self {
            Lr::Constant => GAMMA,
            Lr::WarmCosine => {
                let warm = ((k + 1) as f64 / 2.0).min(1.0);
                let cos = if k >= 5 {
                    0.0
                } else {
                    0.5 * (1.0 + (PI * k as f64 / 5.0).cos())
                };
                GAMMA * warm * cos
            }
        }
    }
}

/// The communications under test, with a name.
pub fn communications() -> Vec<(&'static str, Communication)> {
    let custom: fogkit::optim::WeightsFn = Arc::new(|rank, _n, k| {
        let peer = rank ^ (1 << (k % 2));
        NeighborWeights::new(0.75).src(peer, 0.25).dst(peer)
    });
    vec![
        ("static ring", Communication::Static),
        ("static exp2", Communication::Static),
        (
            "one-peer exp2",
            Communication::Dynamic(Dynamic::OnePeerExponential),
        ),
        (
            "one-peer hypercube",
            Communication::Dynamic(Dynamic::OnePeerHypercube),
        ),
        (
            "lazy one-peer hypercube",
            Communication::Dynamic(Dynamic::LazyOnePeerHypercube),
        ),
        (
            "inner-outer ring",
            Communication::Dynamic(Dynamic::InnerOuterRing),
        ),
        (
            "inner-outer exp2",
            Communication::Dynamic(Dynamic::InnerOuterExp2),
        ),
        ("custom", Communication::Dynamic(Dynamic::Custom(custom))),
        ("hierarchical", Communication::Hierarchical),
        ("global", Communication::Global),
        ("none", Communication::None),
    ]
}

/// The methods under test (with the Nesterov variants of three).
pub fn methods() -> Vec<(Method, bool)> {
    let mut v: Vec<(Method, bool)> = [
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
        Method::Atc(Base::Sgd),
        Method::Atc(Base::ADAM),
        Method::Awc(Base::Sgd),
        Method::Awc(Base::ADAM),
    ]
    .into_iter()
    .map(|m| (m, false))
    .collect();
    v.extend([
        (Method::DmSgd, true),
        (Method::DecentLam, true),
        (Method::AwcDmSgd, true),
    ]);
    v
}

/// One case: a method over a communication, every `every` steps, with a step size.
#[derive(Clone, Debug)]
pub struct Case {
    pub method: Method,
    pub nesterov: bool,
    pub comm_name: &'static str,
    pub comm: Communication,
    pub every: usize,
    pub lr: Lr,
    /// Start `W x` before the gradient ([`Optimizer::begin`]).
    pub overlap: bool,
}

/// Every case: each method over each communication, constant and warm-up + cosine step
/// sizes, and static ring and the lazy one-peer hypercube with local steps between
/// communications.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (method, nesterov) in methods() {
        for (comm_name, comm) in communications() {
            for lr in [Lr::Constant, Lr::WarmCosine] {
                v.push(Case {
                    method,
                    nesterov,
                    comm_name,
                    comm: comm.clone(),
                    every: 1,
                    lr,
                    overlap: false,
                });
                // The adapt-while-combine forms again, their exchange overlapped with the
                // gradient.
                let awc = matches!(method, Method::AwcDmSgd | Method::DsgdCta | Method::Awc(_));
                if awc {
                    v.push(Case {
                        method,
                        nesterov,
                        comm_name,
                        comm: comm.clone(),
                        every: 1,
                        lr,
                        overlap: true,
                    });
                }
            }
        }
        v.push(Case {
            method,
            nesterov,
            comm_name: "static ring",
            comm: Communication::Static,
            every: 3,
            lr: Lr::Constant,
            overlap: false,
        });
        v.push(Case {
            method,
            nesterov,
            comm_name: "lazy one-peer hypercube",
            comm: Communication::Dynamic(Dynamic::LazyOnePeerHypercube),
            every: 2,
            lr: Lr::WarmCosine,
            overlap: matches!(method, Method::Awc(_)),
        });
    }
    v
}

impl Case {
    /// What the case is called in messages.
    pub fn label(&self) -> String {
        format!(
            "{}{} over {} (every {}, {:?}{})",
            self.method.name(),
            if self.nesterov { " (Nesterov)" } else { "" },
            self.comm_name,
            self.every,
            self.lr,
            if self.overlap { ", overlapped" } else { "" }
        )
    }

    fn topology(&self) -> Topology {
        if self.comm_name == "static exp2" {
            topology::exponential_two(N)
        } else {
            topology::ring(N)
        }
    }

    fn optimizer(&self) -> Optimizer<f64> {
        let opt = Optimizer::new(self.method)
            .lr(GAMMA)
            .momentum(BETA)
            .nesterov(self.nesterov)
            .communication(self.comm.clone())
            .communicate_every(self.every);
        match self.lr {
            Lr::Constant => opt,
            Lr::WarmCosine => opt.warmup(2).schedule(Schedule::Cosine { total: 5 }),
        }
    }
}

/// The case on this rank: its trajectory, or the error its first refused step returned.
pub fn run_case(bf: &Fog, case: &Case) -> fogkit::Result<Vec<Vec<f64>>> {
    bf.set_topology(case.topology())?;
    let mut opt = case.optimizer();
    let mut x = x0(bf.rank());
    let mut traj = Vec::new();
    for k in 0..STEPS {
        // An exchange travels when the step communicates (W = I keeps x where it is).
        let talks = (k + 1).is_multiple_of(case.every) && case.comm_name != "none";
        if case.overlap && opt.begin(bf, &x)? != talks {
            return Err(fogkit::Error::InvalidArgument(format!(
                "{}: begin at step {k} did not say whether an exchange started",
                case.label()
            )));
        }
        let g: Vec<f64> = (0..D).map(|d| x[d] - b(bf.rank())[d]).collect();
        opt.step(bf, &mut x, &g)?;
        traj.push(x.clone());
    }
    Ok(traj)
}

// ---- the dense matrix forms ----

type State = Vec<Vec<f64>>; // one row per rank
type Matrix = Vec<Vec<f64>>;

fn mix(w: &Matrix, x: &State) -> State {
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
fn map(x: &State, f: impl Fn(f64) -> f64) -> State {
    x.iter()
        .map(|r| r.iter().map(|&v| f(v)).collect())
        .collect()
}
fn zip(x: &State, y: &State, f: impl Fn(f64, f64) -> f64) -> State {
    x.iter()
        .zip(y)
        .map(|(u, v)| u.iter().zip(v).map(|(&p, &q)| f(p, q)).collect())
        .collect()
}
fn grad(x: &State) -> State {
    (0..N)
        .map(|i| (0..D).map(|d| x[i][d] - b(i)[d]).collect())
        .collect()
}
fn average() -> Matrix {
    vec![vec![1.0 / N as f64; N]; N]
}
fn identity() -> Matrix {
    (0..N)
        .map(|i| (0..N).map(|j| (i == j) as u8 as f64).collect())
        .collect()
}
fn one_peer(f: impl Fn(usize) -> OnePeer) -> Matrix {
    let mut w = vec![vec![0.0; N]; N];
    for (i, row) in w.iter_mut().enumerate() {
        let p = f(i);
        let share = 1.0 / (p.recv_from.len() + 1) as f64;
        row[i] = share;
        for &j in &p.recv_from {
            row[j] = share;
        }
    }
    w
}

/// `W` at step `k` for a case, from the definitions (not from the library's plans).
fn w_at(case: &Case, k: usize) -> Matrix {
    if !(k + 1).is_multiple_of(case.every) {
        return identity();
    }
    // Dynamic schedules advance once per communication.
    let k = k / case.every;
    match case.comm_name {
        "static ring" => topology::ring(N).matrix(),
        "static exp2" => topology::exponential_two(N).matrix(),
        "one-peer exp2" => one_peer(|i| one_peer_exponential_two(N, i, k)),
        "one-peer hypercube" => one_peer(|i| one_peer_hypercube(N, i, k).unwrap()),
        "lazy one-peer hypercube" => {
            let w = one_peer(|i| one_peer_hypercube(N, i, k).unwrap());
            zip(&w, &identity(), |a, b| (a + b) / 2.0)
        }
        "inner-outer ring" => one_peer(|i| inner_outer_ring(N, LOCAL, i, k).unwrap()),
        "inner-outer exp2" => one_peer(|i| inner_outer_exp2(N, LOCAL, i, k).unwrap()),
        "custom" => {
            let mut w = vec![vec![0.0; N]; N];
            for (i, row) in w.iter_mut().enumerate() {
                row[i] = 0.75;
                row[i ^ (1 << (k % 2))] = 0.25;
            }
            w
        }
        // Machine m averages its ranks, then mixes with the other machine (exp2 of 2
        // machines: 1/2 each).
        "hierarchical" => (0..N)
            .map(|_| (0..N).map(|_| 0.5 / LOCAL as f64).collect())
            .collect(),
        "global" => average(),
        "none" => identity(),
        other => panic!("no matrix for {other}"),
    }
}

/// The base optimizers' displacement, all ranks at once.
struct BaseRef {
    m: State,
    v: State,
    t: i32,
}

impl BaseRef {
    fn d(&mut self, base: Base, beta: f64, nesterov: bool, gamma: f64, g: &State) -> State {
        self.t += 1;
        match base {
            Base::Sgd => {
                self.m = lin(beta, &self.m, 1.0, g);
                if nesterov {
                    lin(gamma, g, gamma * beta, &self.m)
                } else {
                    map(&self.m, |v| gamma * v)
                }
            }
            Base::Adam { beta2, eps } => {
                self.m = lin(beta, &self.m, 1.0 - beta, g);
                self.v = lin(beta2, &self.v, 1.0 - beta2, &map(g, |v| v * v));
                let (c1, c2) = (1.0 - beta.powi(self.t), 1.0 - beta2.powi(self.t));
                zip(&self.m, &self.v, |m, v| {
                    gamma * (m / c1) / ((v / c2).sqrt() + eps)
                })
            }
        }
    }
}

/// The trajectory of a case in matrix form: `out[k][i]` is rank `i`'s `x` after step `k`.
pub fn reference(case: &Case) -> Vec<State> {
    let (b_, nest) = (BETA, case.nesterov);
    let mut x: State = (0..N).map(x0).collect();
    let mut prev = x.clone();
    let zero = vec![vec![0.0; D]; N];
    let mut base = BaseRef {
        m: zero.clone(),
        v: zero.clone(),
        t: 0,
    };
    let (mut m, mut u) = (zero.clone(), zero.clone());
    let mut prev_step = zero.clone(); // D2: gamma_prev g_prev
    let mut anchor = x.clone();
    let mut last_outer_lr = 0.0;
    let mut out = Vec::new();
    for k in 0..STEPS {
        let (w, g_) = (w_at(case, k), case.lr.at(k));
        let g = grad(&x);
        let dir = |m: &State, g: &State| if nest { lin(1.0, g, b_, m) } else { m.clone() };
        let dmsgd = |base: &mut BaseRef, x: &State| {
            let d = base.d(Base::Sgd, b_, nest, g_, &g);
            mix(&w, &lin(1.0, x, -1.0, &d))
        };
        let next = match case.method {
            Method::PmSgd => {
                let wg = mix(&w, &g);
                m = lin(b_, &m, 1.0, &wg);
                lin(1.0, &x, -g_, &dir(&m, &wg))
            }
            Method::Dsgd => mix(&w, &lin(1.0, &x, -g_, &g)),
            Method::DsgdCta => lin(1.0, &mix(&w, &x), -g_, &g),
            Method::DmSgd | Method::Atc(Base::Sgd) => dmsgd(&mut base, &x),
            Method::Atc(a) => {
                let d = base.d(a, b_, nest, g_, &g);
                mix(&w, &lin(1.0, &x, -1.0, &d))
            }
            Method::AwcDmSgd | Method::Awc(_) => {
                let a = match case.method {
                    Method::Awc(a) => a,
                    _ => Base::Sgd,
                };
                let d = base.d(a, b_, nest, g_, &g);
                lin(1.0, &mix(&w, &x), -1.0, &d)
            }
            // The talk: x+ = W(x - gamma g) + beta (x - x_prev); Nesterov: + beta v+.
            Method::DecentLam => {
                let z = mix(&w, &lin(1.0, &x, -g_, &g));
                if nest {
                    // The velocity v+ = beta v + W(x - gamma g) - x, kept apart (with
                    // Nesterov it is no longer x - x_prev).
                    u = lin(b_, &u, 1.0, &lin(1.0, &z, -1.0, &x));
                    lin(1.0, &z, b_, &u)
                } else {
                    lin(1.0, &z, b_, &lin(1.0, &x, -1.0, &prev))
                }
            }
            Method::DaDmSgd => {
                m = mix(&w, &lin(b_, &m, 1.0, &g));
                mix(&w, &lin(1.0, &x, -g_, &dir(&m, &g)))
            }
            // Lin et al.: x' = W(x - gamma (g + beta m)); m = beta m + (1 - beta)(x - x') / gamma;
            // after a step of size 0 the momentum starts again from 0.
            Method::QgDmSgd => {
                let next = mix(&w, &lin(1.0, &x, -g_, &lin(1.0, &g, b_, &m)));
                m = if g_ > 0.0 {
                    lin(b_, &m, (1.0 - b_) / g_, &lin(1.0, &x, -1.0, &next))
                } else {
                    zero.clone()
                };
                next
            }
            // D2-DmSGD is D^2 with the direction m = beta m + g in place of g.
            Method::D2 | Method::D2DmSgd => {
                let step = if case.method == Method::D2DmSgd {
                    m = lin(b_, &m, 1.0, &g);
                    map(&m, |v| g_ * v)
                } else {
                    map(&g, |v| g_ * v)
                };
                let next = if k == 0 {
                    mix(&w, &lin(1.0, &x, -1.0, &step))
                } else {
                    let y = lin(2.0, &x, -1.0, &prev);
                    mix(&w, &lin(1.0, &lin(1.0, &y, -1.0, &step), 1.0, &prev_step))
                };
                prev_step = step;
                next
            }
            // Wang et al.: u = beta_s u + (a - avg x) / gamma; a = a - alpha gamma u; at a
            // step size of 0 its limit a = a - alpha (a - avg x), and u starts again from 0.
            Method::SlowMo {
                period,
                slow_lr,
                slow_momentum,
            } => {
                let mut next = dmsgd(&mut base, &x);
                if (k + 1) % period == 0 {
                    let gap = lin(1.0, &anchor, -1.0, &mix(&average(), &next));
                    if g_ > 0.0 {
                        let keep = if last_outer_lr > 0.0 {
                            slow_momentum
                        } else {
                            0.0
                        };
                        u = lin(keep, &u, 1.0 / g_, &gap);
                        anchor = lin(1.0, &anchor, -slow_lr * g_, &u);
                    } else {
                        u = zero.clone();
                        anchor = lin(1.0, &anchor, -slow_lr, &gap);
                    }
                    last_outer_lr = g_;
                    next = anchor.clone();
                }
                next
            }
            Method::GossipPga { period } => {
                let next = dmsgd(&mut base, &x);
                if (k + 1) % period == 0 {
                    mix(&average(), &next)
                } else {
                    next
                }
            }
        };
        prev = std::mem::replace(&mut x, next);
        out.push(x.clone());
    }
    out
}

/// Why a case must be refused (a fragment of the error), or `None` when it must run.
pub fn refusal(case: &Case) -> Option<&'static str> {
    let symmetric = matches!(
        case.comm_name,
        "static ring"
            | "one-peer hypercube"
            | "lazy one-peer hypercube"
            | "custom"
            | "hierarchical"
            | "global"
            | "none"
    );
    match case.method {
        Method::PmSgd if !matches!(case.comm_name, "global" | "none") => {
            Some("PmSGD averages gradients over all ranks")
        }
        Method::DecentLam | Method::D2 | Method::D2DmSgd if !symmetric => {
            Some("needs a symmetric W")
        }
        // Its W_k = (I + P_k) / 2 is singular: momentum makes the disagreement grow.
        Method::DecentLam if case.comm_name == "one-peer hypercube" => {
            Some("needs each W positive definite")
        }
        _ => None,
    }
}
