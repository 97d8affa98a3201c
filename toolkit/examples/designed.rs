//! The talk's claim as a designed experiment: is DecentLaM's advantage over DmSGD near 0
//! when the ranks' data are identically distributed, and larger at a large total batch
//! than at a small one when they are not? LeNet-5 on Fashion-MNIST (60,000 training and
//! 10,000 test images), 8 in-process ranks on a ring; method x partition (iid, or
//! Dirichlet(alpha) over labels) x total batch x seed, each seed its own partition,
//! initial weights and batch order. The predictions were written, and committed, before
//! the first run: `tutorials/src/results/designed/PREDICTIONS.md`.
//!
//! Every run uses the same hyper-parameters: momentum 0.9, weight decay 1e-4, step size
//! 0.02 at a total batch of 256 scaled with the square root of the batch (0.08 at 4096),
//! linear warm-up over the first 2 epochs and cosine decay to 0 at the last step.
//!
//! Run a part: `cargo run --release -p fogkit --example designed -- [--methods a,b]
//! [--partitions iid,dirichlet] [--batches 256,4096] [--seeds 0,1,2] [--topology
//! ring|lazy-ring] [--epochs E] [--alpha A] [--out DIR] [--ranks N] [--steps S]
//! [--test-images T]`: it writes `DIR/runs/<what it ran>.csv` (one row per epoch per
//! run). Then `-- --report` reads every CSV under `DIR/runs` and writes `DIR/designed.md`,
//! the tables and each prediction marked held or not held, and `DIR/gaps.csv`, the gap per
//! cell and seed. `--steps` and `--test-images` make a quick run that checks the program,
//! not the claim.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Command};
use fogkit::data::{fashion_mnist, partition_dirichlet, partition_iid};
use fogkit::nn::LeNet5;
use fogkit::optim::{Method, Optimizer, Schedule};
use fogkit::prelude::*;
use fogkit::train::{build, train, EpochReport, Training};

const HEADER: &str = "method,topology,partition,batch,seed,epoch,steps,lr,train_loss,\
                      test_accuracy,local_accuracy,consensus_distance,seconds,ranks";

fn command() -> Command {
    let methods: Vec<&'static str> = Method::all().iter().map(|m| m.name()).collect();
    let list = |name: &'static str, value: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .value_name(value)
            .value_delimiter(',')
            .help(help)
    };
    let num = |name: &'static str, help: &'static str| {
        Arg::new(name).long(name).value_name("N").help(help)
    };
    Command::new("designed")
        .about("DmSGD against DecentLaM: iid or heterogeneous shares, small or large total batch, several seeds")
        .arg(Arg::new("out").long("out").value_name("DIR").default_value("tutorials/src/results/designed").help("Where runs/ and the report go"))
        .arg(
            list("methods", "A,B", "Methods [default: DmSGD,DecentLaM]")
                .value_parser(PossibleValuesParser::new(methods))
                .ignore_case(true),
        )
        .arg(list("partitions", "P,Q", "Shares [default: iid,dirichlet]").value_parser(["iid", "dirichlet"]))
        .arg(list("batches", "B,C", "Total batches, each a multiple of the ranks [default: 256,4096]"))
        .arg(list("seeds", "S,T", "Seeds [default: 0,1,2]"))
        .arg(Arg::new("topology").long("topology").value_parser(["ring", "lazy-ring"]).default_value("ring").help("W: the ring, or its lazy form (I + W) / 2"))
        .arg(num("epochs", "Epochs per run [default: 15]"))
        .arg(Arg::new("alpha").long("alpha").value_name("A").help("Dirichlet concentration [default: 0.1]"))
        .arg(num("ranks", "In-process ranks [default: 8, or FOGKIT_RANKS]"))
        .arg(num("steps", "Steps per epoch, for a quick check [default: one pass]"))
        .arg(num("test-images", "Evaluate on the first N test images [default: all]"))
        .arg(Arg::new("report").long("report").action(ArgAction::SetTrue).help("Read DIR/runs/*.csv and write DIR/designed.md and DIR/gaps.csv"))
}

