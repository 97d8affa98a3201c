//! Training throughput, side by side in one run: 4 ranks training the MLP (784-128-10) and
//! LeNet-5 on Fashion-MNIST with DecentLaM on a ring, batch 64 per rank, over fogkit's
//! in-process transport and its MPI transport (4 processes under `fogrun`), next to PyTorch
//! DistributedDataParallel (gloo, CPU, one thread per process; `tests/bench/ddp.py`) on the
//! same models, batch and machine. Prints a markdown table of samples/s over all ranks.
//!
//! ```text
//! tests/bench/training.sh                      # builds, installs torch in a venv, runs this
//! train_bench [--ranks 4] [--steps 200] [--rounds 3] [--models mlp,lenet] [--python PY]
//! train_bench --timeline-overhead 1 [--pairs 3] # fogkit MPI with the timeline off and on
//! ```
//! With `--timeline-overhead 1` it runs, instead, the first model over MPI `--pairs` times
//! with the timeline off and on alternately (`FOGKIT_TIMELINE` set for the second of each
//! pair) and prints both and their ratio.
//! Each column is the mean over `--rounds` timed rounds of `--steps` steps (after warm-up
//! steps), with the slowest and fastest round beside it. Under `fogrun` the same binary is
//! the MPI worker: it prints one line, `samples/s mean min max`.

use std::process::Command;

use fogkit::data::{fashion_mnist, partition_iid, Split};
use fogkit::nn::{LeNet5, MlpNet};
use fogkit::optim::{Method, Optimizer};
use fogkit::prelude::*;
use fogkit::train::{build, train, Network, Training};

struct Args {
    ranks: usize,
    steps: usize,
    rounds: usize,
    models: Vec<String>,
    python: String,
    timeline_overhead: bool,
    pairs: usize,
}

fn parse() -> fogkit::Result<Args> {
    let mut a = Args {
        ranks: fogkit::launched_size().unwrap_or(4),
        steps: 200,
        rounds: 3,
        models: vec!["mlp".into(), "lenet".into()],
        python: std::env::var("FOGKIT_TORCH_PYTHON").unwrap_or_else(|_| "python3".into()),
        timeline_overhead: false,
        pairs: 3,
    };
    let bad = |k: &str, v: &str| Error::InvalidArgument(format!("{k}: cannot use {v:?}"));
    for (k, v) in fogkit::launch::option_pairs(std::env::args().skip(1))? {
        let (k, v) = (k.as_str(), v.as_str());
        let num = |v: &str| v.parse::<usize>().ok().filter(|&n| n > 0);
        match k {
            "--ranks" => a.ranks = num(v).ok_or_else(|| bad(k, v))?,
            "--steps" => a.steps = num(v).ok_or_else(|| bad(k, v))?,
            "--rounds" => a.rounds = num(v).ok_or_else(|| bad(k, v))?,
            "--models" => {
                a.models = v.split(',').map(str::to_string).collect();
                if let Some(m) = a
                    .models
                    .iter()
                    .find(|m| !["mlp", "lenet"].contains(&m.as_str()))
                {
                    return Err(bad(k, m));
                }
            }
            "--python" => a.python = v.into(),
            "--timeline-overhead" => a.timeline_overhead = v == "1",
            "--pairs" => a.pairs = num(v).ok_or_else(|| bad(k, v))?,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown option {k}: expected --ranks, --steps, --rounds, --models, --python, --timeline-overhead or --pairs"
                )))
            }
        }
    }
    Ok(a)
}

/// Samples/s of `rounds` timed rounds (one epoch of `steps` each, after a warm-up epoch):
/// `(mean, min, max)`, as rank 0 measured them.
fn measure<M: Network>(data: &Split, a: &Args) -> fogkit::Result<(f64, f64, f64)> {
    let test = data.test.subset(&(0..256).collect::<Vec<_>>());
    let per_rank = fogkit::run(a.ranks, |bf: &Fog| -> fogkit::Result<Vec<f64>> {
        bf.set_topology(topology::ring(bf.size()))?;
        let share = partition_iid(data.train.len(), bf.size(), 1)[bf.rank()].clone();
        let share = data.train.subset(&share);
        let mut model: M = build(bf, 1)?;
        let mut opt = Optimizer::new(Method::DecentLam).lr(0.05).momentum(0.9);
        let warm = Training {
            epochs: 1,
            batch: 64,
            seed: 1,
            steps_per_epoch: Some(20),
        };
        train(bf, &mut model, &mut opt, &share, &test, &warm, |_| {})?;
        let timed = Training {
            epochs: a.rounds,
            steps_per_epoch: Some(a.steps),
            seed: 2,
            ..warm
        };
        let log = train(bf, &mut model, &mut opt, &share, &test, &timed, |_| {})?;
        Ok(log.iter().map(|r| r.samples_per_sec).collect())
    })?;
    // Rank 0's in-process; this process's rank's under mpirun (rank 0's prints).
    let Some(rates) = per_rank.get(0).or(per_rank.iter().next().map(|(_, r)| r)) else {
        return Err(Error::InvalidArgument(
            "no rank's rates in this process".into(),
        ));
    };
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let min = rates.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = rates.iter().cloned().fold(0.0, f64::max);
    Ok((mean, min, max))
}

