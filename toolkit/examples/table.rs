//! The talk's deep-learning table, scaled to one machine: LeNet-5 on Fashion-MNIST (all
//! 60,000 training and 10,000 test images), 8 in-process ranks on a ring (symmetric W; or,
//! with `--topology lazy-ring`, its positive-definite lazy form `(I + W) / 2`),
//! heterogeneous shares (Dirichlet alpha = 0.5 over labels), small and large total batch,
//! the same number of epochs for both (so the large batch takes 16x fewer steps).
//! Prints a markdown table of test accuracy (the ranks' average model) and writes it with
//! the per-epoch numbers as CSV.
//!
//! Every method runs with the same hyper-parameters: momentum 0.9, weight decay 1e-4, and
//! per setting one step size. The large-batch one is the largest of 0.2, 0.1 and 0.05 at
//! which PmSGD (the centralized baseline) trained in trial runs (not among the committed
//! results).
//!
//! Run: `cargo run --release -p fogkit --example table -- [--out DIR] [--epochs E]
//! [--methods a,b,..] [--batches small,large] [--topology ring|lazy-ring] [--seeds S]
//! [--ranks N] [--steps S]
//! [--test-images T]` (`--help` lists them with their values; DIR defaults to
//! `tutorials/src/results`, and to `tutorials/src/results/lazy_ring` on the lazy ring; with `--seeds S` every
//! cell is the mean of S runs with other initial weights and batch orders, and its
//! range). `--steps` (per epoch) and `--test-images` (the first T test images) make a
//! quick run that checks the program, not the claim; under `fogrun -np N` it runs one
//! rank per process and the process of rank 0 prints and writes.

use std::fmt::Write as _;

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgMatches, Command};
use fogkit::data::{fashion_mnist, partition_dirichlet};
use fogkit::nn::LeNet5;
use fogkit::optim::{Method, Optimizer};
use fogkit::prelude::*;
use fogkit::train::{build, train, EpochReport, Training};

/// One column of the table.
struct Setting {
    /// Short name for `--batches`.
    name: &'static str,
    /// Images per rank per step.
    batch: usize,
    lr: f64,
    warmup: usize,
}

impl Setting {
    /// The column's heading on `ranks` ranks, also the CSV's `setting`.
    fn label(&self, ranks: usize) -> String {
        format!(
            "{} batch ({ranks} x {} = {})",
            self.name,
            self.batch,
            ranks * self.batch
        )
    }
}

const SETTINGS: [Setting; 2] = [
    Setting {
        name: "small",
        batch: 32,
        lr: 0.02,
        warmup: 0,
    },
    Setting {
        name: "large",
        batch: 512,
        lr: 0.05,
        // Linear warm-up for about one epoch (on 8 ranks an epoch is 14 steps of 4096
        // images).
        warmup: 15,
    },
];

fn command() -> Command {
    let methods: Vec<&'static str> = Method::all().iter().map(|m| m.name()).collect();
    let num = |name: &'static str, help: &'static str| {
        Arg::new(name).long(name).value_name("N").help(help)
    };
    Command::new("table")
        .about("The talk's deep-learning table on one machine: LeNet-5 on Fashion-MNIST, every method, small and large batch")
        .arg(Arg::new("out").long("out").value_name("DIR").default_value("tutorials/src/results").help("Where the table and its CSV go"))
        .arg(num("epochs", "Epochs per run [default: 10]"))
        .arg(
            Arg::new("methods")
                .long("methods")
                .value_delimiter(',')
                .value_parser(PossibleValuesParser::new(methods))
                .ignore_case(true)
                .help("Methods, comma-separated [default: the talk's methods but DSGD-CTA]"),
        )
        .arg(Arg::new("batches").long("batches").value_delimiter(',').value_parser(["small", "large"]).help("Settings, comma-separated [default: small,large]"))
        .arg(Arg::new("topology").long("topology").value_parser(["ring", "lazy-ring"]).default_value("ring").help("W: the ring, or its lazy form (I + W) / 2 (positive definite; D2's condition holds)"))
        .arg(num("seeds", "Runs per cell, their mean and range [default: 1]"))
        .arg(num("ranks", "In-process ranks [default: 8, or FOGKIT_RANKS; under fogrun: the processes]"))
        .arg(num("steps", "Steps per epoch, for a quick check [default: one pass]"))
        .arg(num("test-images", "Evaluate on the first N test images [default: all]"))
}

