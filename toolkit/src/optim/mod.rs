//! Decentralized optimizers: an update rule x a communication (BlueFog's design). Each
//! rule is written once, as its equation, with its own state ([`Method`]); the
//! communication that forms `W x` is a value ([`Communication`]: the static topology, a
//! dynamic schedule, machines, the global average, or none), with local steps between
//! communications ([`Optimizer::communicate_every`]) and gradient accumulation. `g` is the
//! local stochastic gradient plus weight decay, `gamma` the step size at this step
//! (warm-up and schedule applied), `beta` the momentum.
//!
//! | method | update |
//! |---|---|
//! | PmSGD | `m = beta m + avg(g); x = x - gamma m` (allreduce of gradients: the centralized baseline; global or no communication only) |
//! | DSGD (ATC) | `x = W(x - gamma g)` |
//! | DSGD (CTA) | `x = W x - gamma g` |
//! | DmSGD | `m = beta m + g; x = W(x - gamma m)` |
//! | DecentLaM | `x = W(x - gamma g) + beta (x - x_prev)` (the talk's equation; symmetric `W`) |
//! | DA-DmSGD | `m = W(beta m + g); x = W(x - gamma m)` (momentum averaged too) |
//! | AWC-DmSGD | `m = beta m + g; x = W x - gamma m` (combine while adapting) |
//! | QG-DmSGD | `x' = W(x - gamma (g + beta m)); m = beta m + (1 - beta)(x - x') / gamma; x = x'` (quasi-global momentum) |
//! | D^2 | `x1 = W(x0 - gamma g0)`, then `x+ = W(2x - x_prev - gamma g + gamma_prev g_prev)` (symmetric `W`) |
//! | D2-DmSGD | D^2 with `m = beta m + g` in place of `g` (D^2 with momentum; symmetric `W`) |
//! | SlowMo | DmSGD inner steps; every `period` steps `u = beta_s u + (a - avg(x)) / gamma; a = a - alpha gamma u; x = a` |
//! | Gossip-PGA | DmSGD, and every `period` steps `x = avg(x)` (periodic global averaging) |
//! | ATC-*base* | `x = W(x - d)`, `d` the base optimizer's step ([`Base`]: SGD with momentum or Nesterov, Adam) |
//! | AWC-*base* | `x = W x - d` |
//!
//! DSGD, DmSGD, DSGD-CTA and AWC-DmSGD are the ATC and AWC forms over SGD. With Nesterov
//! momentum the step direction is `g + beta m` instead of `m` (DecentLaM:
//! `x+ = W(x - gamma g) + beta v+` with the velocity `v+ = beta (x - x_prev) + W(x - gamma g) - x`).
//! QG-DmSGD and SlowMo keep their momentum scaled by the step size, so a step size that
//! falls to zero (a cosine schedule's end) is a step size, not a division by zero; with a
//! constant step size they are the papers' updates exactly. Every rank must start from
//! the same parameters ([`broadcast_parameters`]).
//!
//! DecentLaM's analysis needs a symmetric, doubly stochastic and positive-definite `W`; on
//! a directed (non-symmetric) topology it can diverge, so [`Optimizer::step`] refuses one,
//! whenever `W` changes (a new static topology, every step of a dynamic schedule): the
//! one-peer exponential graph is directed, its symmetric form is the one-peer hypercube
//! ([`Dynamic::OnePeerHypercube`]; for DecentLaM with momentum its lazy form, below). D^2
//! needs the same, and converges only when the smallest eigenvalue of `W` is above -1/3
//! (Tang et al., ICML 2018): `step` warns (through `tracing`) over a static or machine `W`
//! that breaks it.
//! Over a `W` that changes from step to step, DecentLaM's momentum carries each step's
//! averaging into the next, and the disagreement between ranks grows unless every `W_k` is
//! positive definite: with momentum 0.9 over the one-peer hypercube (`W_k = (I + P_k)/2`,
//! singular) LeNet-5's loss became NaN in the second epoch. So with momentum, DecentLaM
//! over a dynamic schedule demands every self weight above the sum of the neighbours'
//! (strict diagonal dominance, which makes a symmetric `W` positive definite), at every
//! step; [`Dynamic::LazyOnePeerHypercube`] meets it with the same bytes.
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

mod base;
mod comm;
mod method;
mod optimizer;
mod params;
mod rules;
mod state;
mod window;

pub use base::Base;
pub use comm::{Communication, Dynamic, WeightsFn, COMMUNICATION_NAMES};
pub use method::{Method, Schedule};
pub use optimizer::Optimizer;
pub use params::{gradients, parameters, set_parameters};
pub use state::{allreduce_parameters, broadcast_optimizer_state, broadcast_parameters};
pub use window::WindowOptimizer;
