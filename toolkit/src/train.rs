//! Training a classifier across ranks: the loop the examples, tests, benchmark and notebook
//! share. Each rank trains on its own share with its own [`Optimizer`]; every rank takes the
//! same number of steps, so the collective steps line up.
//!
//! ```
//! use fogkit::data::{mnist, partition_iid};
//! use fogkit::nn::MlpNet;
//! use fogkit::optim::{Method, Optimizer};
//! use fogkit::prelude::*;
//! use fogkit::train::{train, Training};
//! let data = mnist().unwrap().standardized();
//! let acc = fogkit::run(2, |bf: &Fog| -> fogkit::Result<f64> {
//!     bf.set_topology(topology::ring(2))?;
//!     let share = partition_iid(data.train.len(), 2, 1)[bf.rank()].clone();
//!     let mut model: MlpNet = fogkit::train::build(bf, 7)?;
//!     let mut opt = Optimizer::new(Method::DecentLam).lr(0.05).momentum(0.9);
//!     let cfg = Training { epochs: 1, batch: 32, seed: 1, steps_per_epoch: Some(40) };
//!     let log = train(bf, &mut model, &mut opt, &data.train.subset(&share), &data.test, &cfg, |_| {})?;
//!     Ok(log[0].test_accuracy)
//! })
//! .unwrap();
//! assert!(acc[0] > 0.7, "{acc:?}"); // 80 steps of 32 digits on 2 ranks
//! ```

use std::time::Instant;

use dfdx::prelude::*;

use crate::data::{Batches, ImageSet};
use crate::nn::{ConvDevice, Features};
pub use crate::nn::{MlpNet, Network};
use crate::ops::ReduceOp;
use crate::optim::{broadcast_parameters, parameters, set_parameters, Optimizer};
use crate::{Error, Fog, Result};

/// Builds a network with weights drawn from `seed`, the same on every rank (collective:
/// rank 0's draw is broadcast), on the rank's device `D` (the CPU, or with the `cuda`
/// feature `Cuda` on the GPU its local rank chooses).
pub fn build<D: ConvDevice, M: Network<D>>(bf: &Fog, seed: u64) -> Result<M> {
    let dev = D::for_rank(bf.local_rank(), seed)?;
    let mut model = M::try_build(&dev).map_err(tensor_error)?;
    broadcast_parameters(bf, &mut model, 0)?;
    Ok(model)
}

/// How long and how to train.
#[derive(Clone, Debug)]
pub struct Training {
    /// Passes over the data.
    pub epochs: usize,
    /// Images per rank per step.
    pub batch: usize,
    /// Seed of the batch order (each rank adds its rank).
    pub seed: u64,
    /// Steps per epoch; `None`: the whole training set once per epoch (its total size over
    /// ranks times batch).
    pub steps_per_epoch: Option<usize>,
}

/// What one epoch did, the same on every rank.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// From 1.
    pub epoch: usize,
    /// Steps so far.
    pub steps: usize,
    /// Mean training loss over the epoch's steps and all ranks.
    pub train_loss: f64,
    /// Test accuracy of the average of the ranks' models.
    pub test_accuracy: f64,
    /// Mean over ranks of each rank's own model's test accuracy.
    pub local_accuracy: f64,
    /// Mean squared distance of the ranks' parameters from their average.
    pub consensus_distance: f64,
    /// Training images per second over all ranks (evaluation excluded).
    pub samples_per_sec: f64,
    /// Bytes a rank sent per training step, the mean over ranks (counted by the engine:
    /// what the communication costs on the wire).
    pub bytes_per_step: f64,
}

/// A device's error as fogkit's.
fn tensor_error(e: impl std::fmt::Debug) -> Error {
    Error::Tensor(format!("{e:?}"))
}

fn one_hot<D: ConvDevice>(dev: &D, labels: &[u8]) -> Result<Features<10, NoneTape, D>> {
    let mut v = vec![0.0f32; labels.len() * 10];
    for (i, &l) in labels.iter().enumerate() {
        v[i * 10 + l as usize] = 1.0;
    }
    dev.try_tensor_from_vec(v, (labels.len(), Const))
        .map_err(tensor_error)
}

/// Correct predictions of `model` on `set[range]`.
fn correct<D: ConvDevice, M: Network<D>>(
    model: &M,
    set: &ImageSet,
    range: std::ops::Range<usize>,
) -> Result<usize> {
    let d = set.image_len();
    let mut hits = 0;
    let mut at = range.start;
    while at < range.end {
        let n = (range.end - at).min(500);
        let logits = model
            .logits(set.pixels[at * d..(at + n) * d].to_vec(), n)
            .map_err(tensor_error)?
            .as_vec();
        for i in 0..n {
            let row = &logits[i * 10..(i + 1) * 10];
            let best = (0..10).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            hits += (best == set.labels[at + i] as usize) as usize;
        }
        at += n;
    }
    Ok(hits)
}

