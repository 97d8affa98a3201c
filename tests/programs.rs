//! Programs run as a user runs them (a separate process), compared bit for bit with the
//! same scenario run in this process.

use std::process::Command;
use std::time::{Duration, Instant};

use fogkit_tests::scenario_line;

const BIN: &str = env!("CARGO_BIN_EXE_fogkit-collectives");

fn run_program(args: &[&str]) -> (i32, String, String) {
    let start = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .env("FOGKIT_TIMEOUT", "20")
        .output()
        .expect("start program");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "program took too long"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_separate_process_gives_the_same_bits() {
    for n in [1usize, 2, 3, 4, 5, 8] {
        let (code, stdout, stderr) = run_program(&[&n.to_string()]);
        assert_eq!(code, 0, "n={n}: {stderr}");
        let expected = fogkit::run(n, scenario_line).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines, expected, "n={n}");
    }
}

#[test]
fn a_panicking_rank_ends_the_program_with_its_message() {
    let start = Instant::now();
    let (code, _, stderr) = run_program(&["4", "--panic-rank", "2"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("rank 2 panicked: rank 2 was told to panic"),
        "{stderr}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn bad_arguments_say_what_was_expected() {
    let (code, _, stderr) = run_program(&["many"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("expected a rank count N"), "{stderr}");
}