fn measure_model(model: &str, data: &Split, a: &Args) -> fogkit::Result<(f64, f64, f64)> {
    match model {
        "mlp" => measure::<MlpNet>(data, a),
        _ => measure::<LeNet5>(data, a),
    }
}

/// Runs a command and reads its `samples/s mean [min max]` line.
fn external(cmd: &mut Command, what: &str) -> fogkit::Result<(f64, f64, f64)> {
    let out = cmd
        .output()
        .map_err(|e| Error::InvalidArgument(format!("could not start {what}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("samples/s "));
    let vals: Vec<f64> = line
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    match (out.status.success(), vals.as_slice()) {
        (true, [m, lo, hi]) => Ok((*m, *lo, *hi)),
        (true, [m]) => Ok((*m, *m, *m)),
        _ => Err(Error::InvalidArgument(format!(
            "{what} failed ({}), expected a line `samples/s ...`; stdout:\n{text}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}

fn cell((mean, min, max): (f64, f64, f64)) -> String {
    format!("{mean:.0} ({min:.0}-{max:.0})")
}

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let a = parse()?;
    let data = fashion_mnist()?.standardized();
    if fogkit::launched_by_mpirun() {
        // The MPI worker: one model, one line from rank 0.
        let (m, lo, hi) = measure_model(&a.models[0], &data, &a)?;
        if std::env::var("OMPI_COMM_WORLD_RANK").map_or(true, |r| r == "0") {
            println!("samples/s {m:.0} {lo:.0} {hi:.0}");
        }
        return Ok(());
    }
    let me = std::env::current_exe().map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let dir = me.parent().expect("an executable lives in a directory");
    let fogrun = dir.join("fogrun");
    let ddp = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/ddp.py");
    let (r, s, k) = (
        a.ranks.to_string(),
        a.steps.to_string(),
        a.rounds.to_string(),
    );
    let mpi_run = |model: &str, timeline: Option<&std::path::Path>| {
        let mut launch = Command::new(&fogrun);
        launch.args(["-np", &r]);
        if std::env::var("OMPI_ALLOW_RUN_AS_ROOT").is_ok_and(|v| v == "1") {
            // The user has let Open MPI run as root (containers); fogrun asks to be told too.
            launch.arg("--allow-run-as-root");
        }
        launch.env_remove("FOGKIT_TIMELINE");
        if let Some(prefix) = timeline {
            launch.env("FOGKIT_TIMELINE", prefix);
        }
        external(
            launch
                .arg(&me)
                .args(["--models", model, "--steps", &s, "--rounds", &k]),
            "fogkit under fogrun (build it: cargo build --release -p fogkit --bin fogrun)",
        )
    };
    if a.timeline_overhead {
        let model = &a.models[0];
        let dir = std::env::temp_dir().join(format!("fogkit-tl-bench-{}", std::process::id()));
        let prefix = dir.join("rank-");
        println!(
            "{} MPI ranks, {model}, DecentLaM on a ring, batch 64 per rank; samples/s over all \
             ranks, mean of {} rounds of {} steps; timeline off and on alternately, {} pairs\n",
            a.ranks, a.rounds, a.steps, a.pairs
        );
        println!("| pair | timeline off | timeline on | on / off |");
        println!("|---:|---:|---:|---:|");
        let (mut off_sum, mut on_sum) = (0.0, 0.0);
        for p in 1..=a.pairs {
            let off = mpi_run(model, None)?;
            let on = mpi_run(model, Some(&prefix))?;
            println!(
                "| {p} | {} | {} | {:.3} |",
                cell(off),
                cell(on),
                on.0 / off.0
            );
            off_sum += off.0;
            on_sum += on.0;
        }
        println!(
            "| mean | {off_sum:.0} | {on_sum:.0} | {:.3} |",
            on_sum / off_sum
        );
        let written = (0..a.ranks)
            .filter(|&rk| fogkit::timeline::file_for(&prefix, rk).exists())
            .count();
        println!(
            "\n(the timeline runs wrote {written} of {} rank files)",
            a.ranks
        );
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    println!(
        "{} ranks, DecentLaM on a ring (fogkit) / DDP (PyTorch), batch 64 per rank, Fashion-MNIST; \
         samples/s over all ranks, mean (min-max) of {} rounds of {} steps\n",
        a.ranks, a.rounds, a.steps
    );
    println!("| model | fogkit local | fogkit MPI | PyTorch DDP | local / DDP | MPI / DDP |");
    println!("|---|---:|---:|---:|---:|---:|");
    for model in &a.models {
        let local = measure_model(model, &data, &a)?;
        let mpi = mpi_run(model, None)?;
        let torch = external(
            Command::new(&a.python).arg(&ddp).args([
                "--model", model, "--procs", &r, "--steps", &s, "--rounds", &k,
            ]),
            "PyTorch DDP (tests/bench/ddp.py; needs torch and numpy: see tests/bench/training.sh)",
        )?;
        let name = if model == "mlp" {
            "MLP 784-128-10"
        } else {
            "LeNet-5"
        };
        println!(
            "| {name} | {} | {} | {} | {:.2} | {:.2} |",
            cell(local),
            cell(mpi),
            cell(torch),
            local.0 / torch.0,
            mpi.0 / torch.0
        );
    }
    Ok(())
}
