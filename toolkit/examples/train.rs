//! Trains any of the chapter's networks with any optimizer and communication on
//! in-process ranks or, under fogrun, one rank per process: the same command either way.
//!
//! ```text
//! cargo run --release -p fogkit --features metrics --example train -- \
//!     --model lenet --method DecentLaM --data fashion-mnist --ranks 4 --epochs 2 \
//!     --batch 64 --lr 0.05 --partition dirichlet=0.5 --metrics train.parquet
//! cargo run --release -p fogkit --example train -- --help      # every option and its values
//! # over MPI: build with the mpi feature, then run one rank per process
//! cargo build --release -p fogkit --features mpi --example train --bin fogrun
//! target/release/fogrun -np 4 target/release/examples/train --model mlp --data mnist \
//!     --method AWC-DmSGD --communication one-peer-exp2
//! ```
//! Prints one line per epoch and a digest of the final parameters. Bad input exits with
//! code 2 and says what was expected.

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Command};
use fogkit::data::{cifar10, fashion_mnist, mnist, partition_dirichlet, partition_iid, Split};
use fogkit::nn::{LeNet5, MlpNet, ResNet20};
use fogkit::optim::{parameters, Communication, Method, Optimizer, COMMUNICATION_NAMES};
use fogkit::prelude::*;
use fogkit::train::{build, train, Network, Training};

struct Args {
    model: String,
    method: Method,
    communication: Option<Communication>,
    every: usize,
    nesterov: bool,
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

fn command() -> Command {
    let methods: Vec<&'static str> = Method::all().iter().map(|m| m.name()).collect();
    let num = |name: &'static str, default: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .value_name("N")
            .default_value(default)
            .help(help)
    };
    Command::new("train")
        .allow_negative_numbers(true)
        .about("Trains a network with a decentralized optimizer on in-process ranks, or under fogrun one rank per process")
        .arg(Arg::new("model").long("model").value_parser(["mlp", "lenet", "resnet20"]).default_value("mlp").help("The network"))
        .arg(Arg::new("method").long("method").value_parser(PossibleValuesParser::new(methods)).ignore_case(true).default_value("DecentLaM").help("The update rule"))
        .arg(Arg::new("communication").long("communication").value_parser(PossibleValuesParser::new(COMMUNICATION_NAMES)).help("How W x is formed [default: global for PmSGD, static for the others]"))
        .arg(num("every", "1", "Communicate every N-th step, local steps between"))
        .arg(Arg::new("nesterov").long("nesterov").action(ArgAction::SetTrue).help("Nesterov momentum"))
        .arg(Arg::new("data").long("data").value_name("SET").default_value("mnist").help("mnist, fashion-mnist or cifar10=DIR"))
        .arg(Arg::new("ranks").long("ranks").value_name("N").help("In-process ranks [default: 4, or FOGKIT_RANKS; under fogrun: the processes]"))
        .arg(num("epochs", "1", "Passes over the data"))
        .arg(num("batch", "64", "Images per rank per step"))
        .arg(Arg::new("steps").long("steps").value_name("N").help("Steps per epoch [default: one pass over the data]"))
        .arg(Arg::new("lr").long("lr").value_name("X").default_value("0.05").help("Step size"))
        .arg(Arg::new("momentum").long("momentum").value_name("X").default_value("0.9").help("Momentum beta"))
        .arg(Arg::new("weight-decay").long("weight-decay").value_name("X").default_value("0").help("L2 weight decay"))
        .arg(Arg::new("topology").long("topology").value_parser(["ring", "exponential-two", "symmetric-exponential", "fully-connected"]).default_value("ring").help("The static topology"))
        .arg(Arg::new("partition").long("partition").value_name("P").default_value("iid").help("iid or dirichlet=ALPHA"))
        .arg(num("seed", "1", "Seed of the weights, shares and batches"))
        .arg(Arg::new("metrics").long("metrics").value_name("FILE").help("Write per-epoch metrics to FILE.parquet or FILE.csv (needs --features frames)"))
}

/// A value of `id`, parsed, or an error in clap's words (exit code 2).
fn get<T: std::str::FromStr>(m: &ArgMatches, id: &str) -> Result<Option<T>, clap::Error> {
    match m.get_one::<String>(id) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            command().error(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value {v:?} for --{id}: expected a number"),
            )
        }),
    }
}

