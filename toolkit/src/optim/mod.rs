//! Decentralized optimizers: one update rule each, written as in the talk, over any
//! communication the [`Fog`] handle offers. `W` below is the rank's row of the topology's
//! weight matrix applied by [`Fog::neighbor_allreduce`]; `g` is the local stochastic
//! gradient plus weight decay, `gamma` the step size at this step (warm-up and schedule
//! applied), `beta` the momentum.
//!
//! | method | update |
//! |---|---|
//! | PmSGD | `m = beta m + avg(g); x = x - gamma m` (allreduce of gradients: the centralized baseline) |
//! | DSGD (ATC) | `x = W(x - gamma g)` |
//! | DSGD (CTA) | `x = W x - gamma g` |
//! | DmSGD | `m = beta m + g; x = W(x - gamma m)` |
//! | DecentLaM | `x = W(x - gamma g) + beta (x - x_prev)`, run as momentum over the corrected gradient `c = (x - W(x - gamma g)) / gamma`: `m = beta m + c; x = x - gamma m` |
//! | DA-DmSGD | `m = W(beta m + g); x = W(x - gamma m)` (momentum averaged too) |
//! | AWC-DmSGD | `m = beta m + g; x = W x - gamma m` (combine while adapting) |
//! | QG-DmSGD | `x' = W(x - gamma (g + beta m)); m = beta m + (1 - beta)(x - x') / gamma; x = x'` (quasi-global momentum) |
//! | D^2 | `x1 = W(x0 - gamma g0)`, then `x+ = W(2x - x_prev - gamma g + gamma_prev g_prev)` |
//! | SlowMo | DmSGD inner steps; every `period` steps `u = beta_s u + (a - avg(x)) / gamma; a = a - alpha gamma u; x = a` |
//! | Gossip-PGA | DmSGD, and every `period` steps `x = avg(x)` (periodic global averaging) |
//!
//! With Nesterov momentum the step direction is `g + beta m` (for DecentLaM `c + beta m`)
//! instead of `m`. Every rank must start from the same parameters
//! ([`broadcast_parameters`]).
//!
//! DecentLaM's analysis needs a symmetric, doubly stochastic and positive-definite `W`; on
//! a directed (non-symmetric) topology it can diverge, so [`Optimizer::step`] refuses one.
//! A symmetric `W` with negative eigenvalues can be made positive definite with
//! [`Topology::lazy`](crate::topology::Topology::lazy), `(I + W) / 2`. Positive definiteness
//! is what the convergence proof assumes (the talk's A.3), and `step` does not demand it:
//! the ring's `W` (1/3 to itself and each neighbour) has eigenvalue -1/3 for an even number
//! of ranks, and DecentLaM trains on it in the book's experiments.
//!
//! ```
//! use fogkit::topology;
//! let w = topology::ring(8);
//! assert!(w.is_symmetric(1e-12) && !w.is_positive_definite());
//! assert!((w.eigenvalues().unwrap()[0] + 1.0 / 3.0).abs() < 1e-12);
//! assert!(w.lazy().is_positive_definite());
//! ```
//!
//! ```
//! use fogkit::optim::{Method, Optimizer};
//! use fogkit::prelude::*;
//! // f_i(x) = (x - i)^2 / 2 on 4 ranks: DecentLaM reaches the mean of 0..4 = 1.5.
//! let xs = fogkit::run(4, |bf: &Fog| -> fogkit::Result<f64> {
//!     bf.set_topology(topology::ring(4))?;
//!     let mut opt = Optimizer::new(Method::DecentLam).lr(0.1).momentum(0.5);
//!     let mut x = vec![0.0f64];
//!     for _ in 0..300 {
//!         let g = vec![x[0] - bf.rank() as f64];
//!         opt.step(bf, &mut x, &g)?;
//!     }
//!     Ok(x[0])
//! })
//! .unwrap();
//! assert!(xs.iter().all(|(_, x)| (x - 1.5).abs() < 0.2));
//! ```

mod method;
mod params;

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::{Cpu, Gradients};
use num_traits::Float;

use crate::ops::ReduceOp;
use crate::tensor::Element;
use crate::{Error, Fog, Result};

pub use method::{Method, Schedule};
pub use params::{gradients, parameters, set_parameters};