/// A whole number given for `id`, or an error in clap's words (exit code 2).
fn number<T: std::str::FromStr>(id: &str, v: &str, what: &str) -> T {
    v.parse().unwrap_or_else(|_| {
        command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value {v:?} for --{id}: expected {what}"),
            )
            .exit()
    })
}

fn one<T: std::str::FromStr>(m: &ArgMatches, id: &str, what: &str) -> Option<T> {
    m.get_one::<String>(id).map(|v| number(id, v, what))
}

fn many<T: std::str::FromStr>(m: &ArgMatches, id: &str, what: &str) -> Option<Vec<T>> {
    m.get_many::<String>(id)
        .map(|vs| vs.map(|v| number(id, v, what)).collect())
}

/// Bad input exits with code 2 and its message in plain words; a failure while training
/// with 1.
fn main() {
    fogkit::timeline::init_logging();
    let m = command().try_get_matches().unwrap_or_else(|e| e.exit());
    let out = PathBuf::from(m.get_one::<String>("out").cloned().unwrap_or_default());
    let done = if m.get_flag("report") {
        report(&out)
    } else {
        run(&m, &out)
    };
    if let Err(e) = done {
        eprintln!("error: {e}");
        let bad_input = matches!(
            e,
            Error::InvalidArgument(_) | Error::Topology(_) | Error::Data(_)
        );
        std::process::exit(if bad_input { 2 } else { 1 });
    }
}

/// The step size at a total batch: 0.02 at 256, scaled with the square root of the batch.
fn lr_for(total_batch: usize) -> f64 {
    0.02 * (total_batch as f64 / 256.0).sqrt()
}

