//! A notebook's session: where each cell runs. Cells run in the kernel's own evaluation
//! context until a cell says `:engines N`; from then on every cell runs on each of the N
//! MPI engines, until `:engines stop`. The lines it reads itself:
//!
//! ```text
//! :engines 4 [fogrun options]   start 4 MPI engines (again: restart them)
//! :engines restart              the same engines again, after a fault or an interrupt
//! :engines stop                 back to cells in the kernel's own process
//! :engines                      where the cells run now
//! :on 0,2                       (first line) run this cell on ranks 0 and 2 only
//! ```
//!
//! The engines are a line in the notebook rather than a kernelspec per size: the
//! notebook says how many ranks it needs where a reader sees it, one kernel serves every
//! size, and the same line restarts them. It never starts engines a cell did not ask for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::engines::{Engines, Job};
use crate::local::{Failure, Local, Out, Setup};

/// Stops whatever is running a cell, from another thread (Jupyter's interrupt).
#[derive(Default)]
pub struct Interrupt {
    local: Mutex<Option<Arc<Mutex<std::process::Child>>>>,
    job: Mutex<Option<Arc<Job>>>,
    /// A cell is running: an interrupt while idle does nothing.
    running: AtomicBool,
}

impl Interrupt {
    /// Stops the running cell: the engines' job if there is one, else the kernel's own
    /// cell process. Says what it stopped.
    pub fn interrupt(&self) -> &'static str {
        if !self.running.load(Ordering::SeqCst) {
            return "nothing";
        }
        if let Some(job) = self.job.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            job.interrupt();
            return "the engines";
        }
        if let Some(c) = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = c.lock().unwrap_or_else(|p| p.into_inner()).kill();
            return "the cell's process";
        }
        "nothing"
    }

    /// Ends every process the session started (kernel shutdown).
    pub fn end_all(&self) {
        if let Some(job) = self.job.lock().unwrap_or_else(|p| p.into_inner()).take() {
            job.kill();
        }
        if let Some(c) = self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct Session {
    toolkit: String,
    local: Option<Local>,
    engines: Option<Engines>,
    /// The last `:engines` size and options, for `:engines restart`.
    last: Option<(usize, Vec<String>)>,
    /// Why the engines asked for did not start: cells fail (rather than quietly running
    /// in the kernel's process) until `:engines restart` or `:engines stop`.
    failed: Option<String>,
    interrupt: Arc<Interrupt>,
}

impl Session {
    /// A session loading fogkit from the crate at `toolkit`.
    pub fn new(toolkit: String) -> Session {
        Session {
            toolkit,
            local: None,
            engines: None,
            last: None,
            failed: None,
            interrupt: Arc::default(),
        }
    }

    pub fn interrupter(&self) -> Arc<Interrupt> {
        Arc::clone(&self.interrupt)
    }

    /// Starts the kernel's own evaluation context (fogkit compiled and loaded), if it
    /// is not running yet.
    pub fn warm(&mut self, emit: &mut dyn FnMut(Out)) -> Result<(), Failure> {
        if self.local.is_none() {
            let setup = Setup::fogkit(&self.toolkit, &["metrics", "embed-js"]);
            let local = Local::start(&setup, emit)?;
            *self
                .interrupt
                .local
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some(local.child());
            self.local = Some(local);
        }
        Ok(())
    }

    /// Runs one cell where the session says, passing its outputs to `emit`.
    pub fn execute(&mut self, code: &str, emit: &mut dyn FnMut(Out)) -> Result<(), Failure> {
        self.interrupt.running.store(true, Ordering::SeqCst);
        let r = self.route(code, emit);
        self.interrupt.running.store(false, Ordering::SeqCst);
        r
    }

    fn route(&mut self, code: &str, emit: &mut dyn FnMut(Out)) -> Result<(), Failure> {
        let trimmed = code.trim_start();
        let (first, rest) = trimmed.split_once('\n').unwrap_or((trimmed, ""));
        let words: Vec<&str> = first.split_whitespace().collect();
        match words.first().copied() {
            Some(":engines") => return self.engines_line(&words[1..], rest, emit),
            Some(":on") => return self.on_line(&words[1..], rest, emit),
            _ => {}
        }
        if let Some(engines) = self.engines.as_mut() {
            let all: Vec<usize> = (0..engines.size()).collect();
            return engines.eval(code, &all, emit);
        }
        if let Some(why) = &self.failed {
            return Err(Failure::new(
                "engines",
                format!(
                    "the engines did not start ({why}): `:engines restart` tries again, \
                     `:engines stop` runs cells in the kernel's own process"
                ),
            ));
        }
        self.warm(emit)?;
        match self.local.as_mut() {
            Some(local) => local.eval(code, emit),
            None => Err(Failure::new(
                "internal",
                "the kernel's context did not start",
            )),
        }
    }

    fn on_line(
        &mut self,
        args: &[&str],
        rest: &str,
        emit: &mut dyn FnMut(Out),
    ) -> Result<(), Failure> {
        let Some(engines) = self.engines.as_mut() else {
            return Err(Failure::new(
                ":on",
                "`:on RANKS` needs engines: start them with `:engines N`",
            ));
        };
        let ranks = parse_ranks(args)?;
        engines.eval(rest, &ranks, emit)
    }

    fn engines_line(
        &mut self,
        args: &[&str],
        rest: &str,
        emit: &mut dyn FnMut(Out),
    ) -> Result<(), Failure> {
        let say = |emit: &mut dyn FnMut(Out), text: String| {
            emit(Out::Stream {
                name: "stdout".into(),
                text,
            })
        };
        match args.first().copied() {
            None => {
                let text = match (&self.engines, &self.failed) {
                    (Some(e), _) => match e.stopped() {
                        Some(why) => format!(
                            "the {} MPI engines have stopped ({why}): `:engines restart`\n",
                            e.size()
                        ),
                        None => format!("cells run on {} MPI engines\n", e.size()),
                    },
                    (None, Some(why)) => format!("the engines did not start ({why})\n"),
                    (None, None) => {
                        "cells run in the kernel's own process (in-process ranks)\n".into()
                    }
                };
                say(emit, text);
                Ok(())
            }
            Some("stop") => {
                self.stop_engines();
                self.failed = None;
                say(
                    emit,
                    "engines stopped: cells run in the kernel's own process\n".into(),
                );
                Ok(())
            }
            Some("restart") => {
                let Some((n, opts)) = self.last.clone() else {
                    return Err(Failure::new(
                        ":engines",
                        "expected `:engines N` before `:engines restart`, found no engines started",
                    ));
                };
                self.start_engines(n, opts, rest, emit)
            }
            Some(n) => {
                let n: usize = n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    Failure::new(
                        ":engines",
                        format!(
                            "expected `:engines N [fogrun options]` with N a number of ranks, \
                             `restart` or `stop`, found `{n}`"
                        ),
                    )
                })?;
                let opts = args[1..].iter().map(|s| s.to_string()).collect();
                self.start_engines(n, opts, rest, emit)
            }
        }
    }

    fn start_engines(
        &mut self,
        n: usize,
        opts: Vec<String>,
        rest: &str,
        emit: &mut dyn FnMut(Out),
    ) -> Result<(), Failure> {
        self.stop_engines();
        self.last = Some((n, opts.clone()));
        let setup = Setup::fogkit(&self.toolkit, &["metrics", "embed-js", "mpi"]);
        let interrupt = Arc::clone(&self.interrupt);
        let started = move |job: Arc<Job>| {
            *interrupt.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(job);
        };
        let engines = match Engines::start(n, &opts, &setup.init, &started, emit) {
            Ok(e) => e,
            Err(f) => {
                self.stop_engines();
                self.failed = Some(f.evalue.lines().next().unwrap_or("").to_string());
                return Err(f);
            }
        };
        self.failed = None;
        let engines = self.engines.insert(engines);
        if rest.trim().is_empty() {
            return Ok(());
        }
        let all: Vec<usize> = (0..n).collect();
        engines.eval(rest, &all, emit)
    }

    fn stop_engines(&mut self) {
        if let Some(mut e) = self.engines.take() {
            e.stop();
        }
        let job = self
            .interrupt
            .job
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(job) = job {
            job.kill();
        }
    }

    /// Ends every process the session started.
    pub fn end(&mut self) {
        self.stop_engines();
        if let Some(l) = self.local.take() {
            l.kill();
        }
    }
}

