//! [`Optimizer`]: an update rule x a communication, with the step size, local steps and
//! gradient accumulation around them. It checks what the rule needs of `W` whenever `W`
//! changes, and never does a rule's arithmetic itself.

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::{Device, Gradients};
use num_traits::Float;

use super::comm::{Communication, Plan};
use super::method::{Method, Schedule};
use super::params::{self, set_parameters};
use super::rules::{Cx, Rule};
use crate::tensor::Element;
use crate::{Error, Fog, Result};

/// One rank's optimizer: the method, its communication, its hyper-parameters and its
/// state. Each rank owns one; `step` is collective (every rank calls it in the same order).
///
/// ```
/// use fogkit::optim::{Communication, Dynamic, Method, Optimizer};
/// use fogkit::prelude::*;
/// // DmSGD over the one-peer exponential graph, communicating every second step.
/// let xs = fogkit::run(4, |bf: &Fog| -> fogkit::Result<f64> {
///     let mut opt = Optimizer::new(Method::DmSgd)
///         .lr(0.1)
///         .momentum(0.5)
///         .communication(Communication::Dynamic(Dynamic::OnePeerExponential))
///         .communicate_every(2);
///     let mut x = vec![0.0f64];
///     for _ in 0..400 {
///         let g = vec![x[0] - bf.rank() as f64];
///         opt.step(bf, &mut x, &g)?;
///     }
///     Ok(x[0])
/// })
/// .unwrap();
/// assert!(xs.iter().all(|(_, x)| (x - 1.5).abs() < 0.3), "{xs:?}");
/// ```
#[derive(Clone, Debug)]
pub struct Optimizer<E = f32> {
    method: Method,
    communication: Option<Communication>,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    warmup: usize,
    schedule: Schedule,
    every: usize,
    accumulate: usize,
    /// Steps taken.
    k: usize,
    /// Gradients added since the last step (accumulation).
    calls: usize,
    acc: Vec<E>,
    g: Vec<E>,
    rule: Option<Rule<E>>,
    /// The fingerprint of the last static `W` found symmetric.
    checked: Option<u64>,
    /// The momentum and Nesterov setting the rule's state was made for.
    made_for: (f64, bool),
    /// A model's parameters and gradients, flat (kept between steps: no allocation).
    flat: (Vec<E>, Vec<E>),
}

