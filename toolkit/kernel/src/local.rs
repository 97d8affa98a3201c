//! One evaluation context: evcxr's `CommandContext` with fogkit loaded, the kernel's own
//! (in-process cells) and each MPI engine's. It turns evcxr's results into [`Out`]s and
//! [`Failure`]s; it never writes to Jupyter or to a socket itself.

use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::select;
use evcxr::{CommandContext, EvalContextOutputs};
use serde_json::{Map, Value};

/// Something a cell produced, in order.
#[derive(Clone, Debug)]
pub enum Out {
    /// Text on "stdout" or "stderr".
    Stream { name: String, text: String },
    /// A rich value (a frame, a figure): MIME type to content.
    Display { data: Map<String, Value> },
}

/// Why a cell did not finish.
#[derive(Clone, Debug)]
pub struct Failure {
    /// What kind of failure ("compile error", "panic", "interrupted", "rank 2", ...).
    pub ename: String,
    /// One line saying what happened.
    pub evalue: String,
    /// The full report, line by line.
    pub traceback: Vec<String>,
}

impl Failure {
    pub fn new(ename: impl Into<String>, evalue: impl Into<String>) -> Failure {
        let evalue = evalue.into();
        Failure {
            ename: ename.into(),
            traceback: evalue.lines().map(String::from).collect(),
            evalue,
        }
    }
}

/// What the kernel loads before the first cell.
pub struct Setup {
    /// Lines run before the first cell (`:dep`, `:opt`, the prelude).
    pub init: Vec<String>,
}

impl Setup {
    /// fogkit from `toolkit` with `features`, fogkit's prelude in scope.
    pub fn fogkit(toolkit: &str, features: &[&str]) -> Setup {
        let features: Vec<String> = features.iter().map(|f| format!("\"{f}\"")).collect();
        Setup {
            init: vec![
                // No `:cache`: the kept build directory (`slot`) does its work, and
                // right (see there).
                // Unoptimized, fogkit and its dependencies too (evcxr has one level for
                // all): the notebooks' computations are small, and an optimized polars
                // takes far longer to build.
                ":opt 0".into(),
                // fogkit as one shared library (kernel/cells): a cell links against it
                // instead of copying fogkit, dfdx, polars and plotly into itself (a cell's
                // library: 250 MB static, 0.1 MB shared; measured 25% faster cells).
                // evcxr's own way to that, `:allow_static_linking 0`, fails on Rust 1.95
                // ("only metadata stub found for `dylib` dependency `core`").
                format!(
                    ":dep fogkit = {{ path = \"{toolkit}/kernel/cells\", package = \"fogkit-cells\", features = [{}] }}",
                    features.join(", ")
                ),
                "use fogkit::prelude::*;".into(),
                // The first cell that keeps a variable costs about 9 s more than the
                // next ones (evcxr's variable store, compiled once): paid here, at start.
                "let fogkit_kernel_started = true;".into(),
            ],
        }
    }
}

/// An evaluation context and its child process.
pub struct Local {
    ctx: CommandContext,
    outputs: EvalContextOutputs,
    child: Arc<Mutex<Child>>,
}

impl Local {
    /// Starts evcxr's child process and runs the set-up; a set-up error comes back with
    /// what evcxr said.
    pub fn start(setup: &Setup, emit: &mut dyn FnMut(Out)) -> Result<Local, Failure> {
        if let Some(dir) = std::env::var_os("EVCXR_TMPDIR") {
            crate::slot::seed(std::path::Path::new(&dir));
        }
        let (ctx, outputs) = CommandContext::new()
            .map_err(|e| Failure::new("start", format!("evcxr could not start: {e}")))?;
        let child = ctx.process_handle();
        let mut local = Local {
            ctx,
            outputs,
            child,
        };
        // The set-up's own messages ("cache: 4000 MiB") are kept back unless it fails.
        for line in &setup.init {
            let mut said = Vec::new();
            local.eval(line, &mut |o| said.push(o)).map_err(|mut f| {
                for o in said {
                    emit(o);
                }
                f.evalue = format!("the kernel's set-up line `{line}` failed: {}", f.evalue);
                f.ename = "set-up".into();
                f
            })?;
        }
        Ok(local)
    }

