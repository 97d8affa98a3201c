//! The talk's deep-learning table, scaled to one machine: LeNet-5 on Fashion-MNIST (all
//! 60,000 training and 10,000 test images), 8 in-process ranks on a ring (symmetric W),
//! heterogeneous shares (Dirichlet alpha = 0.5 over labels), small and large total batch.
//! Prints a markdown table of test accuracy (the ranks' average model) and writes it with
//! the per-epoch numbers as CSV.
//!
//! Run: `cargo run --release -p fogkit --example table -- [OUT_DIR] [--epochs E] [--methods a,b,..]`
//! (OUT_DIR defaults to `tutorials/src/results`).

use std::fmt::Write as _;

use fogkit::data::{fashion_mnist, partition_dirichlet};
use fogkit::nn::LeNet5;
use fogkit::optim::{Method, Optimizer};
use fogkit::prelude::*;
use fogkit::train::{build, train, EpochReport, Training};

const RANKS: usize = 8;

/// (label, per-rank batch, step size, warm-up steps).
const SETTINGS: [(&str, usize, f64, usize); 2] = [
    ("small batch (8 x 32 = 256)", 32, 0.02, 0),
    ("large batch (8 x 512 = 4096)", 512, 0.2, 10),
];

fn main() -> fogkit::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::path::PathBuf::from("tutorials/src/results");
    let mut epochs = 3;
    // The talk's methods and baselines; CTA is DSGD in another order.
    let mut methods: Vec<Method> = Method::ALL
        .into_iter()
        .filter(|m| *m != Method::DsgdCta)
        .collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--epochs" => {
                epochs = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| Error::InvalidArgument("--epochs expects a number".into()))?;
                i += 1;
            }
            "--methods" => {
                let list = args
                    .get(i + 1)
                    .ok_or_else(|| Error::InvalidArgument("--methods expects a list".into()))?;
                methods = list
                    .split(',')
                    .map(Method::parse)
                    .collect::<fogkit::Result<_>>()?;
                i += 1;
            }
            other if !other.starts_with("--") => out = other.into(),
            other => return Err(Error::InvalidArgument(format!("unknown option {other}"))),
        }
        i += 1;
    }
    let data = fashion_mnist()?.standardized();
    let shares = partition_dirichlet(&data.train.labels, RANKS, 0.5, 1)?;
    let mut csv = String::from("setting,method,epoch,steps,train_loss,test_accuracy,local_accuracy,consensus_distance,samples_per_sec\n");
    let mut rows: Vec<(Method, Vec<f64>)> = methods.iter().map(|&m| (m, Vec::new())).collect();
    for (label, batch, lr, warmup) in SETTINGS {
        for (method, accs) in rows.iter_mut() {
            let method = *method;
            let started = std::time::Instant::now();
            let log = fogkit::run(RANKS, |bf: &Fog| -> fogkit::Result<Vec<EpochReport>> {
                bf.set_topology(topology::ring(RANKS))?;
                let share = data.train.subset(&shares[bf.rank()]);
                let mut model: LeNet5 = build(bf, 7)?;
                let mut opt = Optimizer::new(method)
                    .lr(lr)
                    .momentum(0.9)
                    .weight_decay(1e-4)
                    .warmup(warmup);
                let cfg = Training {
                    epochs,
                    batch,
                    seed: 3,
                    steps_per_epoch: None,
                };
                train(bf, &mut model, &mut opt, &share, &data.test, &cfg, |_| {})
            })?;
            let log = &log[0];
            for r in log {
                writeln!(
                    csv,
                    "{label},{},{},{},{},{},{},{},{}",
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
            let last = log.last().map(|r| r.test_accuracy).unwrap_or(f64::NAN);
            eprintln!(
                "{label}: {} -> {:.2}% ({:.0} s)",
                method.name(),
                100.0 * last,
                started.elapsed().as_secs_f64()
            );
            accs.push(last);
        }
    }
    let mut md = format!(
        "LeNet-5 on Fashion-MNIST, {RANKS} ranks on a ring, Dirichlet(0.5) label shares, {epochs} epochs, momentum 0.9, weight decay 1e-4.\n\
         Test accuracy (%) of the ranks' average model.\n\n| method | {} | {} |\n|---|---|---|\n",
        SETTINGS[0].0, SETTINGS[1].0
    );
    for (method, accs) in &rows {
        writeln!(
            md,
            "| {} | {:.2} | {:.2} |",
            method.name(),
            100.0 * accs[0],
            100.0 * accs[1]
        )
        .ok();
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
    Ok(())
}