fn run(m: &ArgMatches, out: &Path) -> fogkit::Result<()> {
    let methods: Vec<Method> = match m.get_many::<String>("methods") {
        Some(names) => names
            .map(|n| Method::parse(n))
            .collect::<fogkit::Result<_>>()?,
        None => vec![Method::DmSgd, Method::DecentLam],
    };
    let partitions: Vec<String> = m
        .get_many::<String>("partitions")
        .map(|v| v.cloned().collect())
        .unwrap_or_else(|| vec!["iid".into(), "dirichlet".into()]);
    let batches: Vec<usize> = many(m, "batches", "whole numbers").unwrap_or(vec![256, 4096]);
    let seeds: Vec<u64> = many(m, "seeds", "whole numbers").unwrap_or(vec![0, 1, 2]);
    let lazy = m.get_one::<String>("topology").map(String::as_str) == Some("lazy-ring");
    let epochs: usize = one(m, "epochs", "a whole number").unwrap_or(15);
    let alpha: f64 = one(m, "alpha", "a number").unwrap_or(0.1);
    let ranks: usize =
        one(m, "ranks", "a whole number").unwrap_or_else(|| fogkit::launch::ranks_or(8));
    let steps: Option<usize> = one(m, "steps", "a whole number");
    let test_images: Option<usize> = one(m, "test-images", "a whole number");
    if epochs == 0 || ranks < 2 || steps == Some(0) || test_images == Some(0) {
        return Err(Error::InvalidArgument(format!(
            "expected at least one epoch, step and test image and two ranks, found --epochs \
             {epochs} --ranks {ranks} --steps {steps:?} --test-images {test_images:?}"
        )));
    }
    if let Some(b) = batches.iter().find(|&&b| b == 0 || b % ranks != 0) {
        return Err(Error::InvalidArgument(format!(
            "expected each total batch to be a positive multiple of the {ranks} ranks, found {b}"
        )));
    }
    let mut data = fashion_mnist()?.standardized();
    if let Some(t) = test_images {
        let first: Vec<usize> = (0..t.min(data.test.len())).collect();
        data.test = data.test.subset(&first);
    }
    let topology_name = if lazy { "lazy ring" } else { "ring" };
    let mut csv = format!("{HEADER}\n");
    for partition in &partitions {
        for &seed in &seeds {
            // Each seed its own partition.
            let shares = match partition.as_str() {
                "iid" => partition_iid(data.train.len(), ranks, 100 + seed),
                _ => partition_dirichlet(&data.train.labels, ranks, alpha, 100 + seed)?,
            };
            let label = match partition.as_str() {
                "iid" => "iid".to_string(),
                _ => format!("Dirichlet({alpha})"),
            };
            let sizes: Vec<usize> = shares.iter().map(Vec::len).collect();
            eprintln!("{label}, seed {seed}: shares of {sizes:?} images");
            for &total in &batches {
                for &method in &methods {
                    let started = std::time::Instant::now();
                    let log = fogkit::run(ranks, |bf: &Fog| -> fogkit::Result<Vec<EpochReport>> {
                        let ring = topology::ring(ranks);
                        bf.set_topology(if lazy { ring.lazy() } else { ring })?;
                        let share = data.train.subset(&shares[bf.rank()]);
                        let mut model: LeNet5 = build(bf, 7 + seed)?;
                        let per_epoch = steps.unwrap_or(data.train.len() / total).max(1);
                        let mut opt = Optimizer::new(method)
                            .lr(lr_for(total))
                            .momentum(0.9)
                            .weight_decay(1e-4)
                            .warmup(2 * per_epoch)
                            .schedule(Schedule::Cosine {
                                total: epochs * per_epoch,
                            });
                        let cfg = Training {
                            epochs,
                            batch: total / ranks,
                            seed: 3 + 1000 * seed,
                            steps_per_epoch: Some(per_epoch),
                        };
                        train(bf, &mut model, &mut opt, &share, &data.test, &cfg, |_| {})
                    });
                    let log = match log {
                        Ok(logs) => logs
                            .into_here()
                            .into_iter()
                            .next()
                            .map(|(_, log)| log)
                            .unwrap_or_default(),
                        // A run that diverges is a result too: no rows, and the report says so.
                        Err(e @ Error::Diverged { .. }) => {
                            eprintln!("{label}, batch {total}: {} {e}", method.name());
                            Vec::new()
                        }
                        Err(e) => return Err(e),
                    };
                    let seconds = started.elapsed().as_secs_f64();
                    // PmSGD averages over all ranks whatever the topology.
                    let w = if method == Method::PmSgd {
                        "global"
                    } else {
                        topology_name
                    };
                    for r in &log {
                        writeln!(
                            csv,
                            "{},{w},{label},{total},{seed},{},{},{},{},{},{},{},{seconds:.1},{ranks}",
                            method.name(),
                            r.epoch,
                            r.steps,
                            lr_for(total),
                            r.train_loss,
                            r.test_accuracy,
                            r.local_accuracy,
                            r.consensus_distance
                        )
                        .ok();
                    }
                    let last = log.last().map_or(f64::NAN, |r| r.test_accuracy);
                    eprintln!(
                        "{label}, batch {total}, seed {seed}: {} over {w} -> {:.2}% ({seconds:.0} s)",
                        method.name(),
                        100.0 * last
                    );
                }
            }
        }
    }
    let dir = out.join("runs");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Data(format!("cannot create {}: {e}", dir.display())))?;
    let names: Vec<&str> = methods.iter().map(|m| m.name()).collect();
    let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let batches: Vec<String> = batches.iter().map(usize::to_string).collect();
    let name = format!(
        "{}_{}_{}_{}_seeds{}.csv",
        names.join("+"),
        topology_name.replace(' ', "-"),
        partitions.join("+"),
        batches.join("+"),
        seeds.join("+")
    );
    let path = dir.join(name);
    std::fs::write(&path, csv)
        .map_err(|e| Error::Data(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// One run's last epoch, and how much it gained over its last 3 epochs.
#[derive(Clone, Copy, Debug)]
struct Last {
    accuracy: f64,
    consensus: f64,
    late_gain: f64,
}

/// (method, topology, partition, batch): one cell of the design.
type Cell = (String, String, String, usize);

/// Cell -> seed -> the run's last epoch.
type Cells = BTreeMap<Cell, BTreeMap<u64, Last>>;

/// (epoch, test accuracy, consensus distance) of one run, epoch by epoch.
type Curve = Vec<(usize, f64, f64)>;

/// Every run under `dir/runs` (a later file's run of the same cell and seed wins), with
/// the ranks they ran on and the most epochs any ran.
fn read_runs(dir: &Path) -> fogkit::Result<(Cells, usize, usize)> {
    let runs = dir.join("runs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&runs)
        .map_err(|e| Error::Data(format!("cannot read {}: {e}", runs.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Data(format!(
            "expected run files (*.csv) in {}, found none: run the experiment first",
            runs.display()
        )));
    }
    // (ranks, epoch) of every row: the report names the ranks and the epochs.
    let mut setup = std::collections::BTreeSet::new();
    let mut curves: BTreeMap<(Cell, u64), Curve> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::Data(format!("cannot read {}: {e}", f.display())))?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(Error::Data(format!(
                "{}: expected the header {HEADER:?}",
                f.display()
            )));
        }
        let mut fresh = BTreeMap::new();
        for (i, line) in lines.enumerate() {
            let c: Vec<&str> = line.split(',').collect();
            let bad = || {
                Error::Data(format!(
                    "{} line {}: cannot read {line:?}",
                    f.display(),
                    i + 2
                ))
            };
            if c.len() != 14 {
                return Err(bad());
            }
            let batch = c[3].parse().map_err(|_| bad())?;
            let seed = c[4].parse().map_err(|_| bad())?;
            let epoch = c[5].parse().map_err(|_| bad())?;
            let acc = c[9].parse().map_err(|_| bad())?;
            let cd = c[11].parse().map_err(|_| bad())?;
            let n: usize = c[13].parse().map_err(|_| bad())?;
            setup.insert((n, epoch));
            fresh
                .entry(((c[0].into(), c[1].into(), c[2].into(), batch), seed))
                .or_insert_with(Vec::new)
                .push((epoch, acc, cd));
        }
        curves.extend(fresh);
    }
    let mut cells = Cells::new();
    for ((cell, seed), mut curve) in curves {
        // What the files hold must be what a run can give.
        for &(epoch, acc, cd) in &curve {
            assert!(
                (0.0..=1.0).contains(&acc) && cd >= 0.0 && epoch >= 1,
                "{cell:?} seed {seed}: epoch {epoch}, accuracy {acc}, consensus distance {cd}"
            );
        }
        curve.sort_by_key(|e| e.0);
        let Some(&(_, accuracy, consensus)) = curve.last() else {
            continue;
        };
        let before = curve[curve.len().saturating_sub(4)].1;
        cells.entry(cell).or_default().insert(
            seed,
            Last {
                accuracy,
                consensus,
                late_gain: accuracy - before,
            },
        );
    }
    let ranks: Vec<usize> = setup
        .iter()
        .map(|s| s.0)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let epochs = setup.iter().map(|s| s.1).max().unwrap_or(0);
    if ranks.len() != 1 {
        return Err(Error::Data(format!(
            "expected every run on one number of ranks, found {ranks:?}"
        )));
    }
    Ok((cells, ranks[0], epochs))
}

/// Mean, min and max.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &a| {
            (l.min(a), h.max(a))
        });
    (mean, lo, hi)
}

