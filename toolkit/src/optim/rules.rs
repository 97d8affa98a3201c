//! The update rules, each once, as its equation (the module table of `optim`), with its
//! own named state. `W` is whatever communication the optimizer was given ([`Plan`]);
//! a rule never picks its communication and never checks its hyper-parameters.

use num_traits::Float;

use super::base::{Base, Local};
use super::comm::{Inflight, Plan};
use super::method::Method;
use crate::ops::ReduceOp;
use crate::tensor::Element;
use crate::{Fog, Result};

/// What a rule sees at one step.
pub(crate) struct Cx<'a> {
    pub(crate) bf: &'a Fog,
    /// `W` at this step.
    pub(crate) w: &'a Plan,
    pub(crate) gamma: f64,
    pub(crate) beta: f64,
    pub(crate) nesterov: bool,
    /// The step, from 0.
    pub(crate) k: usize,
}

/// Adapt then combine: `x = W(x - d)`, `d` from the base optimizer.
#[derive(Clone, Debug)]
pub(crate) struct Atc<E> {
    local: Local<E>,
    d: Vec<E>,
    y: Vec<E>,
}

/// Adapt while combine: `x = W x - d` (`W x` can be in flight while `d` is computed).
#[derive(Clone, Debug)]
pub(crate) struct Awc<E> {
    local: Local<E>,
    d: Vec<E>,
    wx: Vec<E>,
    /// `W x`, started before the gradient was computed ([`Rule::begin`]).
    inflight: Inflight<E>,
}

/// One rule and its state.
#[derive(Clone, Debug)]
pub(crate) enum Rule<E> {
    /// `m = beta m + W g; x = x - gamma dir(m, W g)` (W: the global average).
    PmSgd {
        m: Vec<E>,
        wg: Vec<E>,
    },
    Atc(Atc<E>),
    Awc(Awc<E>),
    /// `x+ = W(x - gamma g) + beta (x - x_prev)`, kept as the velocity `v = x - x_prev`.
    DecentLam {
        v: Vec<E>,
        y: Vec<E>,
        z: Vec<E>,
    },
    /// `m = W(beta m + g); x = W(x - gamma dir(m, g))`.
    DaDmSgd {
        m: Vec<E>,
        y: Vec<E>,
    },
    /// Quasi-global momentum, kept scaled by the step size: `mu = gamma m_hat`.
    QgDmSgd {
        mu: Vec<E>,
        y: Vec<E>,
        z: Vec<E>,
        last_lr: f64,
    },
    /// `m = beta m + g; x+ = W(2x - x_prev - gamma m + gamma_prev m_prev)`: D^2 with
    /// `beta = 0` (`m = g`), D2-DmSGD with `momentum`.
    D2 {
        momentum: bool,
        m: Vec<E>,
        prev: Vec<E>,
        prev_step: Vec<E>,
        y: Vec<E>,
    },
    /// DmSGD inner steps; every `period`: `s = beta_s r s + (a - avg x); a = a - alpha s;
    /// x = a` (`s = gamma u`, the paper's slow momentum scaled, `r` the ratio of step sizes).
    SlowMo {
        inner: Atc<E>,
        period: usize,
        slow_lr: f64,
        slow_momentum: f64,
        anchor: Vec<E>,
        s: Vec<E>,
        avg: Vec<E>,
        last_lr: f64,
    },
    /// DmSGD, and every `period` steps `x = avg(x)`.
    GossipPga {
        inner: Atc<E>,
        period: usize,
        avg: Vec<E>,
    },
}

fn zeros<E: Element + Float>(n: usize) -> Vec<E> {
    vec![E::zero(); n]
}

impl<E: Element + Float> Atc<E> {
    fn new(base: Base, n: usize, beta: f64, nesterov: bool) -> Result<Self> {
        Ok(Atc {
            local: Local::new(base, n, beta, nesterov)?,
            d: zeros(n),
            y: zeros(n),
        })
    }

    fn step(&mut self, cx: &Cx, beta: f64, x: &mut [E], g: &[E]) -> Result<()> {
        self.local
            .displacement(g, cx.gamma, beta, cx.nesterov, &mut self.d);
        for ((y, &x), &d) in self.y.iter_mut().zip(x.iter()).zip(&self.d) {
            *y = x - d;
        }
        cx.w.apply(cx.bf, &self.y, x)
    }
}

impl<E: Element + Float> Awc<E> {
    fn new(base: Base, n: usize, beta: f64, nesterov: bool) -> Result<Self> {
        Ok(Awc {
            local: Local::new(base, n, beta, nesterov)?,
            d: zeros(n),
            wx: zeros(n),
            inflight: Inflight::default(),
        })
    }
}