/// The ranks of an `:on` line: numbers separated by commas or spaces.
fn parse_ranks(args: &[&str]) -> Result<Vec<usize>, Failure> {
    let usage = |found: &str| {
        Failure::new(
            ":on",
            format!("expected `:on RANKS` with RANKS like 0 or 0,2, found {found}"),
        )
    };
    let mut ranks = Vec::new();
    for part in args
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|p| !p.is_empty())
    {
        ranks.push(
            part.parse::<usize>()
                .map_err(|_| usage(&format!("`{part}`")))?,
        );
    }
    if ranks.is_empty() {
        return Err(usage("no ranks"));
    }
    ranks.sort_unstable();
    ranks.dedup();
    Ok(ranks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_lines_name_ranks_with_commas_or_spaces_and_bad_ones_are_refused() {
        assert_eq!(parse_ranks(&["0,2"]).unwrap(), vec![0, 2]);
        assert_eq!(parse_ranks(&["2", "0"]).unwrap(), vec![0, 2]);
        assert_eq!(parse_ranks(&["1,", "3,1"]).unwrap(), vec![1, 3]);
        assert!(parse_ranks(&[])
            .unwrap_err()
            .evalue
            .contains("found no ranks"));
        assert!(parse_ranks(&["x"])
            .unwrap_err()
            .evalue
            .contains("found `x`"));
    }

    #[test]
    fn engines_lines_refuse_what_is_not_a_size_and_on_needs_engines() {
        let mut s = Session::new("/nonexistent".into());
        let mut out = Vec::new();
        let mut emit = |o: Out| out.push(o);
        let e = s.execute(":engines abc", &mut emit).unwrap_err();
        assert!(e.evalue.contains("found `abc`"), "{}", e.evalue);
        let e = s.execute(":engines 0", &mut emit).unwrap_err();
        assert!(e.evalue.contains("found `0`"), "{}", e.evalue);
        let e = s.execute(":engines restart", &mut emit).unwrap_err();
        assert!(
            e.evalue.contains("before `:engines restart`"),
            "{}",
            e.evalue
        );
        let e = s.execute(":on 1\nprintln!();", &mut emit).unwrap_err();
        assert!(e.evalue.contains("needs engines"), "{}", e.evalue);
        s.execute(":engines", &mut emit).unwrap();
        match out.last() {
            Some(Out::Stream { text, .. }) => assert!(text.contains("kernel's own process")),
            o => panic!("expected a line, found {o:?}"),
        }
    }
}
