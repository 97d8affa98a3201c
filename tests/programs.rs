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

/// The repository's root and its README.
fn readme() -> (std::path::PathBuf, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository");
    let text = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    (root, text)
}

/// The README's "Ten lines" block, and the same lines in `programs/readme.rs`.
fn readme_example() -> (String, String) {
    let (root, readme) = readme();
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

/// The README quotes the experiments' results files as they were written, so a rerun that
/// changes a file cannot leave an old number in the README.
#[test]
fn the_readme_quotes_the_results_files_as_written() {
    let (root, readme) = readme();
    let results = root.join("tutorials/src/results");
    for file in [
        "bias_table.md",
        "bias_by_topology.md",
        "fashion_mnist_table.md",
        "large_batch_seeds/fashion_mnist_table.md",
        "designed/designed.md",
        "lazy_ring/fashion_mnist_table.md",
        "lazy_ring/large_batch_seeds/fashion_mnist_table.md",
    ] {
        let text = std::fs::read_to_string(results.join(file)).expect("a results file");
        assert!(
            readme.contains(text.trim()),
            "README.md does not quote tutorials/src/results/{file} as written"
        );
    }
    // The batch sweep's beta 0.9 table, quoted row by row (the file has three tables).
    let sweep = std::fs::read_to_string(results.join("batch_sweep.md")).expect("batch_sweep.md");
    let quoted: Vec<&str> = readme
        .split("`cargo run --release -p fogkit --example batch_sweep` runs the same problem")
        .nth(1)
        .expect("the README's batch sweep paragraph")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        quoted.len() >= 5,
        "the README's batch sweep table: {quoted:?}"
    );
    for row in quoted {
        assert!(
            sweep.lines().any(|l| l == row),
            "README.md's batch sweep row {row:?} is not in batch_sweep.md"
        );
    }
    // The figure of the designed experiment, written by chapter 7's notebook.
    assert!(readme.contains("tutorials/src/figures/ch07_designed.png"));
    assert!(root
        .join("tutorials/src/figures/ch07_designed.png")
        .is_file());
}

/// The README's "Use fogkit in your own crate" lines, as a crate of its own: its
/// `Cargo.toml` (a path in place of the git URL) and `src/main.rs` build and run.
#[test]
fn a_crate_of_ones_own_builds_with_the_readmes_lines() {
    let (root, readme) = readme();
    let section = readme
        .split("## Use fogkit in your own crate")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a \"Use fogkit in your own crate\" section");
    let block = |fence: &str| {
        section
            .split(fence)
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap_or_else(|| panic!("a {fence} block in the section"))
            .to_string()
    };
    let git = "fogkit = { git = \"https://github.com/fogkit/fogkit\" }";
    let toml = block("```toml\n");
    assert!(
        toml.contains(git),
        "the section's dependency line changed:\n{toml}"
    );
    let path = format!("fogkit = {{ path = {:?} }}", root.join("toolkit"));
    // The workspace's other profile lines too (not the README's business), so the shared
    // target directory's builds of dfdx, gemm and fogkit are reused, not rebuilt.
    let manifest = format!(
        "[package]\nname = \"uses-fogkit\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [workspace]\n\n{}\n[profile.dev.package.\"*\"]\ndebug = false\n\
         [profile.dev.package.fogkit]\nopt-level = 2\n",
        toml.replace(git, &path)
    );
    let dir = tempfile::tempdir().expect("a scratch directory");
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), block("```rust\n")).unwrap();
    // The workspace's versions, so the shared target directory already holds them (a
    // user's own resolve of the git dependency may pick newer ones; this checks the lines,
    // not crates.io's state on the day).
    std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--quiet"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", target)
        .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("start cargo");
    // A cold build of fogkit's dependencies takes minutes here; a hang must not last.
    let deadline = Instant::now() + Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the crate did not build and run within 900 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let (stdout, stderr) = (read("stdout"), read("stderr"));
    assert!(status.success(), "the crate failed:\n{stderr}");
    for rank in 0..4 {
        let line = format!("rank {rank}: 1.500000");
        assert!(
            stdout.contains(&line),
            "expected {line:?}, found:\n{stdout}"
        );
    }
}

/// Every relative link in the README names a file or directory of the repository.
#[test]
fn every_link_in_the_readme_resolves() {
    let (root, readme) = readme();
    let mut broken = Vec::new();
    for (at, _) in readme.match_indices("](") {
        let rest = &readme[at + 2..];
        let target = &rest[..rest.find(')').unwrap_or(rest.len())];
        let file = target.split('#').next().unwrap_or_default();
        if target.starts_with("http") || file.is_empty() {
            continue;
        }
        if !root.join(file).exists() {
            broken.push(target.to_string());
        }
    }
    assert!(
        broken.is_empty(),
        "README.md links to what does not exist: {broken:?}"
    );
    assert!(
        !readme.contains("DESIGN.md"),
        "README.md names a DESIGN.md the repository lacks"
    );
}

/// Each output feature pulls only its own crate: a progress bar costs no polars build, a
/// figure no polars, a frame no plotly (read from `cargo tree`, the lock file's view).
#[test]
fn each_output_feature_pulls_only_what_it_needs() {
    let (root, _) = readme();
    let tree = |feature: &str| {
        let o = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--locked",
                "--offline",
                "-p",
                "fogkit",
                "-e",
                "normal",
            ])
            .args([
                "--prefix",
                "none",
                "--format",
                "{p}",
                "--no-default-features",
            ])
            .args(["--features", feature])
            .current_dir(&root)
            .output()
            .expect("cargo tree starts");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "cargo tree --features {feature} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect::<std::collections::BTreeSet<String>>()
    };
    let expect = [
        ("frames", "polars", ["plotly", "indicatif"]),
        ("figures", "plotly", ["polars", "indicatif"]),
        ("progress", "indicatif", ["polars", "plotly"]),
    ];
    for (feature, wanted, unwanted) in expect {
        let crates = tree(feature);
        assert!(
            crates.contains(wanted),
            "--features {feature} should pull {wanted}; it pulls {} crates without it",
            crates.len()
        );
        for u in unwanted {
            assert!(
                !crates.contains(u),
                "--features {feature} pulls {u}, which it does not need"
            );
        }
    }
    let all = tree("metrics");
    for c in ["polars", "plotly", "indicatif"] {
        assert!(all.contains(c), "--features metrics should pull {c}");
    }
}

/// The CHANGELOG has an entry, dated, for the version the workspace declares.
#[test]
fn the_changelog_dates_the_declared_version() {
    let (root, _) = readme();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("a version line in the workspace's Cargo.toml");
    let log = std::fs::read_to_string(root.join("toolkit/CHANGELOG.md")).unwrap();
    let heading = format!("## {version} (");
    let entry = log
        .lines()
        .find(|l| l.starts_with(&heading))
        .unwrap_or_else(|| panic!("toolkit/CHANGELOG.md has no entry {heading:?}...)"));
    let date: Vec<&str> = entry[heading.len()..]
        .get(..10)
        .unwrap_or_default()
        .split('-')
        .collect();
    let number = |i: usize, digits: usize| {
        date.get(i)
            .filter(|d| d.len() == digits)
            .and_then(|d| d.parse::<u32>().ok())
    };
    let ok = matches!(
        (number(0, 4), number(1, 2), number(2, 2)),
        (Some(y), Some(m), Some(d)) if y >= 2024 && (1..=12).contains(&m) && (1..=31).contains(&d)
    );
    assert!(
        ok,
        "the entry for {version} should start with its date (YYYY-MM-DD), found {entry:?}"
    );
}
