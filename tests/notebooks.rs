//! The course notebooks execute: every chapter in `notebooks/` runs headless in a real
//! Jupyter kernel (evcxr), and fails the test on a cell that does not compile, returns an
//! error or panics (nbconvert alone passes a panicking cell), or on a figure without its
//! picture when Chromium is installed. The committed notebooks must carry their outputs.
//!
//! The notebooks run on the "Rust (fogkit)" kernel (toolkit/kernel), installed for this
//! checkout before the first one runs (`notebooks/kernel/install.sh`); ch01 and the engines
//! notebook start 4 MPI engines on it, and a driver (`kernel_faults.py`) takes the kernel
//! through an interrupt, a killed engine and a shutdown. Needs `jupyter` and Open MPI
//! (`notebooks/setup.sh` installs both). Without them the tests say so and pass, unless
//! `CI` or `FOGKIT_REQUIRE_NOTEBOOKS` is set: then a missing tool is a failure, so CI cannot
//! pass by skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

/// One notebook at a time: the first compiles fogkit's dependencies into evcxr's cache,
/// the others reuse it; in parallel they would all compile everything at once.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn notebooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../notebooks")
}

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
        || std::env::var_os("FOGKIT_REQUIRE_NOTEBOOKS").is_some_and(|v| v == "1")
}

/// Installs the fogkit kernel for this checkout (once per test process); what went wrong.
fn install_kernel() -> Option<String> {
    static INSTALLED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let script = notebooks_dir().join("kernel/install.sh");
            match Command::new(&script).output() {
                Err(e) => Some(format!("{} could not run ({e})", script.display())),
                Ok(o) if !o.status.success() => Some(format!(
                    "installing the fogkit kernel failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Ok(_) => None,
            }
        })
        .clone()
}

/// `None` when Jupyter and the fogkit kernel are present, else what is missing.
fn missing_tools() -> Option<String> {
    // ch01 and the engines notebook start MPI engines.
    if Command::new("mpirun").arg("--version").output().is_err() {
        return Some("mpirun is not installed (the notebooks' engines need Open MPI)".into());
    }
    if let Some(why) = install_kernel() {
        return Some(why);
    }
    let out = Command::new("jupyter")
        .args(["kernelspec", "list", "--json"])
        .output();
    match out {
        Err(e) => Some(format!("jupyter could not be started ({e})")),
        Ok(o) if !o.status.success() => Some(format!(
            "`jupyter kernelspec list` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Ok(o) => {
            let specs: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            if specs["kernelspecs"]["fogkit"].is_object() {
                None
            } else {
                Some(
                    "the Jupyter kernel `fogkit` (notebooks/kernel/install.sh) is not installed"
                        .into(),
                )
            }
        }
    }
}

/// Whether the book's math preprocessor is missing.
fn katex_missing() -> bool {
    Command::new("mdbook-katex")
        .arg("--version")
        .output()
        .is_err()
}

fn chromium_present() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join("chromium").is_file())
}

