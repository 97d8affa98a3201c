//! Window optimizers: decentralized training in which no rank waits for another. Each
//! step is a local step of an adapt-then-combine rule (its communication set to none),
//! then a one-sided window op that combines the newest parameters the neighbours have
//! deposited, whenever they did:
//!
//! | optimizer | after the local step `x' = x - gamma d` |
//! |---|---|
//! | [`WindowOptimizer::win_put`] | put `x'` into the out-neighbours' slots; `x = w_ii x' + sum_j w_ij slot_j` (BlueFog's `DistributedWinPutOptimizer`) |
//! | [`WindowOptimizer::push_sum`] | keep `1/(d+1)` of the numerator `u` (moved so that `u / p = x'`) and add `1/(d+1)` into each out-neighbour's slot, p alike; collect what arrived; the parameters are `u / p` (gradient-push, Assran et al. 2019; BlueFog never exported its own, its issue #112) |
//!
//! win_put combines the newest parameters each neighbour put, however old: a neighbour
//! much slower than this rank holds it back towards where that neighbour was. Push-sum
//! counts each deposit once (a collect empties the slots), so a slow neighbour weighs
//! only as often as it speaks; it is the one to use when paces differ.
//!
//! Push-sum moves its numerator by `p (x' - x)`, not by the step itself as in the
//! papers: the parameters then take exactly the rule's step whatever p is, so a rank far
//! faster than its neighbours (its p small between their deposits) or left alone (its
//! neighbours done) keeps training stably. Over a regular graph p stays near 1 and the
//! two agree; over a directed graph whose p differs between ranks, rank i's gradient
//! weighs p_i in the fixed point (the papers' form is exact there, and unstable when p
//! falls).
//!
//! Push-sum splits evenly (`1/(d+1)`), whatever the topology's weights; win_put combines
//! with the topology's weights. Over a regular graph with uniform weights and every rank
//! stepping in turn, both are DSGD (ATC); with one
//! rank slow the others do not wait for it. `step` never calls a collective: creating
//! the optimizer and [`free`](WindowOptimizer::free) are the only points where ranks
//! meet. It must never hide a rule that needs a collective (PmSGD, SlowMo, Gossip-PGA)
//! or whose algebra assumes a synchronous `W` (CTA and AWC forms, DecentLaM, D^2,
//! QG-DmSGD): those are refused.

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::{Device, Gradients};
use num_traits::Float;

use super::comm::Communication;
use super::method::Method;
use super::optimizer::Optimizer;
use super::params::{self, set_parameters};
use crate::ops::Window;
use crate::tensor::Element;
use crate::{Error, Fog, Result};

/// Which window op combines after the local step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Combine {
    WinPut,
    PushSum,
}

/// One rank's window optimizer (see the module docs): a local rule and a window over its
/// parameters, borrowing the handle that made it.
///
/// ```
/// use fogkit::optim::{Method, Optimizer, WindowOptimizer};
/// use fogkit::prelude::*;
/// use std::time::{Duration, Instant};
/// // f_i(x) = (x - i)^2 / 2 on 4 ranks for 600 ms, rank 1 five times slower: the
/// // parameters gather around the mean of 0..4 (each rank off by DSGD's bias).
/// // One deadline for every rank: a rank that went on stepping after the others had
/// // stopped would drift toward its own optimum, with nothing arriving to pull it back.
/// // The ranks sleep between steps (1 ms; rank 1 5 ms), so that on a busy machine none
/// // is starved of the CPU while its neighbours step on.
/// let stop = Instant::now() + Duration::from_millis(600);
/// let xs = fogkit::run(4, |bf: &Fog| -> fogkit::Result<f64> {
///     bf.set_topology(topology::ring(4))?;
///     let mut x = vec![0.0f64];
///     let local = Optimizer::new(Method::Dsgd).lr(0.05);
///     let mut opt = WindowOptimizer::push_sum(bf, local, &x)?;
///     let pace = Duration::from_micros(if bf.rank() == 1 { 5000 } else { 1000 });
///     while Instant::now() < stop {
///         std::thread::sleep(pace);
///         let g = vec![x[0] - bf.rank() as f64];
///         opt.step(&mut x, &g)?; // waits for no one
///     }
///     opt.free()?;
///     Ok(x[0])
/// })
/// .unwrap();
/// assert!(xs.iter().all(|(_, x)| (x - 1.5).abs() < 0.5), "{xs:?}");
/// ```
pub struct WindowOptimizer<'c, E: Element + Float = f32> {
    bf: &'c Fog,
    local: Optimizer<E>,
    win: Window<'c, E>,
    combine: Combine,
    /// Push-sum's shares: `(out-neighbour, 1 / (d + 1))`.
    shares: Vec<(usize, f64)>,
    /// The parameters before the local step (push-sum moves its numerator by the step).
    before: Vec<E>,
    /// Every rank meets around each combine (the synchronous algorithm, for comparison).
    lockstep: bool,
    /// A model's parameters and gradients, flat (kept between steps: no allocation).
    flat: (Vec<E>, Vec<E>),
}

