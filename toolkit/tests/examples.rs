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