impl<E: Element + Float> Rule<E> {
    /// The rule for `method` on `n` parameters starting at `x`.
    pub(crate) fn new(method: Method, x: &[E], beta: f64, nesterov: bool) -> Result<Self> {
        let n = x.len();
        Ok(match method {
            Method::PmSgd => Rule::PmSgd {
                m: zeros(n),
                wg: zeros(n),
            },
            Method::Dsgd => Rule::Atc(Atc::new(Base::Sgd, n, 0.0, false)?),
            Method::DmSgd => Rule::Atc(Atc::new(Base::Sgd, n, beta, nesterov)?),
            Method::Atc(base) => Rule::Atc(Atc::new(base, n, beta, nesterov)?),
            Method::DsgdCta => Rule::Awc(Awc::new(Base::Sgd, n, 0.0, false)?),
            Method::AwcDmSgd => Rule::Awc(Awc::new(Base::Sgd, n, beta, nesterov)?),
            Method::Awc(base) => Rule::Awc(Awc::new(base, n, beta, nesterov)?),
            Method::DecentLam => Rule::DecentLam {
                v: zeros(n),
                y: zeros(n),
                z: zeros(n),
            },
            Method::DaDmSgd => Rule::DaDmSgd {
                m: zeros(n),
                y: zeros(n),
            },
            Method::QgDmSgd => Rule::QgDmSgd {
                mu: zeros(n),
                y: zeros(n),
                z: zeros(n),
                last_lr: 0.0,
            },
            Method::D2 | Method::D2DmSgd => Rule::D2 {
                momentum: method == Method::D2DmSgd,
                m: zeros(n),
                prev: x.to_vec(),
                prev_step: zeros(n),
                y: zeros(n),
            },
            Method::SlowMo {
                period,
                slow_lr,
                slow_momentum,
            } => Rule::SlowMo {
                inner: Atc::new(Base::Sgd, n, beta, nesterov)?,
                period,
                slow_lr,
                slow_momentum,
                anchor: x.to_vec(),
                s: zeros(n),
                avg: zeros(n),
                last_lr: 0.0,
            },
            Method::GossipPga { period } => Rule::GossipPga {
                inner: Atc::new(Base::Sgd, n, beta, nesterov)?,
                period,
                avg: zeros(n),
            },
        })
    }

    /// One step of the rule on `x` with gradient `g` (collective unless `W = I`).
    pub(crate) fn step(&mut self, cx: &Cx, x: &mut [E], g: &[E]) -> Result<()> {
        let (lr, beta) = (E::from_f64(cx.gamma), E::from_f64(cx.beta));
        let nesterov = cx.nesterov;
        let dir = move |m: E, d: E| if nesterov { d + beta * m } else { m };
        match self {
            Rule::PmSgd { m, wg } => {
                cx.w.apply(cx.bf, g, wg)?;
                for ((x, m), &wg) in x.iter_mut().zip(m.iter_mut()).zip(wg.iter()) {
                    *m = beta * *m + wg;
                    *x = *x - lr * dir(*m, wg);
                }
            }
            Rule::Atc(a) => a.step(cx, cx.beta, x, g)?,
            Rule::Awc(a) => {
                if a.inflight.is_some() {
                    // Started by `begin`; its span overlapped the caller's gradient.
                    a.inflight.wait_into(&mut a.wx)?;
                } else {
                    cx.w.apply(cx.bf, x, &mut a.wx)?;
                }
                a.local
                    .displacement(g, cx.gamma, cx.beta, nesterov, &mut a.d);
                for ((x, &wx), &d) in x.iter_mut().zip(&a.wx).zip(&a.d) {
                    *x = wx - d;
                }
            }
            Rule::DecentLam { v, y, z } => {
                for ((y, &x), &g) in y.iter_mut().zip(x.iter()).zip(g) {
                    *y = x - lr * g;
                }
                cx.w.apply(cx.bf, y, z)?;
                for ((x, v), &z) in x.iter_mut().zip(v.iter_mut()).zip(z.iter()) {
                    *v = beta * *v + (z - *x);
                    *x = if nesterov { z + beta * *v } else { *x + *v };
                }
            }
            Rule::DaDmSgd { m, y } => {
                for ((y, &m), &g) in y.iter_mut().zip(m.iter()).zip(g) {
                    *y = beta * m + g;
                }
                cx.w.apply(cx.bf, y, m)?;
                for (((y, &x), &m), &g) in y.iter_mut().zip(x.iter()).zip(m.iter()).zip(g) {
                    *y = x - lr * dir(m, g);
                }
                cx.w.apply(cx.bf, y, x)?;
            }
            Rule::QgDmSgd { mu, y, z, last_lr } => {
                let r = E::from_f64(ratio(cx.gamma, *last_lr));
                for (((y, &x), &g), &mu) in y.iter_mut().zip(x.iter()).zip(g).zip(mu.iter()) {
                    *y = x - lr * g - beta * r * mu;
                }
                cx.w.apply(cx.bf, y, z)?;
                let one = E::one();
                for ((x, mu), &z) in x.iter_mut().zip(mu.iter_mut()).zip(z.iter()) {
                    *mu = beta * r * *mu + (one - beta) * (*x - z);
                    *x = z;
                }
                *last_lr = cx.gamma;
            }
            Rule::D2 {
                momentum,
                m,
                prev,
                prev_step,
                y,
            } => {
                let two = E::from_f64(2.0);
                let b = if *momentum { beta } else { E::zero() };
                let first = cx.k == 0;
                for (m, &g) in m.iter_mut().zip(g) {
                    *m = b * *m + g;
                }
                let it = y.iter_mut().zip(x.iter()).zip(prev.iter_mut());
                for (((y, &x), p), (ps, &m)) in it.zip(prev_step.iter_mut().zip(m.iter())) {
                    let s = lr * m;
                    *y = if first { x - s } else { two * x - *p - s + *ps };
                    *p = x;
                    *ps = s;
                }
                cx.w.apply(cx.bf, y, x)?;
            }
            Rule::SlowMo {
                inner,
                period,
                slow_lr,
                slow_momentum,
                anchor,
                s,
                avg,
                last_lr,
            } => {
                inner.step(cx, cx.beta, x, g)?;
                if (cx.k + 1) % *period == 0 {
                    cx.bf.allreduce_into(x, avg, ReduceOp::Avg)?;
                    let bs = E::from_f64(*slow_momentum * ratio(cx.gamma, *last_lr));
                    let alpha = E::from_f64(*slow_lr);
                    let it = anchor.iter_mut().zip(s.iter_mut()).zip(avg.iter());
                    for (((a, s), &z), x) in it.zip(x.iter_mut()) {
                        *s = bs * *s + (*a - z);
                        *a = *a - alpha * *s;
                        *x = *a;
                    }
                    *last_lr = cx.gamma;
                }
            }
            Rule::GossipPga { inner, period, avg } => {
                inner.step(cx, cx.beta, x, g)?;
                if (cx.k + 1) % *period == 0 {
                    cx.bf.allreduce_into(x, avg, ReduceOp::Avg)?;
                    x.copy_from_slice(avg);
                }
            }
        }
        Ok(())
    }

