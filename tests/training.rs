//! Real networks trained on real data across ranks: the MLP on the shipped MNIST digits,
//! LeNet-5 on all of Fashion-MNIST, one ResNet-20 step; and the command-line example gives
//! the same bits in-process and under mpirun.

use fogkit::data::{fashion_mnist, mnist, partition_iid};
use fogkit::nn::{LeNet5, MlpNet, ResNet20};
use fogkit::optim::{Method, Optimizer};
use fogkit::prelude::*;
use fogkit::train::{build, train, EpochReport, Network, Training};

fn train_on<M: Network>(
    data: &fogkit::data::Split,
    ranks: usize,
    lr: f64,
    epochs: usize,
    batch: usize,
) -> Vec<EpochReport> {
    let shares = partition_iid(data.train.len(), ranks, 5);
    fogkit::run(ranks, |bf: &Fog| -> fogkit::Result<Vec<EpochReport>> {
        bf.set_topology(topology::ring(ranks))?;
        let mut model: M = build(bf, 11)?;
        let mut opt = Optimizer::new(Method::DecentLam).lr(lr).momentum(0.9);
        let cfg = Training {
            epochs,
            batch,
            seed: 2,
            steps_per_epoch: None,
        };
        train(
            bf,
            &mut model,
            &mut opt,
            &data.train.subset(&shares[bf.rank()]),
            &data.test,
            &cfg,
            |r| {
                if bf.rank() == 0 {
                    eprintln!("{r:?}");
                }
            },
        )
    })
    .unwrap()
    .take(0)
    .unwrap()
}

#[test]
fn the_mlp_learns_the_shipped_mnist_digits_to_90_percent() {
    let data = mnist().unwrap().standardized();
    let log = train_on::<MlpNet>(&data, 4, 0.05, 3, 32);
    let last = log.last().unwrap();
    assert!(last.test_accuracy >= 0.90, "{last:?}");
    assert!(log[0].train_loss > last.train_loss);
}

#[test]
fn lenet_learns_fashion_mnist_to_88_percent_on_4_ranks_with_decentlam() {
    let data = fashion_mnist()
        .expect("Fashion-MNIST (tests/run-all.sh installs dataset-fashion-mnist)")
        .standardized();
    assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
    let log = train_on::<LeNet5>(&data, 4, 0.02, 4, 32);
    let last = log.last().unwrap();
    assert!(last.test_accuracy >= 0.88, "{last:?}");
}

#[test]
fn resnet20_takes_a_training_step_that_lowers_its_loss() {
    // Random 32x32 colour images with a learnable rule: the class is the brightest channel.
    let mut rng = fogkit::data::Rng::new(9);
    let n = 16;
    let pixels: Vec<f32> = (0..n * 3 * 32 * 32).map(|_| rng.uniform() as f32).collect();
    let labels: Vec<u8> = (0..n)
        .map(|i| {
            let mean = |c: usize| {
                pixels[(i * 3 + c) * 1024..(i * 3 + c + 1) * 1024]
                    .iter()
                    .sum::<f32>()
            };
            (0..3).max_by(|&a, &b| mean(a).total_cmp(&mean(b))).unwrap() as u8
        })
        .collect();
    let set = fogkit::data::ImageSet {
        pixels,
        labels,
        shape: (3, 32, 32),
    };
    let losses = fogkit::run(1, |bf: &Fog| -> fogkit::Result<Vec<f64>> {
        let mut model: ResNet20 = build(bf, 3)?;
        let mut opt = Optimizer::new(Method::PmSgd).lr(0.05).momentum(0.9);
        let cfg = Training {
            epochs: 3,
            batch: n,
            seed: 1,
            steps_per_epoch: Some(2),
        };
        Ok(train(bf, &mut model, &mut opt, &set, &set, &cfg, |_| {})?
            .iter()
            .map(|r| r.train_loss)
            .collect())
    })
    .unwrap()
    .take(0)
    .unwrap();
    assert!(losses[2] < losses[0], "{losses:?}");
}

/// The error of a short run of `M` on `ranks` ranks (a ring) that is expected to fail.
fn failing_run<M: Network>(
    data: &fogkit::data::Split,
    ranks: usize,
    opt: Optimizer<f32>,
    cfg: Training,
) -> fogkit::Error {
    fogkit::run(ranks, |bf: &Fog| -> fogkit::Result<()> {
        bf.set_topology(topology::ring(ranks))?;
        let mut model: M = build(bf, 3)?;
        let mut opt = opt.clone();
        train(
            bf,
            &mut model,
            &mut opt,
            &data.train,
            &data.test,
            &cfg,
            |_| {},
        )
        .map(|_| ())
    })
    .expect_err("the run should fail")
}

#[test]
fn a_network_given_the_wrong_images_says_so() {
    let cfg = Training {
        epochs: 1,
        batch: 4,
        seed: 1,
        steps_per_epoch: Some(1),
    };
    let err = failing_run::<ResNet20>(&mnist().unwrap(), 1, Optimizer::new(Method::Dsgd), cfg);
    assert!(
        err.to_string()
            .contains("ResNet-20 takes images of shape (3, 32, 32)"),
        "{err}"
    );
}

#[test]
fn a_run_that_diverges_says_so_with_its_epoch() {
    // A step size far too large for the MLP: the loss overflows within the first epoch.
    let cfg = Training {
        epochs: 2,
        batch: 32,
        seed: 1,
        steps_per_epoch: Some(20),
    };
    let opt = Optimizer::new(Method::DmSgd).lr(1e6).momentum(0.9);
    let err = failing_run::<MlpNet>(&mnist().unwrap().standardized(), 2, opt, cfg);
    assert!(
        matches!(err, fogkit::Error::Diverged { epoch: 1, loss } if !loss.is_finite()),
        "{err:?}"
    );
    assert!(err.to_string().contains("lower the step size"), "{err}");
}