/// At or below this test accuracy a run of 10 classes has learnt nothing.
const CHANCE: f64 = 0.11;

/// `mean (min to max)` in points, and how many runs ended at chance level.
fn cell(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let (m, lo, hi) = stats(v);
    let stalled = v.iter().filter(|&&a| a <= CHANCE).count();
    let note = match stalled {
        0 => String::new(),
        s => format!(", {s} of {} at chance", v.len()),
    };
    format!(
        "{:.2} ({:.2} to {:.2}{note})",
        100.0 * m,
        100.0 * lo,
        100.0 * hi
    )
}

/// `mean (min to max)` of gaps, in points.
fn gap_cell(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let (m, lo, hi) = stats(v);
    format!(
        "{:+.2} ({:+.2} to {:+.2})",
        100.0 * m,
        100.0 * lo,
        100.0 * hi
    )
}

fn held(ok: bool) -> &'static str {
    if ok {
        "**held**"
    } else {
        "**not held**"
    }
}

fn report(dir: &Path) -> fogkit::Result<()> {
    let (cells, ranks, epochs) = read_runs(dir)?;
    let get = |m: &str, t: &str, p: &str, b: usize| cells.get(&(m.into(), t.into(), p.into(), b));
    let accs = |m: &str, t: &str, p: &str, b: usize| -> Vec<f64> {
        get(m, t, p, b).map_or(Vec::new(), |s| s.values().map(|l| l.accuracy).collect())
    };
    // DecentLaM minus DmSGD seed by seed, on the seeds both ran.
    let gaps = |t: &str, p: &str, b: usize| -> Vec<(u64, f64)> {
        match (get("DecentLaM", t, p, b), get("DmSGD", t, p, b)) {
            (Some(a), Some(c)) => a
                .iter()
                .filter_map(|(s, x)| c.get(s).map(|y| (*s, x.accuracy - y.accuracy)))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut partitions: Vec<String> = cells.keys().map(|k| k.2.clone()).collect();
    partitions.sort();
    partitions.dedup();
    let mut batches: Vec<usize> = cells.keys().map(|k| k.3).collect();
    batches.sort_unstable();
    batches.dedup();
    let mut md = format!(
        "LeNet-5 on Fashion-MNIST, {ranks} ranks, {epochs} epochs, momentum 0.9, weight decay 1e-4, \
         step size 0.02 x sqrt(batch / 256), 2 warm-up epochs, cosine decay to 0. Test \
         accuracy (%) of the ranks' average model after the last epoch: mean (min to max) \
         over the seeds; the gap is DecentLaM minus DmSGD on the same seed.\n\n\
         | shares | total batch | PmSGD | DmSGD | DecentLaM | gap (points) | consensus distance DmSGD / DecentLaM |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut gaps_csv = String::from("partition,batch,seed,gap\n");
    for p in &partitions {
        for &b in &batches {
            let g = gaps("ring", p, b);
            for (s, v) in &g {
                writeln!(gaps_csv, "{p},{b},{s},{v}").ok();
            }
            let cd = |m: &str| {
                get(m, "ring", p, b).map_or(f64::NAN, |s| {
                    stats(&s.values().map(|l| l.consensus).collect::<Vec<_>>()).0
                })
            };
            writeln!(
                md,
                "| {p} | {b} | {} | {} | {} | {} | {:.2e} / {:.2e} |",
                cell(&accs("PmSGD", "global", p, b)),
                cell(&accs("DmSGD", "ring", p, b)),
                cell(&accs("DecentLaM", "ring", p, b)),
                gap_cell(&g.iter().map(|x| x.1).collect::<Vec<_>>()),
                cd("DmSGD"),
                cd("DecentLaM"),
            )
            .ok();
        }
    }
    // The arms: the heterogeneous shares at the largest batch.
    let dir_p = partitions
        .iter()
        .find(|p| p.starts_with("Dirichlet"))
        .cloned();
    let big = batches.last().copied().unwrap_or(0);
    let small = batches.first().copied().unwrap_or(0);
    if let Some(p) = &dir_p {
        writeln!(
            md,
            "\nThe arms, {p} shares at total batch {big}:\n\n| method | W | test accuracy (%) | consensus distance |\n|---|---|---|---|"
        )
        .ok();
        for (m, t) in [
            ("DmSGD", "ring"),
            ("DecentLaM", "ring"),
            ("DecentLaM", "lazy ring"),
            ("D2-DmSGD", "lazy ring"),
        ] {
            if let Some(s) = get(m, t, p, big) {
                let cds: Vec<f64> = s.values().map(|l| l.consensus).collect();
                writeln!(
                    md,
                    "| {m} | {t} | {} | {:.2e} |",
                    cell(&accs(m, t, p, big)),
                    stats(&cds).0
                )
                .ok();
            }
        }
    }
    // Each prediction, tested on what ran.
    md.push_str("\nThe predictions (`PREDICTIONS.md`, committed before the runs):\n\n");
    let mean = |v: &[f64]| stats(v).0;
    let gap_mean = |p: &str, b: usize| {
        let g: Vec<f64> = gaps("ring", p, b).iter().map(|x| x.1).collect();
        (!g.is_empty()).then(|| mean(&g))
    };
    let iid: Vec<Option<f64>> = batches.iter().map(|&b| gap_mean("iid", b)).collect();
    if iid.iter().all(Option::is_some) && !iid.is_empty() {
        let v: Vec<f64> = iid.iter().flatten().copied().collect();
        writeln!(
            md,
            "- P1, the gap near 0 under iid shares (mean within 0.5 points at every batch): \
             {} ({}).",
            held(v.iter().all(|g| g.abs() <= 0.005)),
            v.iter()
                .zip(&batches)
                .map(|(g, b)| format!("{:+.2} at {b}", 100.0 * g))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .ok();
    }
    if let Some(p) = &dir_p {
        if let (Some(lo), Some(hi), true) = (gap_mean(p, small), gap_mean(p, big), small < big) {
            writeln!(
                md,
                "- P2, under {p} the gap larger at {big} than at {small}: {} ({:+.2} against {:+.2} points).",
                held(hi > lo),
                100.0 * hi,
                100.0 * lo
            )
            .ok();
        }
        if let (Some(a), Some(c)) = (
            get("DecentLaM", "ring", p, big),
            get("DmSGD", "ring", p, big),
        ) {
            let pairs: Vec<(f64, f64)> = a
                .iter()
                .filter_map(|(s, x)| c.get(s).map(|y| (x.consensus, y.consensus)))
                .collect();
            writeln!(
                md,
                "- P3, under {p} at {big} DecentLaM's consensus distance below DmSGD's on every seed: {} ({}).",
                held(!pairs.is_empty() && pairs.iter().all(|(x, y)| x < y)),
                pairs
                    .iter()
                    .map(|(x, y)| format!("{x:.2e} against {y:.2e}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
            .ok();
        }
        let arm = |m: &str, t: &str| {
            let v = accs(m, t, p, big);
            (!v.is_empty()).then(|| mean(&v))
        };
        if let (Some(dl), Some(d2)) = (arm("DecentLaM", "ring"), arm("D2-DmSGD", "lazy ring")) {
            writeln!(
                md,
                "- P4, DecentLaM (ring) above D2-DmSGD (lazy ring) on mean: {} ({:.2} against {:.2}).",
                held(dl > d2),
                100.0 * dl,
                100.0 * d2
            )
            .ok();
        }
        if let (Some(ring), Some(lazy)) = (arm("DecentLaM", "ring"), arm("DecentLaM", "lazy ring"))
        {
            writeln!(
                md,
                "- P5, DecentLaM on the lazy ring below DecentLaM on the ring on mean: {} ({:.2} against {:.2}).",
                held(lazy < ring),
                100.0 * lazy,
                100.0 * ring
            )
            .ok();
        }
    }
    let late = cells
        .values()
        .flat_map(|s| s.values().map(|l| l.late_gain))
        .fold(f64::NEG_INFINITY, f64::max);
    let runs: usize = cells.values().map(BTreeMap::len).sum();
    writeln!(
        md,
        "\n{runs} runs. The most any run gained over its last 3 epochs: {:.2} points.",
        100.0 * late
    )
    .ok();
    println!("{md}");
    for (name, text) in [("designed.md", &md), ("gaps.csv", &gaps_csv)] {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::Data(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}