/// One rank's optimizer: the method, its hyper-parameters and its state. Each rank owns
/// one; `step` is collective (every rank calls it in the same order).
#[derive(Clone, Debug)]
pub struct Optimizer<E = f32> {
    method: Method,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    warmup: usize,
    schedule: Schedule,
    k: usize,
    /// Momentum (QG-DmSGD: the quasi-global one; SlowMo: the inner one).
    m: Vec<E>,
    /// D^2: the previous x; SlowMo: the anchor.
    prev: Vec<E>,
    /// D^2: the previous gamma g; SlowMo: the slow momentum.
    prev_step: Vec<E>,
    g: Vec<E>,
    y: Vec<E>,
    z: Vec<E>,
    /// A model's parameters and gradients, flat (kept between steps: no allocation).
    flat: (Vec<E>, Vec<E>),
}

impl<E: Element + Float> Optimizer<E> {
    /// An optimizer with step size 0.1, momentum 0.9 (used only by momentum methods), no
    /// Nesterov, no weight decay, no warm-up, constant schedule.
    pub fn new(method: Method) -> Self {
        Optimizer {
            method,
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            warmup: 0,
            schedule: Schedule::Constant,
            k: 0,
            m: Vec::new(),
            prev: Vec::new(),
            prev_step: Vec::new(),
            g: Vec::new(),
            y: Vec::new(),
            z: Vec::new(),
            flat: (Vec::new(), Vec::new()),
        }
    }
    /// The base step size gamma.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// The momentum beta.
    pub fn momentum(mut self, beta: f64) -> Self {
        self.momentum = beta;
        self
    }
    /// Nesterov momentum.
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
    /// L2 weight decay added to the gradient: `g = grad + wd x`.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Linear warm-up over the first `steps` steps: gamma (k + 1) / steps.
    pub fn warmup(mut self, steps: usize) -> Self {
        self.warmup = steps;
        self
    }
    /// The schedule after warm-up.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }
    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.k
    }

    /// The step size at step `k` (from 0).
    ///
    /// ```
    /// use fogkit::optim::{Method, Optimizer, Schedule};
    /// let opt = Optimizer::<f32>::new(Method::DmSgd).lr(0.4).warmup(4).schedule(Schedule::Step { every: 10, factor: 0.1 });
    /// assert_eq!(opt.lr_at(0), 0.1);
    /// assert_eq!(opt.lr_at(5), 0.4);
    /// assert!((opt.lr_at(12) - 0.04).abs() < 1e-12);
    /// ```
    pub fn lr_at(&self, k: usize) -> f64 {
        let warm = if k < self.warmup {
            (k + 1) as f64 / self.warmup as f64
        } else {
            1.0
        };
        let decay = match self.schedule {
            Schedule::Constant => 1.0,
            Schedule::Step { every, factor } => factor.powi((k / every.max(1)) as i32),
            Schedule::Cosine { total } => {
                let t = (k.min(total) as f64) / total.max(1) as f64;
                0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        };
        self.lr * warm * decay
    }

    /// One step on this rank's parameters `x` with its gradient `grad` (collective).
    pub fn step(&mut self, bf: &Fog, x: &mut [E], grad: &[E]) -> Result<()> {
        let n = x.len();
        if grad.len() != n {
            return Err(Error::InvalidArgument(format!(
                "a gradient of {} values for {n} parameters",
                grad.len()
            )));
        }
        if self.k == 0 {
            self.start(bf, x)?;
        } else if self.m.len() != n {
            return Err(Error::InvalidArgument(format!(
                "this optimizer has stepped {} parameters; now it was given {n}",
                self.m.len()
            )));
        }
        let gamma = self.lr_at(self.k);
        let (lr, beta) = (E::from_f64(gamma), E::from_f64(self.momentum));
        let wd = E::from_f64(self.weight_decay);
        if self.weight_decay == 0.0 {
            self.g.copy_from_slice(grad);
        } else {
            for ((g, &d), &p) in self.g.iter_mut().zip(grad).zip(x.iter()) {
                *g = d + wd * p;
            }
        }
        let nesterov = self.nesterov;
        // The step direction from the (updated) momentum and the gradient-like term.
        let dir = move |m: E, d: E| if nesterov { d + beta * m } else { m };
        let Optimizer {
            m,
            prev,
            prev_step,
            g,
            y,
            z,
            ..
        } = self;
        // Every buffer cut to `n`, so the loops below run without bounds checks (and vectorize).
        let (m, prev, prev_step) = (&mut m[..n], &mut prev[..n], &mut prev_step[..n]);
        let (g, y, z) = (&mut g[..n], &mut y[..n], &mut z[..n]);
        match self.method {
            Method::PmSgd => {
                bf.allreduce_into(g, y, ReduceOp::Avg)?;
                for ((x, m), &y) in x.iter_mut().zip(m.iter_mut()).zip(y.iter()) {
                    *m = beta * *m + y;
                    *x = *x - lr * dir(*m, y);
                }
            }
            Method::Dsgd => {
                sub_scaled(y, x, lr, g);
                bf.neighbor_allreduce_into(y, x)?;
            }
            Method::DsgdCta => {
                bf.neighbor_allreduce_into(x, y)?;
                sub_scaled(x, y, lr, g);
            }
            Method::DmSgd => dmsgd(bf, x, g, m, y, lr, dir, beta)?,
            Method::DecentLam => {
                sub_scaled(y, x, lr, g);
                bf.neighbor_allreduce_into(y, z)?;
                for ((x, m), &z) in x.iter_mut().zip(m.iter_mut()).zip(z.iter()) {
                    let c = (*x - z) / lr;
                    *m = beta * *m + c;
                    *x = *x - lr * dir(*m, c);
                }
            }
            Method::DaDmSgd => {
                for ((y, &m), &g) in y.iter_mut().zip(m.iter()).zip(g.iter()) {
                    *y = beta * m + g;
                }
                bf.neighbor_allreduce_into(y, m)?;
                for (((y, &x), &m), &g) in y.iter_mut().zip(x.iter()).zip(m.iter()).zip(g.iter()) {
                    *y = x - lr * dir(m, g);
                }
                bf.neighbor_allreduce_into(y, x)?;
            }
            Method::AwcDmSgd => {
                bf.neighbor_allreduce_into(x, z)?;
                for (((x, m), &z), &g) in x.iter_mut().zip(m.iter_mut()).zip(z.iter()).zip(g.iter())
                {
                    *m = beta * *m + g;
                    *x = z - lr * dir(*m, g);
                }
            }
            Method::QgDmSgd => {
                for (((y, &x), &g), &m) in y.iter_mut().zip(x.iter()).zip(g.iter()).zip(m.iter()) {
                    *y = x - lr * (g + beta * m);
                }
                bf.neighbor_allreduce_into(y, z)?;
                let one = E::from_f64(1.0);
                for ((x, m), &z) in x.iter_mut().zip(m.iter_mut()).zip(z.iter()) {
                    *m = beta * *m + (one - beta) * (*x - z) / lr;
                    *x = z;
                }
            }
            Method::D2 => {
                let two = E::from_f64(2.0);
                for i in 0..n {
                    let s = lr * g[i];
                    y[i] = if self.k == 0 {
                        x[i] - s
                    } else {
                        two * x[i] - prev[i] - s + prev_step[i]
                    };
                    prev[i] = x[i];
                    prev_step[i] = s;
                }
                bf.neighbor_allreduce_into(y, x)?;
            }
            Method::SlowMo {
                period,
                slow_lr,
                slow_momentum,
            } => {
                dmsgd(bf, x, g, m, y, lr, dir, beta)?;
                if (self.k + 1) % period.max(1) == 0 {
                    bf.allreduce_into(x, z, ReduceOp::Avg)?;
                    let (alpha, bs) = (E::from_f64(slow_lr), E::from_f64(slow_momentum));
                    for i in 0..n {
                        prev_step[i] = bs * prev_step[i] + (prev[i] - z[i]) / lr;
                        prev[i] = prev[i] - alpha * lr * prev_step[i];
                        x[i] = prev[i];
                    }
                }
            }
            Method::GossipPga { period } => {
                dmsgd(bf, x, g, m, y, lr, dir, beta)?;
                if (self.k + 1) % period.max(1) == 0 {
                    bf.allreduce_into(x, z, ReduceOp::Avg)?;
                    x.copy_from_slice(z);
                }
            }
        }
        self.k += 1;
        Ok(())
    }

    /// First step: state buffers, and the checks that need the topology.
    fn start(&mut self, bf: &Fog, x: &[E]) -> Result<()> {
        let n = x.len();
        for b in [
            &mut self.m,
            &mut self.prev_step,
            &mut self.g,
            &mut self.y,
            &mut self.z,
        ] {
            *b = vec![E::default(); n];
        }
        self.prev = x.to_vec();
        if self.method == Method::DecentLam && !bf.topology().is_symmetric(1e-12) {
            return Err(Error::Topology(
                "DecentLaM needs a symmetric weight matrix W (doubly stochastic and positive \
                 definite, e.g. topology::symmetric_exponential(n).lazy()); on this directed \
                 topology it can diverge"
                    .into(),
            ));
        }
        if self.lr.is_nan() || self.lr <= 0.0 || !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::InvalidArgument(format!(
                "expected a step size > 0 and a momentum in [0, 1), found lr = {} and momentum = {}",
                self.lr, self.momentum
            )));
        }
        Ok(())
    }
}

