//! Starting ranks. In-process ranks are [`run`](crate::run)'s default; processes under
//! `mpirun` are started by `fogrun` (BlueFog's `bfrun`), whose logic lives here.
//!
//! ```text
//! fogrun -np 4 ./my_program ARGS...          # 4 processes on this machine
//! fogrun -np 16 --hostfile hosts ./my_program  # across machines
//! ```

mod config;
mod ranks;
mod run;

use std::path::Path;
use std::process::Command;

pub use config::Config;
pub use ranks::Ranks;
pub use run::{run, run_with};

pub use crate::transport::{launched_by_mpirun, launched_size};

/// This process's rank in the `mpirun` job (0 when not started by `mpirun`), read from
/// the launcher's environment: lets a program print once, from the first process.
///
/// ```
/// if !fogkit::launched_by_mpirun() {
///     assert_eq!(fogkit::launch::process_rank(), 0);
/// }
/// ```
pub fn process_rank() -> usize {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .unwrap_or(0)
}

/// How many ranks a program should run: `mpirun`'s process count when started by it,
/// else `FOGKIT_RANKS` when set, else `default`. The examples use it, so that one
/// command runs them on N in-process ranks or N processes alike.
///
/// ```
/// assert_eq!(fogkit::launch::ranks_or(8), fogkit::launched_size().unwrap_or(8));
/// ```
pub fn ranks_or(default: usize) -> usize {
    launched_size()
        .or_else(|| {
            std::env::var("FOGKIT_RANKS")
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
        .unwrap_or(default)
}

/// A program's `--flag value` options, in order (for examples and tools built on fogkit):
/// an error names a flag that has no value after it.
///
/// ```
/// let args = ["--ranks", "4", "--lr", "0.1"].map(String::from);
/// let pairs = fogkit::launch::option_pairs(args).unwrap();
/// assert_eq!(pairs[1], ("--lr".to_string(), "0.1".to_string()));
/// assert!(fogkit::launch::option_pairs(["--ranks".to_string()]).is_err());
/// ```
pub fn option_pairs(
    args: impl IntoIterator<Item = String>,
) -> crate::Result<Vec<(String, String)>> {
    let mut it = args.into_iter();
    let mut pairs = Vec::new();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| {
            crate::Error::InvalidArgument(format!("{flag} expects a value, found nothing"))
        })?;
        pairs.push((flag, value));
    }
    Ok(pairs)
}

/// Environment variables `fogrun` forwards to every process when they are set.
pub const FORWARDED_ENV: &[&str] = &[
    "FOGKIT_TIMEOUT",
    "FOGKIT_LOCAL_SIZE",
    "FOGKIT_MPI_CMA",
    "FOGKIT_TIMELINE",
    "FOGKIT_RANKS",
    "RUST_BACKTRACE",
    "RUST_LOG",
];

const USAGE: &str = "usage: fogrun -np N [--hostfile FILE | -H HOST:SLOTS,...] \
[--allow-run-as-root] [--oversubscribe | --no-oversubscribe] [--mpirun-arg ARG]... \
[--dry-run] [--] PROGRAM [ARGS...]";

/// What `fogrun` was asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fogrun {
    /// Number of processes.
    pub np: usize,
    /// `--hostfile FILE`, passed to mpirun.
    pub hostfile: Option<String>,
    /// `-H host:slots,...`, passed to mpirun.
    pub hosts: Option<String>,
    /// Allow running as root (containers), when the user says so.
    pub allow_root: bool,
    /// Oversubscribe: `Some` when the user chose, `None` to decide from the core count.
    pub oversubscribe: Option<bool>,
    /// Extra arguments for mpirun.
    pub mpirun_args: Vec<String>,
    /// Print the command instead of running it.
    pub dry_run: bool,
    /// The program and its arguments.
    pub program: Vec<String>,
}

