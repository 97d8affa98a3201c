//! Making ranks agree (BlueFog's `broadcast_parameters`, `broadcast_optimizer_state` and
//! `allreduce_parameters`): collective, over any dfdx element type and device.

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::{Device, Dtype};
use num_traits::Float;

use super::optimizer::Optimizer;
use super::params::{parameters, set_parameters};
use crate::ops::ReduceOp;
use crate::tensor::Element;
use crate::{Error, Fog, Result};

/// Gives every rank `root`'s parameters (collective): decentralized training starts from
/// one model.
pub fn broadcast_parameters<E: Dtype + Element, D: Device<E>, M: TensorCollection<E, D>>(
    bf: &Fog,
    model: &mut M,
    root: usize,
) -> Result<()> {
    let x = bf.broadcast(&parameters(model), root)?;
    set_parameters(model, &x)
}

/// Sets every rank's parameters to their average over all ranks (collective).
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// let w = fogkit::run(2, |bf| -> fogkit::Result<Vec<f32>> {
///     let dev: Cpu = Default::default();
///     let mut model = dev.build_module::<Linear<1, 1>, f32>();
///     fogkit::optim::set_parameters(&mut model, &[bf.rank() as f32, 2.0])?;
///     fogkit::optim::allreduce_parameters(bf, &mut model)?;
///     Ok(fogkit::optim::parameters(&model))
/// })
/// .unwrap();
/// assert_eq!(w[1], vec![0.5, 2.0]);
/// ```
pub fn allreduce_parameters<E: Dtype + Element, D: Device<E>, M: TensorCollection<E, D>>(
    bf: &Fog,
    model: &mut M,
) -> Result<()> {
    let x = bf.allreduce_op(&parameters(model), ReduceOp::Avg)?;
    set_parameters(model, &x)
}

/// Gives every rank `root`'s optimizer state: its step count, momentum buffers and the
/// rest (collective). Every rank passes an optimizer of the same method over parameters of
/// the same length `x`; one that has not stepped yet is started on `x` first. Gradients
/// accumulated since the last step are dropped on every rank, so all ranks step together.
///
/// ```
/// use fogkit::optim::{Communication, Method, Optimizer};
/// let state = fogkit::run(2, |bf| -> fogkit::Result<(usize, Vec<f64>)> {
///     // Local steps (no communication), so that rank 0 can step alone.
///     let mut opt = Optimizer::new(Method::DmSgd).lr(0.5).momentum(0.5).communication(Communication::None);
///     let mut x = vec![1.0f64];
///     if bf.rank() == 0 {
///         opt.step(bf, &mut x, &[2.0])?; // m = 2, x = 0
///     }
///     fogkit::optim::broadcast_optimizer_state(bf, &mut opt, &x, 0)?;
///     // The next step continues rank 0's momentum on both ranks: m = 0.5 * 2 + 2 = 3.
///     let mut y = vec![0.0f64];
///     opt.step(bf, &mut y, &[2.0])?;
///     Ok((opt.steps(), y))
/// })
/// .unwrap();
/// assert_eq!(state[1], (2, vec![-1.5]));
/// ```
pub fn broadcast_optimizer_state<E: Element + Float>(
    bf: &Fog,
    opt: &mut Optimizer<E>,
    x: &[E],
    root: usize,
) -> Result<()> {
    // Every rank takes part in the first collective even when its optimizer cannot start
    // (so none waits for it), and learns which method every other rank holds.
    let started = opt.ensure_started(x);
    let method = opt.method().name();
    let id = method_id(method, opt.momentum_on());
    let status = [started.is_ok() as u8 as f64, id];
    let all = bf.allgather(&status)?;
    started?;
    if let Some(r) = all.iter().position(|s| s[0] == 0.0) {
        return Err(Error::InvalidArgument(format!(
            "broadcast_optimizer_state: rank {r}'s optimizer could not start (its own error \
             says why)"
        )));
    }
    if let Some(r) = all.iter().position(|s| s[1] != id) {
        return Err(Error::InvalidArgument(format!(
            "broadcast_optimizer_state: rank {r} holds another method (or momentum on where this \
             rank's {method} has it off, or the other way): every rank must pass the same"
        )));
    }
    opt.reset_accumulation();
    let (rule, k) = opt.state_mut();
    let rule = rule.ok_or_else(|| Error::InvalidArgument("the optimizer did not start".into()))?;
    // The shape of the state first (root's wins), then the values.
    let mut head: Vec<f64> = vec![*k as f64];
    head.extend(rule.scalars().iter().map(|s| **s));
    head.extend(rule.vectors().iter().map(|v| v.len() as f64));
    let head_root = bf.broadcast(&head, root)?;
    let lens: Vec<usize> = rule.vectors().iter().map(|v| v.len()).collect();
    let nscal = rule.scalars().len();
    let root_lens: Vec<usize> = head_root[1 + nscal..].iter().map(|&v| v as usize).collect();
    let shape_ok = root_lens == lens;
    let ok = bf.allreduce_op(&[shape_ok as u8 as f64], ReduceOp::Min)?[0] == 1.0;
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "broadcast_optimizer_state: root {root}'s state vectors have lengths {root_lens:?}, \
             this rank's {lens:?} (every rank must optimize parameters of the same length)"
        )));
    }
    let fused: Vec<E> = rule
        .vectors()
        .iter()
        .flat_map(|v| v.iter().copied())
        .collect();
    let fused = bf.broadcast(&fused, root)?;
    let mut at = 0;
    for v in rule.vectors() {
        let n = v.len();
        v.copy_from_slice(&fused[at..at + n]);
        at += n;
    }
    for (s, &r) in rule.scalars().into_iter().zip(&head_root[1..]) {
        *s = r;
    }
    *k = head_root[0] as usize;
    Ok(())
}

/// A number naming a method (and whether its momentum is on), the same on every rank:
/// FNV-1a of the name, cut to 52 bits so that it travels exactly as an f64.
fn method_id(name: &str, momentum_on: bool) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain([momentum_on as u8]) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & ((1 << 52) - 1)) as f64
}