/// `out = x - gamma g`.
fn sub_scaled<E: Element + Float>(out: &mut [E], x: &[E], lr: E, g: &[E]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        *o = x - lr * g;
    }
}

/// `m = beta m + g; x = W(x - gamma dir(m, g))`.
#[allow(clippy::too_many_arguments)]
fn dmsgd<E: Element + Float>(
    bf: &Fog,
    x: &mut [E],
    g: &[E],
    m: &mut [E],
    y: &mut [E],
    lr: E,
    dir: impl Fn(E, E) -> E,
    beta: E,
) -> Result<()> {
    let n = x.len();
    let (g, m, y) = (&g[..n], &mut m[..n], &mut y[..n]);
    for i in 0..n {
        m[i] = beta * m[i] + g[i];
        y[i] = x[i] - lr * dir(m[i], g[i]);
    }
    bf.neighbor_allreduce_into(y, x)
}

impl Optimizer<f32> {
    /// One step on a dfdx model: its parameters travel as one fused vector.
    ///
    /// ```
    /// use fogkit::dfdx::prelude::*;
    /// use fogkit::optim::{Method, Optimizer};
    /// use fogkit::prelude::*;
    /// let w = fogkit::run(2, |bf: &Fog| -> fogkit::Result<Vec<f32>> {
    ///     let dev: Cpu = Default::default();
    ///     let mut model = dev.build_module::<Linear<1, 1>, f32>();
    ///     fogkit::optim::broadcast_parameters(bf, &mut model, 0)?;
    ///     let mut opt = Optimizer::new(Method::DmSgd).lr(0.05);
    ///     let x = dev.tensor([[1.0f32], [2.0]]);
    ///     let y = dev.tensor([[2.0f32], [4.0]]) * (bf.rank() as f32 + 1.0);
    ///     for _ in 0..200 {
    ///         let loss = mse_loss(model.forward(x.clone().leaky_trace()), y.clone());
    ///         let mut grads = loss.backward();
    ///         opt.update(bf, &mut model, &mut grads)?;
    ///     }
    ///     Ok(fogkit::optim::parameters(&model))
    /// })
    /// .unwrap();
    /// assert!((w[0][0] - 3.0).abs() < 0.3); // the slope that fits both ranks' data on average
    /// ```
    pub fn update<M: TensorCollection<f32, Cpu>>(
        &mut self,
        bf: &Fog,
        model: &mut M,
        grads: &mut Gradients<f32, Cpu>,
    ) -> Result<()> {
        let (mut x, mut g) = std::mem::take(&mut self.flat);
        params::read_into(model, None, &mut x)?;
        params::read_into(model, Some(grads), &mut g)?;
        let stepped = self.step(bf, &mut x, &g);
        let written = stepped.and_then(|()| set_parameters(model, &x));
        self.flat = (x, g);
        written
    }
}

/// Gives every rank `root`'s parameters (collective): decentralized training starts from
/// one model.
pub fn broadcast_parameters<M: TensorCollection<f32, Cpu>>(
    bf: &Fog,
    model: &mut M,
    root: usize,
) -> Result<()> {
    let x = bf.broadcast(&parameters(model), root)?;
    set_parameters(model, &x)
}
