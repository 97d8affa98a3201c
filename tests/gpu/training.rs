//! The GPU training benchmark: LeNet-5 and ResNet-20, several ranks on one GPU (in-process,
//! each rank its own `Cuda` device on GPU 0), DecentLaM over a ring, batch 64 per rank on
//! random images; samples/s over all ranks as the training loop measures it (evaluation
//! excluded), against PyTorch DDP on the same GPU, model and per-rank batch
//! (`tests/bench/ddp.py --device cuda --data synthetic`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fogkit::dfdx::prelude::*;
use fogkit::nn::{LeNet5, Network, ResNet20};
use fogkit::optim::{Method, Optimizer};
use fogkit::prelude::*;
use fogkit::train::{build, train, Training};

use crate::layers::synthetic;

/// `(mean, min, max)` samples/s over `rounds` timed epochs of `steps` steps (each epoch's
/// figure is the slowest rank's), after a warm-up epoch.
fn fogkit_rate<M: Network<Cuda>>(
    ranks: usize,
    steps: usize,
    rounds: usize,
) -> fogkit::Result<(f64, f64, f64)> {
    let per_rank = fogkit::run(ranks, |bf: &Fog| -> fogkit::Result<Vec<f64>> {
        bf.set_topology(topology::ring(bf.size()))?;
        let share = synthetic(4096, M::INPUT, 10 + bf.rank() as u64);
        let test = synthetic(64, M::INPUT, 99);
        let mut model: M = build(bf, 1)?;
        let mut opt = Optimizer::new(Method::DecentLam).lr(0.05).momentum(0.9);
        let warm = Training {
            epochs: 1,
            batch: 64,
            seed: 1,
            steps_per_epoch: Some(5),
        };
        train(bf, &mut model, &mut opt, &share, &test, &warm, |_| {})?;
        let timed = Training {
            epochs: rounds,
            steps_per_epoch: Some(steps),
            seed: 2,
            ..warm
        };
        let log = train(bf, &mut model, &mut opt, &share, &test, &timed, |_| {})?;
        Ok(log.iter().map(|r| r.samples_per_sec).collect())
    })?;
    let rates: Vec<f64> = (0..rounds)
        .map(|i| {
            per_rank
                .iter()
                .map(|(_, v)| v[i])
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    let (lo, hi) = rates
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &r| (a.min(r), b.max(r)));
    Ok((mean, lo, hi))
}

/// How long one PyTorch run may take (start-up, warm-up and the timed rounds).
const LIMIT: Duration = Duration::from_secs(240);

/// PyTorch DDP's `samples/s mean min max` line.
fn torch_rate(
    python: &str,
    model: &str,
    ranks: usize,
    steps: usize,
    rounds: usize,
) -> Result<(f64, f64, f64), String> {
    let mut child = Command::new(python)
        .arg("tests/bench/ddp.py")
        .args(["--model", model, "--device", "cuda", "--data", "synthetic"])
        .args(["--procs", &ranks.to_string(), "--steps", &steps.to_string()])
        .args(["--rounds", &rounds.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {python} tests/bench/ddp.py: {e}"))?;
    // Read both pipes beside the wait, so that a chatty child never blocks on them.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "ddp.py gave no result in {} s; stopped it",
                    LIMIT.as_secs()
                ));
            }
            Err(e) => return Err(format!("waiting for ddp.py: {e}")),
        }
    };
    let out = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default().into_bytes(),
        stderr: stderr.join().unwrap_or_default().into_bytes(),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    match (out.status.success(), fogkit_tests::samples_line(&text)) {
        (true, Some(rate)) => Ok(rate),
        _ => Err(format!(
            "expected a `samples/s MEAN MIN MAX` line from ddp.py, found exit {:?}: {}{}",
            out.status.code(),
            text.trim(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
    }
}

/// Prints the table; returns what failed to run. The target (at least 0.5 of PyTorch's
/// samples/s) is printed beside each row, not asserted: a benchmark is not a test.
pub fn bench(ranks: usize, torch: Option<&str>) -> Vec<String> {
    let mut failed = Vec::new();
    println!(
        "\n{ranks} ranks on one GPU, DecentLaM on a ring (fogkit) / DDP over gloo (PyTorch), \
         batch 64 per rank, random images; samples/s over all ranks, mean (min-max) of 2 rounds\n"
    );
    println!("| model | fogkit | PyTorch DDP | fogkit / PyTorch |");
    println!("|---|---:|---:|---:|");
    let cell = |r: (f64, f64, f64)| format!("{:.0} ({:.0}-{:.0})", r.0, r.1, r.2);
    for (model, name, steps) in [("lenet", "LeNet-5", 100), ("resnet20", "ResNet-20", 30)] {
        let ours = if model == "lenet" {
            fogkit_rate::<LeNet5<f32, Cuda>>(ranks, steps, 2)
        } else {
            fogkit_rate::<ResNet20<f32, Cuda>>(ranks, steps, 2)
        };
        let theirs = torch.map(|py| torch_rate(py, model, ranks, steps, 2));
        match (ours, theirs) {
            (Ok(a), Some(Ok(b))) => {
                println!("| {name} | {} | {} | {:.2} |", cell(a), cell(b), a.0 / b.0)
            }
            (Ok(a), None) => println!("| {name} | {} | (not run) | |", cell(a)),
            (Ok(a), Some(Err(e))) => {
                println!("| {name} | {} | (failed) | |", cell(a));
                failed.push(format!("PyTorch {name}: {e}"));
            }
            (Err(e), _) => failed.push(format!("fogkit {name} on the GPU: {e}")),
        }
    }
    failed
}