impl Fogrun {
    /// Parses `fogrun`'s arguments (without the program name).
    ///
    /// ```
    /// let f = fogkit::launch::Fogrun::parse(&["-np", "4", "./a.out", "-x"]).unwrap();
    /// assert_eq!((f.np, f.program.clone()), (4, vec!["./a.out".to_string(), "-x".to_string()]));
    /// assert!(fogkit::launch::Fogrun::parse(&["./a.out"]).unwrap_err().contains("-np"));
    /// ```
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Fogrun, String> {
        let mut f = Fogrun::default();
        let mut np: Option<usize> = None;
        let mut i = 0;
        let value = |i: usize, flag: &str| -> Result<String, String> {
            args.get(i + 1)
                .map(|s| s.as_ref().to_string())
                .ok_or_else(|| format!("{flag} expects a value, found nothing\n{USAGE}"))
        };
        while i < args.len() {
            let a = args[i].as_ref();
            match a {
                "-np" | "-n" | "--np" => {
                    let v = value(i, a)?;
                    np = Some(v.parse().ok().filter(|&n: &usize| n > 0).ok_or_else(|| {
                        format!("{a} expects a positive number of processes, found {v:?}")
                    })?);
                    i += 2;
                }
                "--hostfile" | "-hostfile" | "--machinefile" => {
                    f.hostfile = Some(value(i, a)?);
                    i += 2;
                }
                "-H" | "--host" => {
                    f.hosts = Some(value(i, a)?);
                    i += 2;
                }
                "--allow-run-as-root" => {
                    f.allow_root = true;
                    i += 1;
                }
                "--oversubscribe" => {
                    f.oversubscribe = Some(true);
                    i += 1;
                }
                "--no-oversubscribe" => {
                    f.oversubscribe = Some(false);
                    i += 1;
                }
                "--mpirun-arg" => {
                    f.mpirun_args.push(value(i, a)?);
                    i += 2;
                }
                "--dry-run" => {
                    f.dry_run = true;
                    i += 1;
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                "--" => {
                    f.program = args[i + 1..]
                        .iter()
                        .map(|s| s.as_ref().to_string())
                        .collect();
                    break;
                }
                s if s.starts_with('-') && f.program.is_empty() => {
                    return Err(format!("unknown option {s:?}\n{USAGE}"));
                }
                _ => {
                    f.program = args[i..].iter().map(|s| s.as_ref().to_string()).collect();
                    break;
                }
            }
        }
        f.np = np.ok_or_else(|| {
            format!("expected -np N (the number of processes), found none\n{USAGE}")
        })?;
        if f.program.is_empty() {
            return Err(format!("expected a PROGRAM to run, found none\n{USAGE}"));
        }
        Ok(f)
    }

    /// The mpirun command line, for a machine with `cores` cores; `openmpi` adds OpenMPI's
    /// options (`-x` to forward environment variables, `--oversubscribe`,
    /// `--allow-run-as-root`).
    pub fn command(&self, cores: usize, openmpi: bool) -> Vec<String> {
        let mut c = vec!["mpirun".to_string(), "-np".to_string(), self.np.to_string()];
        if let Some(h) = &self.hostfile {
            c.extend(["--hostfile".to_string(), h.clone()]);
        }
        if let Some(h) = &self.hosts {
            c.extend(["-H".to_string(), h.clone()]);
        }
        if openmpi {
            let on_this_machine = self.hostfile.is_none() && self.hosts.is_none();
            if self
                .oversubscribe
                .unwrap_or(on_this_machine && self.np > cores)
            {
                c.push("--oversubscribe".to_string());
            }
            if self.allow_root {
                c.push("--allow-run-as-root".to_string());
            }
            for v in FORWARDED_ENV {
                if std::env::var_os(v).is_some() {
                    c.extend(["-x".to_string(), v.to_string()]);
                }
            }
        }
        c.extend(self.mpirun_args.iter().cloned());
        c.extend(self.program.iter().cloned());
        c
    }
}

fn on_path(exe: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(exe).is_file()))
        .unwrap_or(false)
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The MPI library the program needs but cannot find, if `ldd` says so.
fn missing_mpi_library(program: &str) -> Option<String> {
    let out = Command::new("ldd").arg(program).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("libmpi") && l.contains("not found"))
        .map(|l| l.trim().to_string())
}

const INSTALL: &str = "install Open MPI: sudo apt-get install openmpi-bin libopenmpi-dev";

/// `fogrun`'s whole behaviour; returns the process exit code.
pub fn fogrun_main(args: &[String]) -> i32 {
    let f = match Fogrun::parse(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fogrun: {e}");
            return 2;
        }
    };
    if !on_path("mpirun") {
        eprintln!("fogrun: mpirun was not found on PATH: {INSTALL}");
        return 127;
    }
    let program = &f.program[0];
    let found = Path::new(program).is_file() || on_path(program);
    if !found {
        eprintln!(
            "fogrun: expected PROGRAM to be an executable file, found nothing at {program:?}"
        );
        return 127;
    }
    if let Some(lib) = missing_mpi_library(program) {
        eprintln!("fogrun: {program} needs the MPI library, which is missing ({lib}): {INSTALL}");
        return 127;
    }
    let version = Command::new("mpirun")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let openmpi = version.contains("Open MPI") || version.contains("OpenRTE");
    if openmpi && running_as_root() && !f.allow_root {
        eprintln!(
            "fogrun: running as root, which Open MPI refuses; in a container pass \
             --allow-run-as-root"
        );
        return 2;
    }
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    let cmd = f.command(cores, openmpi);
    if f.dry_run {
        println!("{}", cmd.join(" "));
        return 0;
    }
    let mut child = Command::new(&cmd[0]);
    child.args(&cmd[1..]);
    if f.allow_root {
        child
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    match child.status() {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("fogrun: could not start mpirun: {e}");
            127
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_build_commands() {
        let f = Fogrun::parse(&["-np", "8", "--allow-run-as-root", "prog", "--np", "3"]).unwrap();
        assert_eq!(f.program, vec!["prog", "--np", "3"]);
        let c = f.command(2, true);
        assert!(c.starts_with(&["mpirun".into(), "-np".into(), "8".into()]));
        assert!(
            c.contains(&"--oversubscribe".to_string())
                && c.contains(&"--allow-run-as-root".to_string())
        );
        assert!(!f.command(16, true).contains(&"--oversubscribe".to_string()));
        let h = Fogrun::parse(&["-np", "8", "--hostfile", "hosts", "--", "prog"]).unwrap();
        let c = h.command(2, true);
        assert!(c.windows(2).any(|w| w == ["--hostfile", "hosts"]));
        assert!(
            !c.contains(&"--oversubscribe".to_string()),
            "hosts decide the slots"
        );
        assert!(!Fogrun::parse(&["-np", "8", "prog"])
            .unwrap()
            .command(2, false)
            .contains(&"--oversubscribe".to_string()));
        assert!(Fogrun::parse(&["-np", "zero", "p"])
            .unwrap_err()
            .contains("positive number"));
        assert!(Fogrun::parse(&["-np", "2"])
            .unwrap_err()
            .contains("expected a PROGRAM"));
        assert!(Fogrun::parse(&["-np", "2", "--bogus", "p"])
            .unwrap_err()
            .contains("unknown option"));
    }
}