impl<'c, E: Element + Float> WindowOptimizer<'c, E> {
    /// BlueFog's win_put optimizer over the topology in force (collective: creates the
    /// window, its slots holding `x`). Every rank must start from the same `x`
    /// ([`broadcast_parameters`](super::broadcast_parameters)).
    pub fn win_put(bf: &'c Fog, local: Optimizer<E>, x: &[E]) -> Result<Self> {
        Self::make(bf, local, x, Combine::WinPut)
    }

    /// The push-sum optimizer over the topology in force (collective: creates the window,
    /// its slots empty). The topology may be directed: push-sum needs no symmetry.
    pub fn push_sum(bf: &'c Fog, local: Optimizer<E>, x: &[E]) -> Result<Self> {
        Self::make(bf, local, x, Combine::PushSum)
    }

    fn make(bf: &'c Fog, local: Optimizer<E>, x: &[E], combine: Combine) -> Result<Self> {
        let m = local.method();
        if !matches!(m, Method::Dsgd | Method::DmSgd | Method::Atc(_)) {
            return Err(Error::InvalidArgument(format!(
                "a window optimizer expected an adapt-then-combine rule (DSGD, DmSGD or ATC \
                 over a base optimizer), found {}",
                m.name()
            )));
        }
        let name = match combine {
            Combine::WinPut => "fogkit.optim.win_put",
            Combine::PushSum => "fogkit.optim.push_sum",
        };
        let win = bf.win_create(name, x, combine == Combine::PushSum)?;
        let out = win.out_neighbor_ranks();
        let share = 1.0 / (out.len() + 1) as f64;
        let shares = out.iter().map(|&j| (j, share)).collect();
        Ok(WindowOptimizer {
            bf,
            local: local.communication(Communication::None),
            win,
            combine,
            shares,
            before: Vec::new(),
            lockstep: false,
            flat: Default::default(),
        })
    }

    /// With `on`, every rank meets after its deposit and after its combine, so that each
    /// step combines exactly the neighbours' same step: the synchronous algorithm over the
    /// same windows (DSGD over a regular graph), to compare with. `step` becomes collective.
    pub fn lockstep(mut self, on: bool) -> Self {
        self.lockstep = on;
        self
    }

    fn meet(&self) -> Result<()> {
        if self.lockstep {
            self.bf.barrier()?;
        }
        Ok(())
    }

