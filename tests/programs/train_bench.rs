//! Training throughput, side by side in one run, on Fashion-MNIST with batch 64 per rank.
//!
//! Two tables. The first: 4 ranks training the MLP (784-128-10) and LeNet-5 with DecentLaM on
//! a ring, over fogkit's in-process transport and its MPI transport (4 processes under
//! `fogrun`), next to PyTorch DistributedDataParallel (gloo, CPU, one thread per process;
//! `tests/bench/ddp.py`) on the same models, batch and machine. The second: the same models
//! under `fogrun` with adapt-then-combine SGD with momentum (blocking: the exchange follows
//! the gradient), adapt-while-combine (overlapped: the exchange of x runs on the engine while
//! the gradient is computed) and no communication at all (the compute-only limit).
//! Samples/s over all ranks.
//!
//! ```text
//! tests/bench/training.sh                       # builds, installs torch in a venv, runs this
//! train_bench [--ranks 4] [--steps 200] [--rounds 3] [--models mlp,lenet] [--tables ddp,overlap]
//! train_bench --timeline-overhead [--pairs 3]   # fogkit MPI with the timeline off and on
//! train_bench --worker --models lenet --method AWC-SGD --communication static  # one run
//! ```
//! Each cell is the mean over `--rounds` timed rounds of `--steps` steps (after warm-up
//! steps), with the slowest and fastest round beside it. `--worker` measures one
//! configuration (in-process, or one rank per process under `fogrun`) and prints one line,
//! `samples/s mean min max`: the table runs itself that way under `fogrun`.

use std::path::Path;
use std::process::Command;

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, Command as Cli};
use fogkit::data::{fashion_mnist, partition_iid, Split};
use fogkit::nn::{LeNet5, MlpNet};
use fogkit::optim::{Base, Communication, Method, Optimizer, COMMUNICATION_NAMES};
use fogkit::prelude::*;
use fogkit::train::{build, train, Network, Training};

struct Args {
    ranks: usize,
    steps: usize,
    rounds: usize,
    models: Vec<String>,
    tables: Vec<String>,
    python: String,
    timeline_overhead: bool,
    pairs: usize,
    worker: bool,
    method: Method,
    communication: String,
}

fn cli() -> Cli {
    let methods: Vec<&'static str> = Method::all().iter().map(|m| m.name()).collect();
    let count = |name: &'static str, default: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .value_name("N")
            .value_parser(clap::value_parser!(u64).range(1..))
            .default_value(default)
            .help(help)
    };
    Cli::new("train_bench")
        .about("Training throughput: fogkit in-process and over MPI next to PyTorch DDP, and overlapped against blocking communication")
        .arg(Arg::new("ranks").long("ranks").value_name("N").value_parser(clap::value_parser!(u64).range(1..)).help("Ranks [default: 4, or under fogrun the processes]"))
        .arg(count("steps", "200", "Steps per timed round"))
        .arg(count("rounds", "3", "Timed rounds"))
        .arg(Arg::new("models").long("models").value_delimiter(',').value_parser(["mlp", "lenet"]).default_value("mlp,lenet").help("The networks, comma separated"))
        .arg(Arg::new("tables").long("tables").value_delimiter(',').value_parser(["ddp", "overlap"]).default_value("ddp,overlap").help("Which tables to print"))
        .arg(Arg::new("python").long("python").value_name("PY").help("The Python with torch and numpy [default: FOGKIT_TORCH_PYTHON, else python3]"))
        .arg(Arg::new("timeline-overhead").long("timeline-overhead").action(ArgAction::SetTrue).help("Instead: the first model over MPI with the timeline off and on alternately"))
        .arg(count("pairs", "3", "Off/on pairs for --timeline-overhead"))
        .arg(Arg::new("worker").long("worker").action(ArgAction::SetTrue).help("Measure one configuration (the first model) and print `samples/s mean min max`"))
        .arg(Arg::new("method").long("method").value_parser(PossibleValuesParser::new(methods)).ignore_case(true).default_value("DecentLaM").help("The update rule of --worker"))
        .arg(Arg::new("communication").long("communication").value_parser(PossibleValuesParser::new(COMMUNICATION_NAMES)).default_value("static").help("The communication of --worker (static: a ring)"))
}

