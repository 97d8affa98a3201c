//! Running a program as a test does: with a deadline, its output captured, and the
//! deadline's failure naming the command.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished program left.
pub struct Out {
    /// Its exit code (-1 when killed by a signal).
    pub code: i32,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

/// Runs `cmd` with `FOGKIT_TIMEOUT=30` and `env`, killing it after `secs` seconds (the
/// test then fails, naming it).
pub fn run(cmd: &str, args: &[&str], env: &[(&str, &str)], secs: u64) -> Out {
    let start = Instant::now();
    let mut child = Command::new(cmd)
        .args(args)
        .env("FOGKIT_TIMEOUT", "30")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {cmd}: {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd} {args:?} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: t1.join().unwrap_or_default(),
        stderr: t2.join().unwrap_or_default(),
        took: start.elapsed(),
    }
}