    /// One step with this rank's parameters `x` and gradient `grad` (not collective): the
    /// local rule's step, then the window's combine; `x` becomes the combined parameters
    /// (push-sum's `x / p`).
    pub fn step(&mut self, x: &mut [E], grad: &[E]) -> Result<()> {
        if x.len() != self.win.len() {
            return Err(Error::InvalidArgument(format!(
                "window optimizer expected {} parameters (as at its creation), found {}",
                self.win.len(),
                x.len()
            )));
        }
        self.before.clear();
        self.before.extend_from_slice(x);
        let stepped_from = self.local.steps();
        self.local.step(self.bf, x, grad)?;
        if self.local.steps() == stepped_from {
            return Ok(()); // accumulating gradients: no step yet
        }
        match self.combine {
            Combine::WinPut => {
                self.win.neighbor_win_put(&*x)?;
                self.meet()?;
                let y = self.win.win_update()?;
                self.meet()?;
                x.copy_from_slice(&y);
            }
            Combine::PushSum => {
                // The rule moved the parameters z = x / p to z'; the numerator moves by
                // p (z' - z), so that before mixing the parameters are exactly z'.
                let p = E::from_f64(self.win.associated_p()?);
                let num: Vec<E> = self.win.value()?;
                let moved: Vec<E> = num
                    .iter()
                    .zip(x.iter().zip(&self.before))
                    .map(|(&n, (&a, &b))| n + p * (a - b))
                    .collect();
                let share = self.shares.first().map_or(1.0, |s| s.1);
                self.win
                    .neighbor_win_accumulate_with(&moved, share, &self.shares)?;
                self.meet()?;
                let num = self.win.win_update_then_collect()?;
                self.meet()?;
                let p = self.win.associated_p()?;
                // In E, p and the numerator (about p times the parameters) must stay normal
                // numbers: f32 loses them after about 80 lonely steps on a ring.
                let pe = E::from_f64(p);
                if !(pe.is_finite() && pe >= E::min_positive_value().sqrt()) {
                    return Err(Error::PeerLost {
                        rank: self.bf.rank(),
                        op: "a push-sum step".into(),
                        reason: format!(
                            "its weight p fell to {p:e}: it kept giving its shares away \
                             with nothing arriving (its neighbours stopped stepping?); stop \
                             every rank at about the same time"
                        ),
                    });
                }
                let p = pe;
                for (xi, &n) in x.iter_mut().zip(&num) {
                    *xi = n / p;
                }
            }
        }
        Ok(())
    }

    /// [`step`](Self::step) for a dfdx model: reads its parameters and gradients, steps,
    /// writes the parameters back.
    ///
    /// ```
    /// use fogkit::dfdx::prelude::*;
    /// use fogkit::optim::{Method, Optimizer, WindowOptimizer};
    /// use fogkit::prelude::*;
    /// let w = fogkit::run(2, |bf: &Fog| -> fogkit::Result<Vec<f32>> {
    ///     let dev: Cpu = Default::default();
    ///     let mut model = dev.build_module::<Linear<1, 1>, f32>();
    ///     fogkit::optim::broadcast_parameters(bf, &mut model, 0)?;
    ///     let local = Optimizer::new(Method::DmSgd).lr(0.05);
    ///     let start = fogkit::optim::parameters(&model);
    ///     // In lockstep the run is the same every time (a doctest must not race); without
    ///     // it each rank steps at its own pace and a rank that runs ahead combines with
    ///     // its neighbour's older parameters.
    ///     let mut opt = WindowOptimizer::win_put(bf, local, &start)?.lockstep(true);
    ///     let x = dev.tensor([[1.0f32], [2.0]]);
    ///     let y = dev.tensor([[3.0f32], [6.0]]);
    ///     for _ in 0..300 {
    ///         let loss = mse_loss(model.forward(x.clone().leaky_trace()), y.clone());
    ///         let mut grads = loss.backward();
    ///         opt.update(&mut model, &mut grads)?;
    ///     }
    ///     opt.free()?;
    ///     Ok(fogkit::optim::parameters(&model))
    /// })
    /// .unwrap();
    /// assert!((w[0][0] - 3.0).abs() < 0.3, "{w:?}"); // y = 3 x on both ranks
    /// ```
    pub fn update<D: Device<E>, M: TensorCollection<E, D>>(
        &mut self,
        model: &mut M,
        grads: &mut Gradients<E, D>,
    ) -> Result<()>
    where
        E: dfdx::dtypes::Dtype,
    {
        let (mut x, mut g) = std::mem::take(&mut self.flat);
        params::read_into(model, None, &mut x)?;
        params::read_into(model, Some(grads), &mut g)?;
        let written = self
            .step(&mut x, &g)
            .and_then(|()| set_parameters(model, &x));
        self.flat = (x, g);
        written
    }

    /// Push-sum's weight p on this rank (1 for win_put's regular use).
    pub fn associated_p(&self) -> Result<f64> {
        self.win.associated_p()
    }

    /// The local rule (its step count, step size).
    pub fn local(&self) -> &Optimizer<E> {
        &self.local
    }

    /// Ends the optimizer (collective: every rank meets, then the window is freed).
    pub fn free(self) -> Result<()> {
        self.bf.barrier()?;
        self.win.win_free()
    }
}