fn parse() -> Result<Args, clap::Error> {
    let m = cli().try_get_matches()?;
    let n = |id: &str| m.get_one::<u64>(id).map(|&v| v as usize);
    let list = |id: &str| -> Vec<String> {
        m.get_many::<String>(id)
            .map(|v| v.cloned().collect())
            .unwrap_or_default()
    };
    let text = |id: &str| m.get_one::<String>(id).cloned().unwrap_or_default();
    Ok(Args {
        ranks: n("ranks").unwrap_or_else(|| fogkit::launched_size().unwrap_or(4)),
        steps: n("steps").unwrap_or(200),
        rounds: n("rounds").unwrap_or(3),
        models: list("models"),
        tables: list("tables"),
        python: m.get_one::<String>("python").cloned().unwrap_or_else(|| {
            std::env::var("FOGKIT_TORCH_PYTHON").unwrap_or_else(|_| "python3".into())
        }),
        timeline_overhead: m.get_flag("timeline-overhead"),
        pairs: n("pairs").unwrap_or(3),
        worker: m.get_flag("worker"),
        method: Method::parse(&text("method"))
            .map_err(|e| cli().error(clap::error::ErrorKind::InvalidValue, e))?,
        communication: text("communication"),
    })
}

/// Samples/s of `rounds` timed rounds (one epoch of `steps` each, after a warm-up epoch) of
/// `method` over `communication` (a ring when static): `(mean, min, max)`, as rank 0
/// measured them (under `fogrun`, this process's rank).
fn measure<M: Network>(
    data: &Split,
    a: &Args,
    method: Method,
    communication: &str,
) -> fogkit::Result<(f64, f64, f64)> {
    let communication = Communication::parse(communication)?;
    let test = data.test.subset(&(0..256).collect::<Vec<_>>());
    let per_rank = fogkit::run(a.ranks, |bf: &Fog| -> fogkit::Result<Vec<f64>> {
        bf.set_topology(topology::ring(bf.size()))?;
        let share = partition_iid(data.train.len(), bf.size(), 1)[bf.rank()].clone();
        let share = data.train.subset(&share);
        let mut model: M = build(bf, 1)?;
        let mut opt = Optimizer::new(method)
            .lr(0.05)
            .momentum(0.9)
            .communication(communication.clone());
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
    // Rank 0's in-process; this process's rank's under fogrun (rank 0's prints).
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

fn measure_model(
    model: &str,
    data: &Split,
    a: &Args,
    method: Method,
    communication: &str,
) -> fogkit::Result<(f64, f64, f64)> {
    match model {
        "mlp" => measure::<MlpNet>(data, a, method, communication),
        _ => measure::<LeNet5>(data, a, method, communication),
    }
}

/// Runs a command and reads its `samples/s mean [min max]` line.
fn external(cmd: &mut Command, what: &str) -> fogkit::Result<(f64, f64, f64)> {
    let out = cmd
        .output()
        .map_err(|e| Error::InvalidArgument(format!("could not start {what}: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match (out.status.success(), fogkit_tests::samples_line(&text)) {
        (true, Some(rate)) => Ok(rate),
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

fn model_name(model: &str) -> &'static str {
    if model == "mlp" {
        "MLP 784-128-10"
    } else {
        "LeNet-5"
    }
}

/// Starts this binary as `--worker` under `fogrun`, one rank per process.
struct Mpi<'a> {
    me: &'a Path,
    fogrun: &'a Path,
    a: &'a Args,
}

impl Mpi<'_> {
    fn run(
        &self,
        model: &str,
        method: Method,
        communication: &str,
        timeline: Option<&Path>,
    ) -> fogkit::Result<(f64, f64, f64)> {
        let mut launch = Command::new(self.fogrun);
        launch.args(["-np", &self.a.ranks.to_string()]);
        if std::env::var("OMPI_ALLOW_RUN_AS_ROOT").is_ok_and(|v| v == "1") {
            // The user has let Open MPI run as root (containers); fogrun asks to be told too.
            launch.arg("--allow-run-as-root");
        }
        launch.env_remove("FOGKIT_TIMELINE");
        if let Some(prefix) = timeline {
            launch.env("FOGKIT_TIMELINE", prefix);
        }
        let (s, k) = (self.a.steps.to_string(), self.a.rounds.to_string());
        external(
            launch.arg(self.me).args([
                "--worker",
                "--models",
                model,
                "--method",
                method.name(),
                "--communication",
                communication,
                "--steps",
                &s,
                "--rounds",
                &k,
            ]),
            "fogkit under fogrun (build it: cargo build --release -p fogkit --bin fogrun)",
        )
    }
}

fn timeline_overhead(mpi: &Mpi, a: &Args) -> fogkit::Result<()> {
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
        let off = mpi.run(model, Method::DecentLam, "static", None)?;
        let on = mpi.run(model, Method::DecentLam, "static", Some(&prefix))?;
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
    Ok(())
}

fn ddp_table(mpi: &Mpi, data: &Split, a: &Args) -> fogkit::Result<()> {
    let ddp = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/ddp.py");
    let (r, s, k) = (
        a.ranks.to_string(),
        a.steps.to_string(),
        a.rounds.to_string(),
    );
    println!(
        "{} ranks, DecentLaM on a ring (fogkit) / DDP (PyTorch), batch 64 per rank, Fashion-MNIST; \
         samples/s over all ranks, mean (min-max) of {} rounds of {} steps\n",
        a.ranks, a.rounds, a.steps
    );
    println!("| model | fogkit local | fogkit MPI | PyTorch DDP | local / DDP | MPI / DDP |");
    println!("|---|---:|---:|---:|---:|---:|");
    for model in &a.models {
        let local = measure_model(model, data, a, Method::DecentLam, "static")?;
        let over_mpi = mpi.run(model, Method::DecentLam, "static", None)?;
        let torch = external(
            Command::new(&a.python).arg(&ddp).args([
                "--model", model, "--procs", &r, "--steps", &s, "--rounds", &k,
            ]),
            "PyTorch DDP (tests/bench/ddp.py; needs torch and numpy: see tests/bench/training.sh)",
        )?;
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} |",
            model_name(model),
            cell(local),
            cell(over_mpi),
            cell(torch),
            local.0 / torch.0,
            over_mpi.0 / torch.0
        );
    }
    Ok(())
}

fn overlap_table(mpi: &Mpi, a: &Args) -> fogkit::Result<()> {
    println!(
        "{} MPI ranks (fogrun), SGD with momentum 0.9 on a ring, batch 64 per rank, \
         Fashion-MNIST; samples/s over all ranks, mean (min-max) of {} rounds of {} steps\n",
        a.ranks, a.rounds, a.steps
    );
    println!("| model | communication | samples/s | / compute-only |");
    println!("|---|---|---:|---:|");
    let rows = [
        (
            "none (the compute-only limit)",
            Method::Atc(Base::Sgd),
            "none",
        ),
        ("ATC-SGD, blocking", Method::Atc(Base::Sgd), "static"),
        ("AWC-SGD, overlapped", Method::Awc(Base::Sgd), "static"),
    ];
    for model in &a.models {
        let mut limit = None;
        for (label, method, communication) in rows {
            let rate = mpi.run(model, method, communication, None)?;
            let base = *limit.get_or_insert(rate.0);
            println!(
                "| {} | {label} | {} | {:.3} |",
                model_name(model),
                cell(rate),
                rate.0 / base
            );
        }
    }
    Ok(())
}

fn main() {
    fogkit::timeline::init_logging();
    let a = match parse() {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    if let Err(e) = run(&a) {
        eprintln!("train_bench: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> fogkit::Result<()> {
    if a.worker {
        let data = fashion_mnist()?.standardized();
        let (m, lo, hi) = measure_model(&a.models[0], &data, a, a.method, &a.communication)?;
        if std::env::var("OMPI_COMM_WORLD_RANK").map_or(true, |r| r == "0") {
            println!("samples/s {m:.0} {lo:.0} {hi:.0}");
        }
        return Ok(());
    }
    let me = std::env::current_exe().map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let dir = me.parent().expect("an executable lives in a directory");
    let fogrun = dir.join("fogrun");
    let mpi = Mpi {
        me: &me,
        fogrun: &fogrun,
        a,
    };
    if a.timeline_overhead {
        return timeline_overhead(&mpi, a);
    }
    let data = fashion_mnist()?.standardized();
    if a.tables.iter().any(|t| t == "ddp") {
        ddp_table(&mpi, &data, a)?;
        println!();
    }
    if a.tables.iter().any(|t| t == "overlap") {
        overlap_table(&mpi, a)?;
    }
    Ok(())
}