    /// A handle that stops a running cell by killing the child process (its variables
    /// are lost; items and dependencies are kept and rebuilt on the next cell).
    pub fn child(&self) -> Arc<Mutex<Child>> {
        Arc::clone(&self.child)
    }

    /// Runs one cell, passing its output to `emit` as it comes (stdout and stderr
    /// line by line, then the value).
    pub fn eval(&mut self, code: &str, emit: &mut dyn FnMut(Out)) -> Result<(), Failure> {
        let started = Instant::now();
        let (stdout, stderr) = (self.outputs.stdout.clone(), self.outputs.stderr.clone());
        let ctx = &mut self.ctx;
        let result = std::thread::scope(|s| {
            let (done_tx, done_rx) = crossbeam_channel::bounded(1);
            s.spawn(move || {
                // A panic inside evcxr fails this cell, not the kernel.
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.execute(code)))
                        .unwrap_or_else(|_| {
                            Err(evcxr::Error::Message("evcxr panicked on this cell".into()))
                        });
                let _ = done_tx.send(r);
            });
            let line = |name: &str, text: String| Out::Stream {
                name: name.into(),
                text: text + "\n",
            };
            loop {
                select! {
                    recv(stdout) -> l => if let Ok(l) = l { emit(line("stdout", l)) },
                    recv(stderr) -> l => if let Ok(l) = l { emit(line("stderr", l)) },
                    recv(done_rx) -> r => {
                        // Whatever the child printed before it finished.
                        while let Ok(l) = stdout.try_recv() { emit(line("stdout", l)) }
                        while let Ok(l) = stderr.try_recv() { emit(line("stderr", l)) }
                        break r.map_err(|_| Failure::new("internal", "the evaluation thread ended without a result"));
                    }
                }
            }
        })?;
        match result {
            Ok(outputs) => {
                if std::env::var_os("FOGKIT_CELL_TIMES").is_some() {
                    for p in &outputs.phases {
                        eprintln!("  [{}: {:.2} s]", p.name, p.duration.as_secs_f64());
                    }
                }
                if !outputs.content_by_mime_type.is_empty() {
                    let data = outputs
                        .content_by_mime_type
                        .into_iter()
                        .map(|(k, v)| {
                            let v = if k.ends_with("json") {
                                serde_json::from_str(&v).unwrap_or(Value::String(v))
                            } else {
                                Value::String(v)
                            };
                            (k, v)
                        })
                        .collect();
                    emit(Out::Display { data });
                }
                Ok(())
            }
            Err(e) => Err(failure(e, started)),
        }
    }

    /// Kills the child process (used on shutdown).
    pub fn kill(&self) {
        let mut c = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn failure(e: evcxr::Error, started: Instant) -> Failure {
    match e {
        evcxr::Error::CompilationErrors(errors) => {
            let rendered: Vec<String> = errors.iter().map(|e| e.rendered()).collect();
            let first = errors
                .first()
                .map(|e| e.message())
                .unwrap_or_else(|| "compilation failed".into());
            Failure {
                ename: "compile error".into(),
                evalue: first,
                traceback: rendered.join("\n").lines().map(String::from).collect(),
            }
        }
        evcxr::Error::SubprocessTerminated(why) => Failure::new(
            "stopped",
            format!(
                "the cell's process ended after {:.1} s ({why}): variables are lost; \
                 items (fn, struct, use) and dependencies are kept",
                started.elapsed().as_secs_f64()
            ),
        ),
        evcxr::Error::TypeRedefinedVariablesLost(vars) => Failure::new(
            "redefined",
            format!(
                "a type was redefined, so these variables were lost: {}",
                vars.join(", ")
            ),
        ),
        other => Failure::new("error", other.to_string()),
    }
}