impl<E: Element + Float> Optimizer<E> {
    /// An optimizer with step size 0.1, momentum 0.9 (used only by momentum methods), no
    /// Nesterov, no weight decay, no warm-up, constant schedule, the method's default
    /// communication, communicating at every step.
    pub fn new(method: Method) -> Self {
        Optimizer {
            method,
            communication: None,
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            warmup: 0,
            schedule: Schedule::Constant,
            every: 1,
            accumulate: 1,
            k: 0,
            calls: 0,
            acc: Vec::new(),
            g: Vec::new(),
            rule: None,
            checked: None,
            made_for: (0.0, false),
            flat: (Vec::new(), Vec::new()),
        }
    }
    /// The base step size gamma.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// The momentum beta (Adam's beta1).
    pub fn momentum(mut self, beta: f64) -> Self {
        self.momentum = beta;
        self
    }
    /// Nesterov momentum (momentum methods only; refused by the others at the first step).
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
    /// How `W x` is formed (default: [`Method::default_communication`]).
    pub fn communication(mut self, comm: Communication) -> Self {
        self.communication = Some(comm);
        self
    }
    /// Communicate at every `p`-th step only, local steps (`W = I`) between (BlueFog's
    /// `num_steps_per_communication`).
    pub fn communicate_every(mut self, p: usize) -> Self {
        self.every = p;
        self
    }
    /// Gradient accumulation: a step every `a` calls of `step`/`update`, with the mean of
    /// their gradients; the other calls only add their gradient.
    pub fn accumulate(mut self, a: usize) -> Self {
        self.accumulate = a;
        self
    }
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }
    /// The communication in force.
    pub fn communication_in_force(&self) -> Communication {
        self.communication
            .clone()
            .unwrap_or_else(|| self.method.default_communication())
    }
    /// Whether the momentum is on (beta > 0).
    pub(crate) fn momentum_on(&self) -> bool {
        self.momentum > 0.0
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
        self.lr * warm * self.schedule.factor(k)
    }

    /// One call with this rank's parameters `x` and gradient `grad` (collective): a step,
    /// or with [`accumulate`](Self::accumulate) only adding `grad` until the step comes.
    pub fn step(&mut self, bf: &Fog, x: &mut [E], grad: &[E]) -> Result<()> {
        let n = x.len();
        if grad.len() != n {
            return Err(Error::InvalidArgument(format!(
                "a gradient of {} values for {n} parameters",
                grad.len()
            )));
        }
        self.ready(x)?;
        if self.accumulate > 1 {
            for (a, &d) in self.acc.iter_mut().zip(grad) {
                *a = *a + d;
            }
            self.calls += 1;
            if self.calls < self.accumulate {
                return Ok(());
            }
            self.calls = 0;
            let scale = E::from_f64(1.0 / self.accumulate as f64);
            for (g, a) in self.g.iter_mut().zip(self.acc.iter_mut()) {
                *g = *a * scale;
                *a = E::zero();
            }
        } else {
            self.g.copy_from_slice(grad);
        }
        if self.weight_decay != 0.0 {
            let wd = E::from_f64(self.weight_decay);
            for (g, &p) in self.g.iter_mut().zip(x.iter()) {
                *g = *g + wd * p;
            }
        }
        let comm = self.communication_in_force();
        let (plan, round) = self.plan(bf)?;
        if self.method.needs_symmetric() {
            let fp = plan.fingerprint();
            if fp.is_none() || fp != self.checked {
                if let Some(why) = comm.asymmetry(bf, &plan, round)? {
                    return Err(Error::Topology(format!(
                        "{} needs a symmetric W (doubly stochastic, e.g. \
                         topology::symmetric_exponential(n).lazy() or the lazy one-peer hypercube); \
                         {why}",
                        self.method.name()
                    )));
                }
                if matches!(self.method, Method::D2 | Method::D2DmSgd) && bf.rank() == 0 {
                    let warning = match &plan {
                        Plan::Static(t) => super::comm::d2_warning(t, "static"),
                        Plan::Hierarchical(t) => super::comm::d2_warning(t, "machine"),
                        _ => None,
                    };
                    if let Some(w) = warning {
                        tracing::warn!("{w}");
                    }
                }
                self.checked = fp;
            }
        }
        // Checked on the steps that communicate (a local step's W is I).
        if self.method == Method::DecentLam
            && self.momentum != 0.0
            && !matches!(plan, Plan::Identity)
        {
            // x - x_prev carries each step's averaging into the next: over a changing W
            // the disagreement grows unless every W_k is positive definite.
            if let Some(why) = comm.indefinite(bf, round)? {
                return Err(Error::Topology(format!(
                    "DecentLaM's momentum over a changing W needs each W positive definite \
                     (fogkit checks that every self weight exceeds the neighbours' sum, e.g. \
                     the lazy one-peer hypercube); {why}; or train without momentum"
                )));
            }
        }
        let cx = Cx {
            bf,
            w: &plan,
            gamma: self.lr_at(self.k),
            beta: self.momentum,
            nesterov: self.nesterov,
            k: self.k,
        };
        match self.rule.as_mut() {
            Some(rule) => rule.step(&cx, x, &self.g)?,
            None => unreachable!("started above"),
        }
        self.k += 1;
        Ok(())
    }

    /// `W` at this step, and the schedule's round: a dynamic schedule advances once per
    /// communication (as BlueFog's generators do), not once per step, so with local steps
    /// between it still visits every peer.
    fn plan(&self, bf: &Fog) -> Result<(super::comm::Plan, usize)> {
        let round = self.k / self.every;
        let plan = if (self.k + 1) % self.every == 0 {
            self.communication_in_force().plan(bf, round)?
        } else {
            Communication::None.plan(bf, round)?
        };
        Ok((plan, round))
    }

    /// Starts this step's exchange of `x` before the gradient is computed, so that it runs
    /// on the communication thread while the caller computes; the next [`step`](Self::step)
    /// (with the same `x`) waits for it. Adapt-while-combine forms only (AWC-DmSGD,
    /// DSGD-CTA, AWC-*base*), whose `W x` needs no gradient; for the others, for a call
    /// that only accumulates, and on a local step, nothing travels. Returns whether an
    /// exchange started. An exchange begun for a step that never came is dropped by the
    /// next `begin`.
    ///
    /// ```
    /// use fogkit::optim::{Method, Optimizer};
    /// use fogkit::prelude::*;
    /// let xs = fogkit::run(4, |bf: &Fog| -> fogkit::Result<f64> {
    ///     bf.set_topology(topology::ring(4))?;
    ///     let mut opt = Optimizer::new(Method::AwcDmSgd).lr(0.1).momentum(0.5);
    ///     let mut x = vec![0.0f64];
    ///     for _ in 0..300 {
    ///         assert!(opt.begin(bf, &x)?); // W x travels ...
    ///         let g = vec![x[0] - bf.rank() as f64]; // ... while the gradient is computed
    ///         opt.step(bf, &mut x, &g)?;
    ///     }
    ///     Ok(x[0])
    /// })
    /// .unwrap();
    /// // The average is the optimum, 1.5; each rank is off by AWC's limiting bias.
    /// let mean = xs.iter().map(|(_, x)| x).sum::<f64>() / 4.0;
    /// assert!((mean - 1.5).abs() < 1e-9 && xs.iter().all(|(_, x)| (x - 1.5).abs() < 0.4), "{xs:?}");
    /// ```
    pub fn begin(&mut self, bf: &Fog, x: &[E]) -> Result<bool> {
        self.ready(x)?;
        if self.accumulate > 1 && self.calls + 1 < self.accumulate {
            return Ok(false);
        }
        let (plan, _) = self.plan(bf)?;
        let local = matches!(plan, super::comm::Plan::Identity);
        match self.rule.as_mut() {
            // A local step (W = I) keeps x as it is: nothing travels.
            Some(rule) => Ok(rule.begin(bf, &plan, x)? && !local),
            None => Ok(false),
        }
    }

    /// Starts the rule at the first call; at every later one, checks that `x` and the
    /// settings still fit the state (builder calls after the first step that the state
    /// cannot follow are errors, not silently ignored).
    fn ready(&mut self, x: &[E]) -> Result<()> {
        if self.rule.is_none() {
            return self.start(x);
        }
        let n = x.len();
        if self.g.len() != n {
            return Err(Error::InvalidArgument(format!(
                "this optimizer has stepped {} parameters; now it was given {n}",
                self.g.len()
            )));
        }
        if self.every == 0 || self.accumulate == 0 {
            return Err(Error::InvalidArgument(format!(
                "{}: expected communicate_every and accumulate of at least 1, found {} and {}",
                self.method.name(),
                self.every,
                self.accumulate
            )));
        }
        let (beta, nesterov) = self.made_for;
        if (beta > 0.0) != (self.momentum > 0.0) || nesterov != self.nesterov {
            return Err(Error::InvalidArgument(format!(
                "{}: the momentum was {beta} (Nesterov {nesterov}) at the first step and is now \
                 {} (Nesterov {}): turning momentum or Nesterov on or off needs a new optimizer",
                self.method.name(),
                self.momentum,
                self.nesterov
            )));
        }
        if self.accumulate > 1 && self.acc.len() != n {
            self.acc = vec![E::zero(); n];
            self.calls = 0;
        }
        Ok(())
    }

    /// Drops gradients accumulated since the last step.
    pub(crate) fn reset_accumulation(&mut self) {
        self.calls = 0;
        self.acc.iter_mut().for_each(|a| *a = E::zero());
    }

    /// [`begin`](Self::begin) for a dfdx model: call it before the forward pass, and
    /// [`update`](Self::update) after the backward pass.
    pub fn begin_update<D: Device<E>, M: TensorCollection<E, D>>(
        &mut self,
        bf: &Fog,
        model: &M,
    ) -> Result<bool>
    where
        E: dfdx::dtypes::Dtype,
    {
        let (mut x, g) = std::mem::take(&mut self.flat);
        let started = params::read_into(model, None, &mut x).and_then(|()| self.begin(bf, &x));
        self.flat = (x, g);
        started
    }

    /// The first call: hyper-parameters checked, the rule's state made.
    fn start(&mut self, x: &[E]) -> Result<()> {
        let name = self.method.name();
        let bad = |what: String| Err(Error::InvalidArgument(format!("{name}: {what}")));
        if !self.lr.is_finite() || self.lr <= 0.0 || !(0.0..1.0).contains(&self.momentum) {
            return bad(format!(
                "expected a step size > 0 and a momentum in [0, 1), found lr = {} and momentum = {}",
                self.lr, self.momentum
            ));
        }
        if self.nesterov
            && (!self.method.has_momentum()
                || matches!(self.method, Method::QgDmSgd | Method::D2DmSgd))
        {
            return bad(
                "Nesterov momentum is not defined for this method (QG-DmSGD's step already \
                 looks ahead by beta m; D2-DmSGD is defined with m; DSGD, DSGD-CTA and D2 \
                 have no momentum): turn it off"
                    .into(),
            );
        }
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return bad(format!(
                "expected a weight decay >= 0, found {}",
                self.weight_decay
            ));
        }
        if self.every == 0 || self.accumulate == 0 {
            return bad(format!(
                "expected communicate_every and accumulate of at least 1, found {} and {}",
                self.every, self.accumulate
            ));
        }
        match self.method {
            Method::SlowMo { period: 0, .. } | Method::GossipPga { period: 0 } => {
                return bad("expected a period of at least 1, found 0".into())
            }
            Method::SlowMo { slow_lr, slow_momentum, .. }
                if !slow_lr.is_finite() || !(0.0..1.0).contains(&slow_momentum) =>
            {
                return bad(format!(
                    "expected a finite slow step size and a slow momentum in [0, 1), found {slow_lr} and {slow_momentum}"
                ))
            }
            _ => {}
        }
        if let Schedule::Step { every, factor } = self.schedule {
            if every == 0 || !factor.is_finite() || factor <= 0.0 {
                return bad(format!(
                    "a step schedule expects every >= 1 and a factor > 0, found every = {every} and factor = {factor}"
                ));
            }
        }
        if let Some(why) = self.method.refuses(&self.communication_in_force()) {
            return Err(Error::InvalidArgument(why));
        }
        let n = x.len();
        self.rule = Some(
            Rule::new(self.method, x, self.momentum, self.nesterov)
                .map_err(|e| Error::InvalidArgument(format!("{name}: {e}")))?,
        );
        self.made_for = (self.momentum, self.nesterov);
        self.g = vec![E::zero(); n];
        self.acc = if self.accumulate > 1 {
            vec![E::zero(); n]
        } else {
            Vec::new()
        };
        Ok(())
    }

    /// One call on a dfdx model (any element type and device dfdx offers): its parameters
    /// travel as one fused vector.
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
    pub fn update<D: Device<E>, M: TensorCollection<E, D>>(
        &mut self,
        bf: &Fog,
        model: &mut M,
        grads: &mut Gradients<E, D>,
    ) -> Result<()>
    where
        E: dfdx::dtypes::Dtype,
    {
        let (mut x, mut g) = std::mem::take(&mut self.flat);
        params::read_into(model, None, &mut x)?;
        params::read_into(model, Some(grads), &mut g)?;
        let before = self.k;
        let stepped = self.step(bf, &mut x, &g);
        let written = stepped.and_then(|()| {
            if self.k > before {
                set_parameters(model, &x)
            } else {
                Ok(())
            }
        });
        self.flat = (x, g);
        written
    }

    /// The rule's state, for broadcast_optimizer_state: `(started, steps, vectors, numbers)`.
    pub(crate) fn state_mut(&mut self) -> (Option<&mut Rule<E>>, &mut usize) {
        (self.rule.as_mut(), &mut self.k)
    }

    /// Starts the rule on `x` if it has not stepped yet (so that a broadcast state has a
    /// place to land).
    pub(crate) fn ensure_started(&mut self, x: &[E]) -> Result<()> {
        self.ready(x)
    }
}