fn parse() -> Result<Args, clap::Error> {
    let m = command().try_get_matches()?;
    let text = |id: &str| m.get_one::<String>(id).cloned().unwrap_or_default();
    let need = |v: Option<f64>| v.unwrap_or_default();
    Ok(Args {
        model: text("model"),
        method: Method::parse(&text("method"))
            .map_err(|e| command().error(clap::error::ErrorKind::InvalidValue, e))?,
        communication: match m.get_one::<String>("communication") {
            Some(c) => Some(
                Communication::parse(c)
                    .map_err(|e| command().error(clap::error::ErrorKind::InvalidValue, e))?,
            ),
            None => None,
        },
        every: get(&m, "every")?.unwrap_or(1),
        nesterov: m.get_flag("nesterov"),
        data: text("data"),
        ranks: get(&m, "ranks")?.unwrap_or_else(|| fogkit::launch::ranks_or(4)),
        epochs: get(&m, "epochs")?.unwrap_or(1),
        batch: get(&m, "batch")?.unwrap_or(64),
        steps: get(&m, "steps")?,
        lr: need(get(&m, "lr")?),
        momentum: need(get(&m, "momentum")?),
        weight_decay: need(get(&m, "weight-decay")?),
        topology: text("topology"),
        partition: text("partition"),
        seed: get(&m, "seed")?.unwrap_or(1),
        metrics: m.get_one::<String>("metrics").cloned(),
    })
}

fn topology_for(name: &str, n: usize) -> fogkit::Result<Topology> {
    Ok(match name {
        "ring" => topology::ring(n),
        "exponential-two" => topology::exponential_two(n),
        "symmetric-exponential" => topology::symmetric_exponential(n),
        "fully-connected" => topology::fully_connected(n),
        other => {
            return Err(Error::InvalidArgument(format!(
            "--topology: expected ring, exponential-two, symmetric-exponential or fully-connected, found {other:?}"
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
            .nesterov(a.nesterov)
            .weight_decay(a.weight_decay)
            .communicate_every(a.every);
        if let Some(c) = &a.communication {
            opt = opt.communication(c.clone());
        }
        let cfg = Training {
            epochs: a.epochs,
            batch: a.batch,
            seed: a.seed,
            steps_per_epoch: a.steps,
        };
        #[cfg(feature = "frames")]
        let mut metrics =
            fogkit::metrics::Metrics::new(format!("{} {}", M::NAME, a.method.name()), bf.rank());
        #[cfg(feature = "progress")]
        let bar = fogkit::progress::Progress::new(
            bf.rank(),
            a.epochs as u64,
            &format!("{} {}", M::NAME, a.method.name()),
        );
        let log = train(bf, &mut model, &mut opt, &share, &data.test, &cfg, |r| {
            if bf.rank() == 0 {
                println!(
                    "epoch {}: loss {:.4}, test accuracy {:.2}% (average model), {:.2}% (own models), {:.0} samples/s, {:.1} KiB sent per rank per step",
                    r.epoch,
                    r.train_loss,
                    100.0 * r.test_accuracy,
                    100.0 * r.local_accuracy,
                    r.samples_per_sec,
                    r.bytes_per_step / 1024.0
                );
            }
            #[cfg(feature = "progress")]
            bar.inc(1);
            #[cfg(feature = "frames")]
            {
                let _ = metrics.record_all(
                    r.steps as u64,
                    &[
                        ("train_loss", r.train_loss),
                        ("test_accuracy", r.test_accuracy),
                        ("local_accuracy", r.local_accuracy),
                        ("consensus_distance", r.consensus_distance),
                        ("bytes_per_step", r.bytes_per_step),
                    ],
                );
            }
        })?;
        #[cfg(feature = "progress")]
        bar.finish();
        #[cfg(feature = "frames")]
        {
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

/// Bad input exits with code 2 and its message in plain words (clap's own for the command
/// line); a failure while training with 1.
fn main() {
    fogkit::timeline::init_logging();
    let a = match parse() {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    if let Err(e) = train_with(&a) {
        eprintln!("error: {e}");
        let bad_input = matches!(
            e,
            Error::InvalidArgument(_) | Error::Topology(_) | Error::Data(_)
        );
        std::process::exit(if bad_input { 2 } else { 1 });
    }
}

fn train_with(a: &Args) -> fogkit::Result<()> {
    #[cfg(not(feature = "frames"))]
    if a.metrics.is_some() {
        return Err(Error::InvalidArgument(
            "--metrics needs the example built with --features frames (or metrics)".into(),
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
        "mlp" => run::<MlpNet>(a, &data),
        "lenet" => run::<LeNet5>(a, &data),
        "resnet20" => run::<ResNet20>(a, &data),
        other => Err(Error::InvalidArgument(format!(
            "--model: expected mlp, lenet or resnet20, found {other:?}"
        ))),
    }
}
