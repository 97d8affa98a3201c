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

/// Starts `cmd` with `env`, no input and its output piped (the test fails if it cannot).
fn spawn(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    Command::new(cmd)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {cmd}: {e}"))
}

/// Runs `cmd` with `FOGKIT_TIMEOUT=30` and `env`, killing it after `secs` seconds (the
/// test then fails, naming it).
pub fn run(cmd: &str, args: &[&str], env: &[(&str, &str)], secs: u64) -> Out {
    let start = Instant::now();
    let mut timeout = vec![("FOGKIT_TIMEOUT", "30")];
    timeout.extend_from_slice(env);
    let mut child = spawn(cmd, args, &timeout);
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

/// A program left running once it has printed what a test waits for.
pub struct Running {
    child: std::process::Child,
    errors: std::thread::JoinHandle<String>,
}

/// Starts `cmd` and returns once `count` lines of its standard output end with `marker`
/// (within `secs` seconds, else the test fails and the program is killed).
pub fn start_until(
    cmd: &str,
    args: &[&str],
    env: &[(&str, &str)],
    marker: &str,
    count: usize,
    secs: u64,
) -> Running {
    use std::io::BufRead;
    let mut child = spawn(cmd, args, env);
    let stdout = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let mut seen = 0;
    while seen < count {
        let left = Duration::from_secs(secs).saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(l) if l.ends_with(marker) => seen += 1,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let err = errors.join().unwrap_or_default();
                panic!("{cmd} {args:?}: {seen} of {count} lines ending {marker:?} ({e}): {err}");
            }
        }
    }
    Running { child, errors }
}

impl Running {
    /// Waits for the program to end, at most `secs` seconds (else kills it and fails the
    /// test); returns its exit code, how long it took from this call, and its stderr.
    pub fn end_within(mut self, secs: u64) -> (i32, Duration, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self.errors.join().unwrap_or_default();
                panic!("still running {secs} s later: {err}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let took = start.elapsed();
        (
            status.code().unwrap_or(-1),
            took,
            self.errors.join().unwrap_or_default(),
        )
    }
}

/// The processes (pid, command line) whose command line contains `needle`.
pub fn processes_running(needle: &str) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me)
        .filter_map(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(needle).then_some((p, cmd))
        })
        .collect()
}

/// The process of MPI rank `rank` among those running `program`.
pub fn mpi_rank_process(program: &str, rank: usize) -> Option<u32> {
    processes_running(program).into_iter().find_map(|(p, _)| {
        let env = std::fs::read(format!("/proc/{p}/environ")).ok()?;
        let want = format!("OMPI_COMM_WORLD_RANK={rank}");
        env.split(|&b| b == 0)
            .any(|v| v == want.as_bytes())
            .then_some(p)
    })
}

/// The lines `line` gives on `n` in-process ranks, sorted: what a run of the same program
/// under mpirun must print (its lines sorted with [`sorted_lines`]).
pub fn in_process_lines(
    n: usize,
    line: impl Fn(&fogkit::Fog) -> fogkit::Result<String> + Sync,
) -> Vec<String> {
    let mut v = fogkit::run(n, line)
        .expect("the in-process run")
        .into_vec()
        .expect("every rank's line");
    v.sort();
    v
}

/// The lines of `out` that start with `prefix`, sorted (ranks print in any order).
pub fn sorted_lines(out: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// The number after the word `key` in `line` (`rank 0 error 3e-9 iterations 12`: `error`
/// gives 3e-9); NaN when there is none, which fails any bound a test puts on it.
pub fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .skip_while(|w| *w != key)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The `train` example's digest line ("parameter sums by rank: ..."), if it printed one.
pub fn parameter_sums(out: &str) -> Option<String> {
    out.lines()
        .find(|l| l.starts_with("parameter sums by rank"))
        .map(str::to_string)
}