/// A number given for `id`, or an error in clap's words (exit code 2).
fn get(m: &ArgMatches, id: &str) -> Result<Option<usize>, clap::Error> {
    match m.get_one::<String>(id) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            command().error(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value {v:?} for --{id}: expected a whole number"),
            )
        }),
    }
}

/// Bad input exits with code 2 and its message in plain words; a failure while training
/// with 1.
fn main() {
    fogkit::timeline::init_logging();
    if let Err(e) = table() {
        eprintln!("error: {e}");
        let bad_input = matches!(
            e,
            Error::InvalidArgument(_) | Error::Topology(_) | Error::Data(_)
        );
        std::process::exit(if bad_input { 2 } else { 1 });
    }
}

fn table() -> fogkit::Result<()> {
    let m = command().try_get_matches().unwrap_or_else(|e| e.exit());
    let arg = |id: &str| get(&m, id).unwrap_or_else(|e| e.exit());
    let out = std::path::PathBuf::from(m.get_one::<String>("out").cloned().unwrap_or_default());
    let epochs = arg("epochs").unwrap_or(10);
    let seeds = arg("seeds").unwrap_or(1);
    let ranks = arg("ranks").unwrap_or_else(|| fogkit::launch::ranks_or(8));
    let steps = arg("steps");
    let test_images = arg("test-images");
    let lazy = m
        .get_one::<String>("topology")
        .is_some_and(|t| t == "lazy-ring");
    // The lazy ring's results go beside the ring's, never over them.
    let out = if lazy && m.value_source("out") == Some(clap::parser::ValueSource::DefaultValue) {
        out.join("lazy_ring")
    } else {
        out
    };
    let (ring, ring_name) = if lazy {
        (topology::ring(ranks).lazy(), "the lazy ring (I + W) / 2")
    } else {
        (topology::ring(ranks), "a ring")
    };
    // The talk's methods and baselines; CTA is DSGD in another order.
    let methods: Vec<Method> = match m.get_many::<String>("methods") {
        Some(names) => names
            .map(|n| Method::parse(n))
            .collect::<fogkit::Result<_>>()?,
        None => Method::ALL
            .into_iter()
            .filter(|m| *m != Method::DsgdCta)
            .collect(),
    };
    let settings: Vec<&Setting> = match m.get_many::<String>("batches") {
        Some(names) => names
            .filter_map(|n| SETTINGS.iter().find(|s| s.name == n.as_str()))
            .collect(),
        None => SETTINGS.iter().collect(),
    };
    if epochs == 0 || seeds == 0 || ranks == 0 || steps == Some(0) || test_images == Some(0) {
        return Err(Error::InvalidArgument(format!(
            "expected at least one epoch, seed, rank, step and test image, found --epochs \
             {epochs} --seeds {seeds} --ranks {ranks} --steps {steps:?} --test-images {test_images:?}"
        )));
    }
    let mut data = fashion_mnist()?.standardized();
    if let Some(t) = test_images {
        let first: Vec<usize> = (0..t.min(data.test.len())).collect();
        data.test = data.test.subset(&first);
    }
    let shares = partition_dirichlet(&data.train.labels, ranks, 0.5, 1)?;
    // Every rank's reports are the same; the process holding rank 0 speaks.
    let speaks = fogkit::launch::process_rank() == 0;
    let mut csv = String::from(
        "setting,method,epoch,steps,train_loss,test_accuracy,local_accuracy,\
         consensus_distance,samples_per_sec,seed\n",
    );
    // Final accuracies: [method][setting][seed].
    let mut finals = vec![vec![Vec::new(); settings.len()]; methods.len()];
    for (s, setting) in settings.iter().enumerate() {
        let label = setting.label(ranks);
        for (m, &method) in methods.iter().enumerate() {
            for seed in 0..seeds as u64 {
                let started = std::time::Instant::now();
                let log = fogkit::run(ranks, |bf: &Fog| -> fogkit::Result<Vec<EpochReport>> {
                    bf.set_topology(ring.clone())?;
                    let share = data.train.subset(&shares[bf.rank()]);
                    let mut model: LeNet5 = build(bf, 7 + seed)?;
                    let mut opt = Optimizer::new(method)
                        .lr(setting.lr)
                        .momentum(0.9)
                        .weight_decay(1e-4)
                        .warmup(setting.warmup);
                    let cfg = Training {
                        epochs,
                        batch: setting.batch,
                        seed: 3 + 1000 * seed,
                        steps_per_epoch: steps,
                    };
                    train(bf, &mut model, &mut opt, &share, &data.test, &cfg, |_| {})
                });
                // A run that diverges is a result too, not the end of the table.
                let (log, last) = match log {
                    Ok(logs) => {
                        let log = logs
                            .into_here()
                            .into_iter()
                            .next()
                            .map(|(_, log)| log)
                            .unwrap_or_default();
                        let last = log.last().map(|r| r.test_accuracy).unwrap_or(f64::NAN);
                        (log, last)
                    }
                    Err(e @ Error::Diverged { .. }) => {
                        if speaks {
                            eprintln!("{label}: {} {e}", method.name());
                        }
                        (Vec::new(), f64::NAN)
                    }
                    Err(e) => return Err(e),
                };
                for r in &log {
                    writeln!(
                        csv,
                        "{label},{},{},{},{},{},{},{},{},{seed}",
                        method.name(),
                        r.epoch,
                        r.steps,
                        r.train_loss,
                        r.test_accuracy,
                        r.local_accuracy,
                        r.consensus_distance,
                        r.samples_per_sec
                    )
                    .ok();
                }
                if speaks {
                    eprintln!(
                        "{label}: {} seed {seed} -> {:.2}% ({:.0} s)",
                        method.name(),
                        100.0 * last,
                        started.elapsed().as_secs_f64()
                    );
                }
                finals[m][s].push(last);
            }
        }
    }
    let runs = if seeds == 1 {
        String::new()
    } else {
        format!(" Each cell: mean (min-max) of {seeds} runs with other initial weights and batch orders.")
    };
    let mut md = format!(
        "LeNet-5 on Fashion-MNIST, {ranks} ranks on {ring_name}, Dirichlet(0.5) label shares, {epochs} epochs, \
         momentum 0.9, weight decay 1e-4, step size {}.\n\
         Test accuracy (%) of the ranks' average model.{runs}\n\n| method |",
        settings
            .iter()
            .map(|s| match s.warmup {
                0 => format!("{} ({})", s.lr, s.name),
                w => format!("{} after {w} warm-up steps ({})", s.lr, s.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    for s in &settings {
        write!(md, " {} |", s.label(ranks)).ok();
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(settings.len()));
    md.push('\n');
    for (method, cells) in methods.iter().zip(&finals) {
        write!(md, "| {} |", method.name()).ok();
        for accs in cells {
            let mean = accs.iter().sum::<f64>() / accs.len() as f64;
            let diverged = accs.iter().filter(|a| a.is_nan()).count();
            if diverged > 0 {
                write!(md, " diverged ({diverged} of {}) |", accs.len()).ok();
            } else if accs.len() == 1 {
                write!(md, " {:.2} |", 100.0 * mean).ok();
            } else {
                let (lo, hi) = accs
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &a| {
                        (l.min(a), h.max(a))
                    });
                write!(
                    md,
                    " {:.2} ({:.2}-{:.2}) |",
                    100.0 * mean,
                    100.0 * lo,
                    100.0 * hi
                )
                .ok();
            }
        }
        md.push('\n');
    }
    if !speaks {
        return Ok(());
    }
    println!("{md}");
    std::fs::create_dir_all(&out)
        .map_err(|e| Error::Data(format!("cannot create {}: {e}", out.display())))?;
    for (name, text) in [
        ("fashion_mnist_table.md", &md),
        ("fashion_mnist_epochs.csv", &csv),
    ] {
        std::fs::write(out.join(name), text)
            .map_err(|e| Error::Data(format!("cannot write {name}: {e}")))?;
    }
    // The lesson's checks, after the results are saved: every run that did not diverge
    // gives an accuracy, and after full epochs (no --steps) at large batch DecentLaM is
    // not below DmSGD on any seed (the talk's claim, which the book's table shows).
    for (method, cells) in methods.iter().zip(&finals) {
        for acc in cells.iter().flatten().filter(|a| !a.is_nan()) {
            assert!(
                (0.0..=1.0).contains(acc),
                "{}: accuracy {acc}",
                method.name()
            );
        }
    }
    let column = |m: Method| methods.iter().position(|&x| x == m).map(|i| &finals[i]);
    let large = settings.iter().position(|s| s.name == "large");
    if let (Some(dl), Some(dm), Some(l), None) = (
        column(Method::DecentLam),
        column(Method::DmSgd),
        large,
        steps,
    ) {
        for (seed, (a, b)) in dl[l].iter().zip(&dm[l]).enumerate() {
            assert!(
                a.is_nan() || b.is_nan() || a >= b,
                "seed {seed}: DecentLaM {a} below DmSGD {b} at large batch"
            );
        }
    }
    Ok(())
}
