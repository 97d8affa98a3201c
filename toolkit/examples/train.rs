//! Trains any of the chapter's networks with any optimizer on in-process ranks or, under
//! mpirun, one rank per process: the same command either way.
//!
//! ```text
//! cargo run --release -p fogkit --features metrics --example train -- \
//!     --model lenet --method DecentLaM --data fashion-mnist --ranks 4 --epochs 2 \
//!     --batch 64 --lr 0.05 --partition dirichlet=0.5 --metrics train.parquet
//! fogrun -np 4 target/release/examples/train --model mlp --data mnist   # over MPI
//! ```
//! Options: `--model mlp|lenet|resnet20`, `--method` (see `fogkit::optim::Method`), `--data
//! mnist|fashion-mnist|cifar10=DIR`, `--ranks N`, `--epochs E`, `--batch B` (per rank),
//! `--steps S` (per epoch; default: one pass), `--lr`, `--momentum`, `--weight-decay`,
//! `--topology ring|symmetric-exponential|fully-connected`, `--partition iid|dirichlet=ALPHA`,
//! `--seed`, and with the `metrics` feature `--metrics FILE.parquet|FILE.csv` and a
//! progress bar. Prints one line per epoch and a digest of the final parameters.

use fogkit::data::{cifar10, fashion_mnist, mnist, partition_dirichlet, partition_iid, Split};
use fogkit::nn::{LeNet5, MlpNet, ResNet20};
use fogkit::optim::{parameters, Method, Optimizer};
use fogkit::prelude::*;
use fogkit::train::{build, train, Network, Training};

struct Args {
    model: String,
    method: Method,
    data: String,
    ranks: usize,
    epochs: usize,
    batch: usize,
    steps: Option<usize>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    topology: String,
    partition: String,
    seed: u64,
    metrics: Option<String>,
}

fn parse() -> fogkit::Result<Args> {
    let mut a = Args {
        model: "mlp".into(),
        method: Method::DecentLam,
        data: "mnist".into(),
        ranks: fogkit::launch::ranks_or(4),
        epochs: 1,
        batch: 64,
        steps: None,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.0,
        topology: "ring".into(),
        partition: "iid".into(),
        seed: 1,
        metrics: None,
    };
    let bad = |k: &str, v: &str| Error::InvalidArgument(format!("{k}: cannot use {v:?}"));
    for (k, v) in fogkit::launch::option_pairs(std::env::args().skip(1))? {
        let (k, v) = (k.as_str(), v.as_str());
        match k {
            "--model" => a.model = v.into(),
            "--method" => a.method = Method::parse(v)?,
            "--data" => a.data = v.into(),
            "--ranks" => a.ranks = v.parse().map_err(|_| bad(k, v))?,
            "--epochs" => a.epochs = v.parse().map_err(|_| bad(k, v))?,
            "--batch" => a.batch = v.parse().map_err(|_| bad(k, v))?,
            "--steps" => a.steps = Some(v.parse().map_err(|_| bad(k, v))?),
            "--lr" => a.lr = v.parse().map_err(|_| bad(k, v))?,
            "--momentum" => a.momentum = v.parse().map_err(|_| bad(k, v))?,
            "--weight-decay" => a.weight_decay = v.parse().map_err(|_| bad(k, v))?,
            "--topology" => a.topology = v.into(),
            "--partition" => a.partition = v.into(),
            "--seed" => a.seed = v.parse().map_err(|_| bad(k, v))?,
            "--metrics" => a.metrics = Some(v.into()),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown option {k} (see the example's doc comment)"
                )))
            }
        }
    }
    Ok(a)
}

fn topology_for(name: &str, n: usize) -> fogkit::Result<Topology> {
    Ok(match name {
        "ring" => topology::ring(n),
        "symmetric-exponential" => topology::symmetric_exponential(n),
        "fully-connected" => topology::fully_connected(n),
        other => {
            return Err(Error::InvalidArgument(format!(
            "--topology: expected ring, symmetric-exponential or fully-connected, found {other:?}"
        )))
        }
    })
}