/// Test accuracy of the ranks' average model and the mean of their own models' accuracies,
/// and the consensus distance (collective).
pub fn evaluate<D: ConvDevice, M: Network<D>>(
    bf: &Fog,
    model: &M,
    test: &ImageSet,
) -> Result<(f64, f64, f64)> {
    let x = parameters(model);
    let avg = bf.allreduce_op(&x, ReduceOp::Avg)?;
    let dist: f64 = x
        .iter()
        .zip(&avg)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let mut averaged = model.clone();
    set_parameters(&mut averaged, &avg)?;
    let (r, n) = (bf.rank(), bf.size());
    let slice = r * test.len() / n..(r + 1) * test.len() / n;
    let counts = vec![
        correct(&averaged, test, slice)? as f64,
        correct(model, test, 0..test.len())? as f64,
        dist,
    ];
    let sums = bf.allreduce_op(&counts, ReduceOp::Sum)?;
    let len = test.len().max(1) as f64;
    Ok((
        sums[0] / len,
        sums[1] / (len * n as f64),
        sums[2] / n as f64,
    ))
}

/// Trains `model` on this rank's `share` for `cfg.epochs` epochs, evaluating on `test`
/// after each (collective); `on_epoch` sees each report as it is made.
pub fn train<D: ConvDevice, M: Network<D>>(
    bf: &Fog,
    model: &mut M,
    opt: &mut Optimizer<f32>,
    share: &ImageSet,
    test: &ImageSet,
    cfg: &Training,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<Vec<EpochReport>> {
    let want = M::INPUT;
    for (what, set) in [("training", share), ("test", test)] {
        if set.shape != want {
            return Err(Error::Data(format!(
                "{} takes images of shape {want:?} (channels, height, width); the {what} set has {:?}",
                M::NAME,
                set.shape
            )));
        }
    }
    if share.is_empty() || cfg.batch == 0 {
        return Err(Error::InvalidArgument(format!(
            "expected a non-empty share and a batch of at least 1, found {} images and batch {}",
            share.len(),
            cfg.batch
        )));
    }
    let total = bf.allreduce_op(&[share.len() as f64], ReduceOp::Sum)?[0] as usize;
    let steps = cfg
        .steps_per_epoch
        .unwrap_or(total / (bf.size() * cfg.batch))
        .max(1);
    let mut batches = Batches::new(share.len(), cfg.seed.wrapping_add(bf.rank() as u64));
    let mut grads = model.alloc_grads();
    let mut reports = Vec::new();
    let d = share.image_len();
    for epoch in 1..=cfg.epochs {
        let started = Instant::now();
        let sent_before = bf.bytes_sent();
        let mut loss_sum = 0.0;
        for _ in 0..steps {
            let idx = batches.next_batch(cfg.batch);
            let mut pixels = Vec::with_capacity(idx.len() * d);
            idx.iter()
                .for_each(|&i| pixels.extend_from_slice(&share.pixels[i * d..(i + 1) * d]));
            let labels: Vec<u8> = idx.iter().map(|&i| share.labels[i]).collect();
            // Adapt-while-combine methods start W x now, so it travels during the
            // forward and backward passes (a no-op for the others).
            opt.begin_update(bf, model)?;
            model.zero_grads(&mut grads);
            // The timeline's compute spans, beside the ops' own.
            let forward = tracing::info_span!("forward").entered();
            let logits = model
                .train_logits(pixels, idx.len(), grads)
                .map_err(tensor_error)?;
            let target = one_hot(logits.device(), &labels)?;
            let loss = cross_entropy_with_logits_loss(logits, target);
            loss_sum += loss.as_vec()[0] as f64;
            drop(forward);
            grads = tracing::info_span!("backward").in_scope(|| loss.backward());
            tracing::info_span!("step").in_scope(|| opt.update(bf, model, &mut grads))?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let sent = (bf.bytes_sent() - sent_before) as f64 / steps as f64;
        let means = bf.allreduce_op(&[loss_sum / steps as f64, sent], ReduceOp::Avg)?;
        let (loss, bytes_per_step) = (means[0], means[1]);
        if !loss.is_finite() {
            return Err(Error::Diverged { epoch, loss });
        }
        let (test_accuracy, local_accuracy, consensus_distance) = evaluate(bf, model, test)?;
        let report = EpochReport {
            epoch,
            steps: epoch * steps,
            train_loss: loss,
            test_accuracy,
            local_accuracy,
            consensus_distance,
            samples_per_sec: (steps * cfg.batch * bf.size()) as f64 / seconds.max(1e-9),
            bytes_per_step,
        };
        on_epoch(&report);
        reports.push(report);
    }
    Ok(reports)
}
