//! Every example runs to completion (each asserts its own results, as rsmpi's do), and
//! the main job prints the consensus error falling.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} not built at {path:?}: run through `cargo test`"
    );
    path
}

/// Runs an example to completion (it asserts its own results) and returns its stdout.
fn run_example(name: &str) -> String {
    let out = Command::new(example(name))
        .env("FOGKIT_TIMEOUT", "60")
        .output()
        .expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn main_job_prints_falling_consensus_error() {
    let stdout = run_example("consensus_dsgd");
    // The consensus table: iteration, error, bound; errors fall and end below 1e-12.
    let errs: Vec<f64> = stdout
        .lines()
        .skip_while(|l| !l.contains("max|x_i - avg|"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .expect("number")
        })
        .collect();
    assert!(errs.len() >= 5, "{stdout}");
    assert!(
        errs.windows(2).all(|w| w[1] < w[0]),
        "not falling: {errs:?}"
    );
    assert!(*errs.last().unwrap() < 1e-12);
    assert!(stdout.contains("DSGD stalls at a distance"), "{stdout}");
}

#[test]
fn push_sum_reaches_the_average_and_push_diging_the_optimum() {
    let stdout = run_example("push_sum");
    // The number after `label`, on the line that holds it.
    let value = |label: &str| -> f64 {
        let line = stdout.lines().find(|l| l.contains(label)).expect(label);
        let rest = &line[line.find(label).expect(label) + label.len()..];
        rest.split_whitespace()
            .find_map(|w| w.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no number after {label}: {line}"))
    };
    assert!(value("but are") > 1e-2, "{stdout}");
    assert!(value("push-sum (x / w):") < 1e-12, "{stdout}");
    assert!(value("subgradient-push:") > 1e-3, "{stdout}");
    assert!(value("push-DIGing:") < 1e-10, "{stdout}");
}

#[test]
fn master_worker_folds_in_every_update_and_reaches_x_star() {
    let stdout = run_example("master_worker");
    // "updates folded in: A of B": the master counted every worker step.
    let line = stdout
        .lines()
        .find(|l| l.contains("updates folded in:"))
        .expect("counts");
    let counts: Vec<f64> = line[line.find("in:").unwrap() + 3..]
        .split(" of ")
        .map(|v| v.trim().parse().expect("count"))
        .collect();
    assert_eq!(counts.len(), 2, "{line}");
    assert!(counts[0] > 100.0 && counts[0] == counts[1], "{line}");
    let after = |label: &str| -> f64 {
        let line = stdout.lines().find(|l| l.contains(label)).expect(label);
        let rest = &line[line.find(label).unwrap() + label.len()..];
        rest.split(|c: char| c == ',' || c.is_whitespace())
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no number after {label}: {line}"))
    };
    assert!(after("steps per worker):") < 1e-8, "{stdout}");
    assert!(after("each; |x - x*|:") < 1e-6, "{stdout}");
    let (code, _, err) = run_with_env("master_worker", &[("FOGKIT_RANKS", "1")]);
    assert_ne!(code, 0);
    assert!(
        err.contains("needs at least 2 ranks (a master and a worker), found 1"),
        "{err}"
    );
}

/// Runs an example with extra environment; returns its exit code, stdout and stderr.
fn run_with_env(name: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(example(name))
        .envs(env.iter().copied())
        .env("FOGKIT_TIMEOUT", "60")
        .output()
        .expect("run example");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs an example with arguments; returns its exit code, stdout and stderr.
fn run_with_args(name: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(example(name))
        .args(args)
        .env("FOGKIT_TIMEOUT", "60")
        .output()
        .expect("run example");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn train_and_table_list_every_option_and_refuse_bad_input_with_code_2() {
    let (code, help, _) = run_with_args("train", &["--help"]);
    assert_eq!(code, 0, "{help}");
    for want in [
        "--model",
        "--method",
        "--communication",
        "--every",
        "--nesterov",
        "--data",
        "--ranks",
        "--epochs",
        "--batch",
        "--steps",
        "--lr",
        "--momentum",
        "--weight-decay",
        "--topology",
        "--partition",
        "--seed",
        "--metrics",
        "AWC-Adam",
        "one-peer-hypercube",
        "resnet20",
    ] {
        assert!(help.contains(want), "train --help lacks {want}:\n{help}");
    }
    let (code, help, _) = run_with_args("table", &["--help"]);
    assert_eq!(code, 0, "{help}");
    for want in [
        "--out",
        "--epochs",
        "--methods",
        "--batches",
        "--seeds",
        "--test-images",
    ] {
        assert!(help.contains(want), "table --help lacks {want}:\n{help}");
    }
    // Bad input: exit code 2, a message in words (not a Debug dump).
    for (name, args, says) in [
        ("train", &["--method", "adam"][..], "invalid value 'adam'"),
        ("train", &["--epochs", "x"][..], "expected a number"),
        (
            "train",
            &["--lr", "-1", "--steps", "1"][..],
            "found lr = -1",
        ),
        (
            "train",
            &[
                "--method",
                "DecentLaM",
                "--communication",
                "one-peer-exp2",
                "--steps",
                "1",
            ][..],
            "needs a symmetric W",
        ),
        ("train", &["--colour"][..], "unexpected argument '--colour'"),
        ("table", &["--batches", "huge"][..], "invalid value 'huge'"),
        (
            "table",
            &["--epochs", "0"][..],
            "expected at least one epoch",
        ),
    ] {
        let (code, _, err) = run_with_args(name, args);
        assert_eq!(code, 2, "{name} {args:?}: {err}");
        assert!(err.contains(says), "{name} {args:?}: {err}");
        assert!(!err.contains("InvalidArgument("), "{name} {args:?}: {err}");
    }
    // A boolean flag takes no value.
    let (code, out, err) = run_with_args(
        "train",
        &[
            "--method",
            "DmSGD",
            "--nesterov",
            "--steps",
            "2",
            "--batch",
            "8",
            "--ranks",
            "2",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("epoch 1:"), "{out}");
}

#[test]
fn designed_runs_a_cell_and_reports_each_prediction() {
    let (code, help, _) = run_with_args("designed", &["--help"]);
    assert_eq!(code, 0, "{help}");
    for want in [
        "--methods",
        "--partitions",
        "--batches",
        "--seeds",
        "--topology",
        "--report",
    ] {
        assert!(help.contains(want), "designed --help lacks {want}:\n{help}");
    }
    let out = std::env::temp_dir().join(format!("fogkit-designed-{}", std::process::id()));
    let dir = out.to_str().expect("temp dir");
    for (args, says) in [
        (
            &["--batches", "100"][..],
            "positive multiple of the 8 ranks, found 100",
        ),
        (&["--seeds", "one"][..], "invalid value \"one\" for --seeds"),
        (&["--report", "--out", dir][..], "cannot read"),
    ] {
        let (code, _, err) = run_with_args("designed", args);
        assert_eq!(code, 2, "designed {args:?}: {err}");
        assert!(err.contains(says), "designed {args:?}: {err}");
    }
    // A quick run of both methods on both partitions, then the report: a row per cell and
    // the two predictions that this much data can test, marked one way or the other.
    let quick = [
        "--out",
        dir,
        "--ranks",
        "2",
        "--batches",
        "16",
        "--seeds",
        "0",
        "--epochs",
        "2",
        "--steps",
        "2",
        "--test-images",
        "64",
    ];
    let (code, _, err) = run_with_args("designed", &quick);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Dirichlet(0.1), batch 16, seed 0: DecentLaM over ring"),
        "{err}"
    );
    let (code, report, err) = run_with_args("designed", &["--report", "--out", dir]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "| iid | 16 |",
        "| Dirichlet(0.1) | 16 |",
        "- P1",
        "- P3",
        "4 runs.",
    ] {
        assert!(report.contains(want), "report lacks {want}:\n{report}");
    }
    let written = std::fs::read_to_string(out.join("designed.md")).expect("designed.md");
    assert_eq!(written.trim(), report.trim());
    let gaps = std::fs::read_to_string(out.join("gaps.csv")).expect("gaps.csv");
    assert_eq!(gaps.lines().count(), 3, "{gaps}"); // header, iid, Dirichlet
    std::fs::remove_dir_all(&out).ok();
}
