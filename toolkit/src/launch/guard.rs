//! `fogrun`'s watch over mpirun: it relays mpirun's standard error line by line, and once
//! a fogkit rank has said it is ending the job, gives mpirun [`GRACE`] to finish before
//! ending it and its processes on this machine. Plain mpirun can wait forever for a host
//! it cannot reach, ignoring SIGTERM (measured with Open MPI 4.1 and a cut link).
//!
//! It must never end a job no rank has given up on: only a fogkit rank's own "ending the
//! MPI job" line starts the grace period.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long mpirun may take to end a job after a rank asked it to.
pub const GRACE: Duration = Duration::from_secs(8);

/// What a fogkit rank prints when it ends the job (see `transport::mpi::abort_job`).
const ENDING: &str = "ending the MPI job";

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Runs mpirun's `command` to the end and returns the exit code fogrun should give.
pub(super) fn run_guarded(mut command: Command) -> i32 {
    let mut child = match command.stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fogrun: could not start mpirun: {e}");
            return 127;
        }
    };
    let ending = Arc::new(AtomicBool::new(false));
    let relay = child.stderr.take().map(|err| {
        let ending = ending.clone();
        std::thread::spawn(move || {
            let mut out = std::io::stderr();
            for line in BufReader::new(err).split(b'\n').map_while(Result::ok) {
                if String::from_utf8_lossy(&line).contains(ENDING) {
                    ending.store(true, Ordering::Relaxed);
                }
                let _ = out.write_all(&line);
                let _ = out.write_all(b"\n");
            }
        })
    });
    let mut since: Option<Instant> = None;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code().unwrap_or(1),
            Ok(None) => {}
            Err(e) => {
                eprintln!("fogrun: lost track of mpirun: {e}");
                break 1;
            }
        }
        if ending.load(Ordering::Relaxed) {
            let t = *since.get_or_insert_with(Instant::now);
            if t.elapsed() > GRACE {
                eprintln!(
                    "fogrun: mpirun did not end the job within {GRACE:?} of a rank's failure \
                     (a host it cannot reach?); ending it and its processes here"
                );
                kill_tree(child.id());
                let _ = child.wait();
                break 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(r) = relay {
        // mpirun's children on this machine may hold the pipe a moment longer.
        let t = Instant::now();
        while !r.is_finished() && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    code
}

/// SIGKILLs `pid` and every process below it (read from /proc), children first found.
fn kill_tree(pid: u32) {
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        family.extend(children(parent));
        i += 1;
    }
    for p in family {
        // SAFETY: kill(2) with a process id and a signal number has no memory effects.
        unsafe {
            kill(p as i32, 9);
        }
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            // /proc/P/stat: "P (comm) S PPID ...": the parent follows the last ')'.
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s
                        .rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok();
                    rest
                })
                == Some(pid)
        })
        .collect()
}