fn read_notebook(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("could not read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A notebook text field, which nbformat stores as one string or as a list of lines.
fn joined(field: &Value) -> String {
    match field {
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

fn source(cell: &Value) -> String {
    joined(&cell["source"])
}

fn text_of(output: &Value) -> String {
    joined(&output["text"]) + &joined(&output["data"]["text/plain"])
}

/// Problems in an executed notebook: cells not run, errors, panics, figures without a
/// picture (when `want_pictures`).
fn problems(nb: &Value, want_pictures: bool) -> Vec<String> {
    let mut found = Vec::new();
    let cells = nb["cells"].as_array().cloned().unwrap_or_default();
    for (i, cell) in cells.iter().enumerate() {
        if cell["cell_type"] != "code" {
            continue;
        }
        let src = source(cell);
        let head = src.lines().next().unwrap_or("").to_string();
        if cell["execution_count"].is_null() {
            found.push(format!("cell {i} ({head}) was not executed"));
        }
        let outputs = cell["outputs"].as_array().cloned().unwrap_or_default();
        for o in &outputs {
            let text = text_of(o);
            if o["output_type"] == "error" {
                found.push(format!(
                    "cell {i} ({head}) raised {}: {}",
                    o["ename"], o["evalue"]
                ));
            } else if text.contains("panicked at") {
                found.push(format!("cell {i} ({head}) panicked: {}", text.trim()));
            } else if o["name"] == "stderr" && text.contains("error") {
                found.push(format!(
                    "cell {i} ({head}) printed an error: {}",
                    text.trim()
                ));
            }
        }
        let last_line = src
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let shows_figure = src.contains("Figure::new(") && !last_line.trim_end().ends_with(';');
        if shows_figure {
            let plotly = outputs
                .iter()
                .any(|o| o["data"]["application/vnd.plotly.v1+json"].is_object());
            let png = outputs.iter().any(|o| {
                o["data"]["image/png"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("iVBORw0KGgo"))
            });
            if !plotly {
                found.push(format!("cell {i} ({head}) shows no plotly figure"));
            }
            if want_pictures && !png {
                let said: String = outputs.iter().map(text_of).collect();
                found.push(format!(
                    "cell {i} ({head}) shows a figure without its PNG: {}",
                    said.trim()
                ));
            }
        }
    }
    found
}

/// Executes a committed notebook on the fogkit kernel and checks it; the executed notebook,
/// or `None` when the tools are missing and not required.
fn execute(name: &str) -> Option<Value> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = notebooks_dir();
    let input = dir.join(name);
    assert!(input.is_file(), "{} is missing", input.display());

    // The committed notebook carries its outputs, and they are clean; it names the fogkit
    // kernel and loads nothing itself.
    let committed = read_notebook(&input);
    assert_eq!(
        committed["metadata"]["kernelspec"]["name"], "fogkit",
        "{name} must run on the Rust (fogkit) kernel"
    );
    let cells = committed["cells"].as_array().cloned().unwrap_or_default();
    assert!(
        !cells
            .iter()
            .any(|c| c["cell_type"] == "code" && source(c).contains(":dep fogkit")),
        "{name} loads fogkit itself; the fogkit kernel has already"
    );
    let stale = problems(&committed, true);
    assert!(
        stale.is_empty(),
        "the committed {name} must be executed with its outputs (notebooks/execute.sh): {stale:#?}"
    );

    if let Some(why) = missing_tools() {
        if required() {
            panic!(
                "cannot execute {name}: {why}; tests/run-all.sh installs the notebook toolchain"
            );
        }
        eprintln!("skipping the execution of {name}: {why} (set CI=1 to make this a failure)");
        return None;
    }
    let out_dir = std::env::temp_dir().join(format!("fogkit-notebooks-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temporary directory");
    // evcxr builds in a temporary directory (gigabytes) that it does not remove when the
    // kernel is shut down: give the kernel its own TMPDIR and remove it afterwards.
    // A short path: Chromium puts its sockets under TMPDIR, and socket paths are limited
    // to 108 bytes.
    let scratch = out_dir.join(&name[..4]);
    std::fs::create_dir_all(&scratch).expect("kernel temporary directory");
    let started = Instant::now();
    let run = Command::new("jupyter")
        .args([
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.kernel_name=fogkit",
            "--ExecutePreprocessor.timeout=2400",
            "--output-dir",
        ])
        .arg(&out_dir)
        .arg(&input)
        .current_dir(&dir)
        .env_remove("FOGKIT_FIGURES")
        // evcxr runs cargo itself: it must not build into (and wait for the lock on) the
        // target directory of the cargo that runs this test.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env("TMPDIR", &scratch)
        .output()
        .expect("jupyter nbconvert could not be started");
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        run.status.success(),
        "{name} failed to execute ({took:.0?}):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let executed = read_notebook(&out_dir.join(name));
    let found = problems(&executed, chromium_present());
    assert!(
        found.is_empty(),
        "{name} executed with problems: {found:#?}"
    );
    eprintln!("{name}: executed cleanly in {took:.1?}");
    Some(executed)
}

#[test]
fn ch01_preliminaries() {
    let Some(nb) = execute("ch01_preliminaries.ipynb") else {
        return;
    };
    // Its engines section: hello world on 4 MPI engines, each line marked with its rank.
    let texts = cell_texts(&nb);
    let hello = texts
        .iter()
        .find(|t| t.contains("Hello, I am rank 0 of 4") && t.contains("[rank"))
        .unwrap_or_else(|| panic!("ch01 shows no hello from 4 engines: {texts:#?}"));
    let expected: Vec<String> = (0..4)
        .map(|r| format!("[rank {r}] Hello, I am rank {r} of 4"))
        .collect();
    assert_eq!(hello.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn ch02_average_consensus() {
    execute("ch02_average_consensus.ipynb");
}

#[test]
fn ch03_decentralized_gradient_descent() {
    execute("ch03_decentralized_gradient_descent.ipynb");
}

#[test]
fn ch04_bias_correction() {
    execute("ch04_bias_correction.ipynb");
}

#[test]
fn ch05_directed_and_time_varying_networks() {
    execute("ch05_directed_and_time_varying_networks.ipynb");
}

#[test]
fn ch06_asynchronous_consensus() {
    execute("ch06_asynchronous_consensus.ipynb");
}

#[test]
fn ch07_decentralized_deep_learning() {
    execute("ch07_decentralized_deep_learning.ipynb");
}

/// The text each code cell showed, in order.
fn cell_texts(nb: &Value) -> Vec<String> {
    let cells = nb["cells"].as_array().cloned().unwrap_or_default();
    cells
        .iter()
        .filter(|c| c["cell_type"] == "code")
        .map(|c| {
            let outs = c["outputs"].as_array().cloned().unwrap_or_default();
            outs.iter().map(text_of).collect()
        })
        .collect()
}

#[test]
fn engines_average_consensus_runs_on_4_mpi_engines() {
    let Some(nb) = execute("engines_average_consensus.ipynb") else {
        return;
    };
    let texts = cell_texts(&nb);
    assert_eq!(texts.len(), 5, "{texts:#?}");
    assert!(texts[0].contains("4 MPI engines started"), "{}", texts[0]);
    for r in 0..4 {
        assert!(
            texts[0].contains(&format!("  rank {r} on ")),
            "{}",
            texts[0]
        );
    }
    // Every rank's line, in rank order, each marked with its rank.
    let hello: Vec<&str> = texts[1].lines().collect();
    assert_eq!(hello.len(), 4, "{}", texts[1]);
    for (r, line) in hello.iter().enumerate() {
        assert!(
            line.starts_with(&format!("[rank {r}] rank {r} of 4, mpi")),
            "{line}"
        );
    }
    let consensus: Vec<&str> = texts[2].lines().collect();
    assert_eq!(consensus.len(), 4, "{}", texts[2]);
    for (r, line) in consensus.iter().enumerate() {
        assert!(
            line.starts_with(&format!("[rank {r}] x = 15.000000000 after 30 rounds")),
            "{line}"
        );
    }
    assert_eq!(
        texts[3].trim(),
        "[rank 0] rank 0 holds 15.000000000; every rank agrees: see the cell above"
    );
    assert!(texts[4].contains("engines stopped"), "{}", texts[4]);
}

/// The Python that runs Jupyter (the venv's, when `jupyter` comes from one).
fn jupyter_python() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join("jupyter").is_file())
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "python3".into())
}

#[test]
fn interrupt_and_a_killed_engine_are_reported_and_shutdown_leaves_no_process() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(why) = missing_tools() {
        assert!(!required(), "cannot drive the fogkit kernel: {why}");
        eprintln!("skipping: {why}");
        return;
    }
    let scratch = std::env::temp_dir().join(format!("fogkit-faults-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("temporary directory");
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel_faults.py");
    let run = Command::new(jupyter_python())
        .arg(&driver)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env("TMPDIR", &scratch)
        .output()
        .expect("the kernel driver could not be started");
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        run.status.success(),
        "the kernel driver failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: Value = serde_json::from_slice(&run.stdout).expect("the driver prints JSON");
    let status = |k: &str| {
        (
            seen[k][0].as_str().unwrap_or(""),
            seen[k][1].as_str().unwrap_or(""),
        )
    };
    // Interrupt: the in-process cell stops at once; its items stay, its variables go.
    let (st, stopped) = status("interrupt");
    assert_eq!(st, "error", "{stopped}");
    assert!(
        stopped.contains("sleeping\nERROR stopped: the cell's process ended"),
        "{stopped}"
    );
    assert!(
        stopped.contains("variables are lost; items (fn, struct, use) and dependencies are kept"),
        "{stopped}"
    );
    let took = seen["interrupt_seconds"].as_f64().unwrap_or(f64::MAX);
    assert!(took < 10.0, "the interrupt took {took} s");
    assert_eq!(status("item_after_interrupt"), ("ok", "2\n"));
    let (st, lost) = status("variable_after_interrupt");
    assert_eq!(st, "error", "{lost}");
    assert!(lost.contains("cannot find value `kept`"), "{lost}");

    assert_eq!(status("start").0, "ok", "{}", status("start").1);
    assert_eq!(
        seen["engine_pids"].as_object().map(|m| m.len()),
        Some(4),
        "{seen}"
    );

    // The fault: the cell fails within seconds (it would run a minute), naming rank 2.
    let (st, fault) = status("fault");
    assert_eq!(st, "error", "{fault}");
    assert!(fault.contains("[rank 0] started"), "{fault}");
    assert!(fault.contains("ERROR rank 2: rank 2 (pid"), "{fault}");
    assert!(fault.contains("was lost during the cell"), "{fault}");
    let took = seen["fault_seconds"].as_f64().unwrap_or(f64::MAX);
    assert!(
        took < 20.0,
        "the fault took {took} s to show after the kill"
    );
    // mpirun's own word on it comes with the error, and nothing of that job is left.
    assert!(fault.contains("exited on signal 9 (Killed)"), "{fault}");
    assert!(
        seen["first_job"].as_array().is_some_and(|a| a.len() >= 6),
        "{}",
        seen["first_job"]
    );
    assert_eq!(
        seen["first_job_alive"],
        serde_json::json!([]),
        "the lost job's processes are still running"
    );
    // The kernel stays usable: it says how to restart, restarts, and runs a collective.
    let (st, after) = status("after_fault");
    assert_eq!(st, "error", "{after}");
    assert!(after.contains("`:engines restart`"), "{after}");
    assert_eq!(status("restart").0, "ok", "{}", status("restart").1);
    // An interrupt on the engines ends them and says so; they restart.
    let (st, stopped) = status("engines_interrupt");
    assert_eq!(st, "error", "{stopped}");
    assert!(stopped.contains("[rank 0] napping"), "{stopped}");
    assert!(
        stopped.contains("ERROR interrupted: the engines were stopped by an interrupt"),
        "{stopped}"
    );
    assert_eq!(
        status("restart_after_interrupt").0,
        "ok",
        "{}",
        status("restart_after_interrupt").1
    );
    let (st, mean) = status("collective");
    assert_eq!(st, "ok", "{mean}");
    let lines: Vec<&str> = mean.lines().collect();
    let expected: Vec<String> = (0..4).map(|r| format!("[rank {r}] mean 1.5")).collect();
    assert_eq!(lines, expected);
    // Shutting the kernel down ends everything that was under it.
    assert!(
        seen["under_kernel"]
            .as_array()
            .is_some_and(|a| a.len() >= 8),
        "expected the engines' processes under the kernel, found {}",
        seen["under_kernel"]
    );
    assert_eq!(
        seen["left"],
        serde_json::json!([]),
        "processes left after shutdown"
    );
}

#[test]
fn the_checker_catches_panics_errors_and_missing_pictures() {
    let nb = serde_json::json!({"cells": [
        {"cell_type": "code", "execution_count": 1, "source": ["let a = 1;"],
         "outputs": [{"output_type": "stream", "name": "stderr",
                      "text": ["thread '<unnamed>' panicked at src/lib.rs:3:5:\nboom"]}]},
        {"cell_type": "code", "execution_count": 2, "source": "x?",
         "outputs": [{"output_type": "error", "ename": "Error", "evalue": "bad", "traceback": []}]},
        {"cell_type": "code", "execution_count": null, "source": "never ran", "outputs": []},
        {"cell_type": "code", "execution_count": 4, "source": "Figure::new(\"f\", p)",
         "outputs": [{"output_type": "execute_result", "data": {"text/plain": "figure f"}}]},
        {"cell_type": "markdown", "source": "panicked at (in prose: fine)"}
    ]});
    let found = problems(&nb, true);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(found[0].contains("panicked"));
    assert!(found[1].contains("raised"));
    assert!(found[2].contains("not executed"));
    assert!(found[3].contains("no plotly figure") && found[4].contains("without its PNG"));
}

/// Every picture and notebook the book links to exists, every chapter notebook has its
/// page, and `mdbook build` succeeds (when mdBook is installed; required in CI).
#[test]
fn the_book_builds_and_its_links_resolve() {
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tutorials");
    let src = book.join("src");
    let summary =
        std::fs::read_to_string(src.join("SUMMARY.md")).expect("tutorials/src/SUMMARY.md");
    let mut pages = vec!["SUMMARY.md".to_string()];
    for line in summary.lines() {
        if let Some(start) = line.find("](") {
            let rest = &line[start + 2..];
            pages.push(rest[..rest.find(')').unwrap_or(rest.len())].to_string());
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let path = src.join(page);
        let Ok(text) = std::fs::read_to_string(&path) else {
            broken.push(format!("SUMMARY.md lists {page}, which does not exist"));
            continue;
        };
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let target = &rest[..rest.find(')').unwrap_or(rest.len())];
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            if !src.join(target).exists() {
                broken.push(format!("{page} links to {target}, which does not exist"));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
    for entry in std::fs::read_dir(notebooks_dir()).expect("notebooks/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if name.starts_with("ch") && name.ends_with(".ipynb") {
            let page = name.replace(".ipynb", ".md");
            assert!(
                pages.contains(&page),
                "notebook {name} has no book page {page}"
            );
        }
    }

    let out = std::env::temp_dir().join(format!("fogkit-book-{}", std::process::id()));
    let built = Command::new("mdbook")
        .arg("build")
        .arg(&book)
        .arg("--dest-dir")
        .arg(&out)
        .output();
    match built {
        Err(e) if !required() => eprintln!("skipping mdbook build: mdbook not found ({e})"),
        Err(e) => panic!("mdbook could not be started ({e}); tests/run-all.sh installs it"),
        Ok(o) if !o.status.success() && !required() && katex_missing() => eprintln!(
            "skipping mdbook build: mdbook-katex not found (tests/run-all.sh installs it)"
        ),
        Ok(o) => {
            let log = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "mdbook build failed:\n{log}");
            // Typeset math must not leave tags that Markdown split apart.
            assert!(
                !log.contains("HTML tag"),
                "mdbook reports unbalanced HTML (an ASCII ~ in typeset math?):\n{log}"
            );
            for page in pages.iter().filter(|p| p.as_str() != "SUMMARY.md") {
                let html = out.join(page.replace(".md", ".html"));
                let text = std::fs::read_to_string(&html)
                    .unwrap_or_else(|e| panic!("mdbook did not write {}: {e}", html.display()));
                let source = std::fs::read_to_string(src.join(page)).unwrap_or_default();
                if source.contains('$') {
                    assert!(
                        text.contains("class=\"katex\"") && text.contains("katex/katex.min.css"),
                        "{page}: its math was not typeset, or the KaTeX stylesheet is not linked"
                    );
                }
                assert!(!text.contains("<del>"), "{page}: struck-through text");
                assert!(
                    !text.contains("\\(") && !text.contains("\\["),
                    "{page}: math left in MathJax delimiters; write $...$ and $$...$$"
                );
            }
            // KaTeX's stylesheet and fonts travel with the book (it reads offline).
            assert!(out.join("katex/katex.min.css").is_file());
            assert!(out.join("katex/fonts/KaTeX_Main-Regular.woff2").is_file());
            let chapter =
                std::fs::read_to_string(out.join("ch04_bias_correction.html")).unwrap_or_default();
            assert!(chapter.contains("figures/ch04_all_methods.png"));
            let _ = std::fs::remove_dir_all(&out);
        }
    }
}