    /// Starts this step's `W x` before the gradient exists, where the rule allows it (the
    /// adapt-while-combine forms); returns whether it did.
    pub(crate) fn begin(&mut self, bf: &Fog, w: &Plan, x: &[E]) -> Result<bool> {
        match self {
            Rule::Awc(a) => {
                // A `W x` begun for a step that never came is stale: start afresh (the
                // old one still finishes on every rank; its result is dropped).
                if a.wx.len() != x.len() {
                    return Err(crate::Error::InvalidArgument(format!(
                        "begin was given {} parameters; this optimizer steps {}",
                        x.len(),
                        a.wx.len()
                    )));
                }
                a.inflight = w.start(bf, x)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The state vectors, in a fixed order (for broadcast_optimizer_state).
    pub(crate) fn vectors(&mut self) -> Vec<&mut Vec<E>> {
        match self {
            Rule::PmSgd { m, .. } => vec![m],
            Rule::Atc(a) => vec![&mut a.local.m, &mut a.local.v],
            Rule::Awc(a) => vec![&mut a.local.m, &mut a.local.v],
            Rule::DecentLam { v, .. } => vec![v],
            Rule::DaDmSgd { m, .. } => vec![m],
            Rule::QgDmSgd { mu, .. } => vec![mu],
            Rule::D2 {
                m, prev, prev_step, ..
            } => vec![m, prev, prev_step],
            Rule::SlowMo {
                inner, anchor, s, ..
            } => vec![&mut inner.local.m, anchor, s],
            Rule::GossipPga { inner, .. } => vec![&mut inner.local.m],
        }
    }

    /// The state numbers, in a fixed order (for broadcast_optimizer_state).
    pub(crate) fn scalars(&mut self) -> Vec<&mut f64> {
        match self {
            Rule::Atc(a) => vec![&mut a.local.t],
            Rule::Awc(a) => vec![&mut a.local.t],
            Rule::QgDmSgd { last_lr, .. } | Rule::SlowMo { last_lr, .. } => vec![last_lr],
            _ => vec![],
        }
    }
}

/// `gamma / gamma_prev`, 0 when the previous step size was 0 (the state it scaled is then
/// a displacement of zero length: nothing to carry).
fn ratio(gamma: f64, prev: f64) -> f64 {
    if prev == 0.0 {
        0.0
    } else {
        gamma / prev
    }
}
