//! The talk's deep-learning table, scaled to one machine: LeNet-5 on Fashion-MNIST (all
//! 60,000 training and 10,000 test images), 8 in-process ranks on a ring (symmetric W),
//! heterogeneous shares (Dirichlet alpha = 0.5 over labels), small and large total batch,
//! the same number of epochs for both (so the large batch takes 16x fewer steps).
//! Prints a markdown table of test accuracy (the ranks' average model) and writes it with
//! the per-epoch numbers as CSV.
//!
//! Every method runs with the same hyper-parameters: momentum 0.9, weight decay 1e-4, and
//! per setting one step size. The large-batch one is the largest of 0.2, 0.1 and 0.05 at
//! which PmSGD (the centralized baseline) trains: at 0.2 and 0.1 its loss stalls at
//! chance level after the warm-up.
//!
//! Run: `cargo run --release -p fogkit --example table -- [--out DIR] [--epochs E]
//! [--methods a,b,..] [--batches small,large] [--seeds S] [--ranks N] [--steps S]
//! [--test-images T]` (DIR defaults to `tutorials/src/results`; with `--seeds S` every
//! cell is the mean of S runs with other initial weights and batch orders, and its
//! range). `--steps` (per epoch) and `--test-images` (the first T test images) make a
//! quick run that checks the program, not the claim; under `fogrun -np N` it runs one
//! rank per process and the process of rank 0 prints and writes.

use std::fmt::Write as _;

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

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let mut out = std::path::PathBuf::from("tutorials/src/results");
    let mut epochs = 10;
    let mut seeds = 1;
    let mut ranks = fogkit::launch::ranks_or(8);
    let mut steps: Option<usize> = None;
    let mut test_images: Option<usize> = None;
    // The talk's methods and baselines; CTA is DSGD in another order.
    let mut methods: Vec<Method> = Method::ALL
        .into_iter()
        .filter(|m| *m != Method::DsgdCta)
        .collect();
    let mut settings: Vec<&Setting> = SETTINGS.iter().collect();
    let bad = |k: &str, v: &str| Error::InvalidArgument(format!("{k}: cannot use {v:?}"));
    for (k, v) in fogkit::launch::option_pairs(std::env::args().skip(1))? {
        let (k, v) = (k.as_str(), v.as_str());
        match k {
            "--out" => out = v.into(),
            "--epochs" => epochs = v.parse().map_err(|_| bad(k, v))?,
            "--seeds" => seeds = v.parse().map_err(|_| bad(k, v))?,
            "--ranks" => ranks = v.parse().map_err(|_| bad(k, v))?,
            "--steps" => steps = Some(v.parse().map_err(|_| bad(k, v))?),
            "--test-images" => test_images = Some(v.parse().map_err(|_| bad(k, v))?),
            "--methods" => {
                methods = v
                    .split(',')
                    .map(Method::parse)
                    .collect::<fogkit::Result<_>>()?
            }
            "--batches" => {
                settings = v
                    .split(',')
                    .map(|name| {
                        SETTINGS.iter().find(|s| s.name == name).ok_or_else(|| {
                            Error::InvalidArgument(format!(
                                "--batches: expected small or large, found {name:?}"
                            ))
                        })
                    })
                    .collect::<fogkit::Result<_>>()?
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown option {k} (expected --out, --epochs, --methods, --batches, --seeds, \
                     --ranks, --steps or --test-images)"
                )))
            }
        }
    }
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
                    bf.set_topology(topology::ring(ranks))?;
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
        "LeNet-5 on Fashion-MNIST, {ranks} ranks on a ring, Dirichlet(0.5) label shares, {epochs} epochs, \
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