fn run<M: Network>(a: &Args, data: &Split) -> fogkit::Result<()> {
    let shares = match a.partition.split_once('=') {
        None if a.partition == "iid" => partition_iid(data.train.len(), a.ranks, a.seed),
        Some(("dirichlet", alpha)) => {
            let alpha = alpha
                .parse()
                .map_err(|_| Error::InvalidArgument(format!("--partition: bad alpha {alpha:?}")))?;
            partition_dirichlet(&data.train.labels, a.ranks, alpha, a.seed)?
        }
        _ => {
            return Err(Error::InvalidArgument(format!(
                "--partition: expected iid or dirichlet=ALPHA, found {:?}",
                a.partition
            )))
        }
    };
    let topo = topology_for(&a.topology, a.ranks)?;
    let out = fogkit::run(a.ranks, |bf: &Fog| -> fogkit::Result<Option<String>> {
        bf.set_topology(topo.clone())?;
        let share = data.train.subset(&shares[bf.rank()]);
        let mut model: M = build(bf, a.seed)?;
        let mut opt = Optimizer::new(a.method)
            .lr(a.lr)
            .momentum(a.momentum)
            .weight_decay(a.weight_decay);
        let cfg = Training {
            epochs: a.epochs,
            batch: a.batch,
            seed: a.seed,
            steps_per_epoch: a.steps,
        };
        #[cfg(feature = "metrics")]
        let mut metrics =
            fogkit::metrics::Metrics::new(format!("{} {}", M::NAME, a.method.name()), bf.rank());
        #[cfg(feature = "metrics")]
        let bar = fogkit::progress::Progress::new(
            bf.rank(),
            a.epochs as u64,
            &format!("{} {}", M::NAME, a.method.name()),
        );
        let log = train(bf, &mut model, &mut opt, &share, &data.test, &cfg, |r| {
            if bf.rank() == 0 {
                println!(
                    "epoch {}: loss {:.4}, test accuracy {:.2}% (average model), {:.2}% (own models), {:.0} samples/s",
                    r.epoch,
                    r.train_loss,
                    100.0 * r.test_accuracy,
                    100.0 * r.local_accuracy,
                    r.samples_per_sec
                );
            }
            #[cfg(feature = "metrics")]
            {
                bar.inc(1);
                let _ = metrics.record_all(
                    r.steps as u64,
                    &[
                        ("train_loss", r.train_loss),
                        ("test_accuracy", r.test_accuracy),
                        ("local_accuracy", r.local_accuracy),
                        ("consensus_distance", r.consensus_distance),
                    ],
                );
            }
        })?;
        #[cfg(feature = "metrics")]
        {
            bar.finish();
            if let (Some(path), Some(mut df)) = (&a.metrics, metrics.gather(bf)?) {
                fogkit::metrics::save(&mut df, path)?;
            }
        }
        // The lesson's checks: accuracies are fractions, and a full pass over the data
        // (no --steps) leaves the ranks' average model well above chance (10 classes).
        for r in &log {
            assert!(
                (0.0..=1.0).contains(&r.test_accuracy) && (0.0..=1.0).contains(&r.local_accuracy),
                "epoch {}: accuracies {} and {}",
                r.epoch,
                r.test_accuracy,
                r.local_accuracy
            );
        }
        if a.steps.is_none() {
            let last = log.last().map_or(0.0, |r| r.test_accuracy);
            assert!(
                last > 0.2,
                "after full epochs the model is at chance: {last}"
            );
        }
        // A digest of every rank's final parameters: the same bits on both transports.
        let x = parameters(&model);
        let sums = bf.allgather(&vec![x.iter().map(|v| *v as f64).sum::<f64>()])?;
        Ok(
            (bf.rank() == 0)
                .then(|| format!("{:?}", sums.iter().map(|s| s[0]).collect::<Vec<_>>())),
        )
    })?;
    if let Some(Some(d)) = out.get(0) {
        println!("parameter sums by rank: {d}");
    }
    Ok(())
}

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let a = parse()?;
    #[cfg(not(feature = "metrics"))]
    if a.metrics.is_some() {
        return Err(Error::InvalidArgument(
            "--metrics needs the example built with --features metrics".into(),
        ));
    }
    let data = match a.data.split_once('=') {
        None if a.data == "mnist" => mnist()?,
        None if a.data == "fashion-mnist" => fashion_mnist()?,
        Some(("cifar10", dir)) => cifar10(dir)?,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "--data: expected mnist, fashion-mnist or cifar10=DIR, found {:?}",
                a.data
            )))
        }
    }
    .standardized();
    match a.model.as_str() {
        "mlp" => run::<MlpNet>(&a, &data),
        "lenet" => run::<LeNet5>(&a, &data),
        "resnet20" => run::<ResNet20>(&a, &data),
        other => Err(Error::InvalidArgument(format!(
            "--model: expected mlp, lenet or resnet20, found {other:?}"
        ))),
    }
}
