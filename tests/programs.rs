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
        let expected = fogkit::run(n, scenario_line).unwrap().into_vec().unwrap();
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

/// The README's "Ten lines" block, and the same lines in `programs/readme.rs`.
fn readme_example() -> (String, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = readme
        .split("## Ten lines")
        .nth(1)
        .expect("a \"Ten lines\" section");
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a rust block");
    let program = std::fs::read_to_string(root.join("tests/programs/readme.rs")).expect("program");
    let body = program
        .split("// README begin\n")
        .nth(1)
        .and_then(|b| b.split("    // README end").next())
        .expect("README markers");
    let dedented: String = body
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    (block.to_string(), dedented)
}

#[test]
fn the_readme_example_is_the_program_and_prints_every_rank() {
    let (block, program) = readme_example();
    assert_eq!(
        block, program,
        "README's Ten lines differ from programs/readme.rs"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fogkit-readme"))
        .env("FOGKIT_TIMEOUT", "20")
        .output()
        .expect("start the README program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{stdout}");
    for (r, l) in lines.iter().enumerate() {
        let x: f64 = l
            .strip_prefix(&format!("rank {r}: x = "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("line {r}: {l}"));
        assert!((x - 3.5).abs() < 0.5, "{l}");
    }
}
