//! `fogrun`, fogkit's `bfrun`: turns `fogrun -np N [hosts] PROGRAM ARGS` into the mpirun
//! command that runs PROGRAM as N fogkit ranks (on this machine or across hosts), checks
//! what would make every rank fail before starting any, and runs it.
//!
//! It must never start a job it can tell will fail (no mpirun, no program, a program
//! without the MPI library), and never hide the command it runs (`--verbose`, `--dry-run`).

use std::path::Path;
use std::process::Command;

const USAGE: &str = "usage: fogrun -np N [OPTIONS] [--] PROGRAM [ARGS...]";

const HELP: &str = "\
Runs PROGRAM (a fogkit program built with the `mpi` feature) as N ranks under mpirun,
one process per rank, on this machine or across hosts.

Options:
  -np, -n N                  number of processes (ranks)
  -H, --host HOST:SLOTS,...  hosts to run on, with how many ranks each
  --hostfile FILE            hosts to run on, one `HOST slots=K` per line
  --network-interface NET    the network between hosts: an interface name (eth0) or a
                             subnet (10.0.0.0/24), for MPI's data and its daemons
  --mca KEY VALUE            an Open MPI parameter, passed to mpirun (with hosts and
                             no `osc` of yours, fogrun passes `--mca osc ^pt2pt`: RMA
                             windows between hosts then use osc/ucx, which takes threads)
  -x, --env NAME             forward the environment variable NAME as well
  --mpirun-arg ARG           one more argument for mpirun, as given
  --oversubscribe            allow more ranks than cores (default on this machine
                             alone when N exceeds its cores)
  --no-oversubscribe         never allow more ranks than cores
  --allow-run-as-root        accepted for mpirun's sake (fogrun passes it whenever it
                             runs as root, as in containers)
  --skip-mpi-check           start PROGRAM even when it does not link the MPI library
  --verbose                  print the mpirun command, then run it
  --dry-run                  print the mpirun command, run nothing
  --version                  print fogrun's and mpirun's versions
  -h, --help                 print this help

When a rank ends the job (an error, a panic, a deadline) and mpirun has not finished
within 8 s (it can wait forever for a host it cannot reach), fogrun ends mpirun and
its processes on this machine; ranks on unreachable hosts end on their own deadline.

Ranks are placed by slot (each host's ranks consecutive, as fogkit's machine-level ops
expect) and not bound to cores. Every FOGKIT_* variable (FOGKIT_TIMEOUT, FOGKIT_TIMELINE,
...), RUST_LOG, RUST_BACKTRACE, RAYON_NUM_THREADS, OMP_NUM_THREADS and POLARS_* is
forwarded to every rank on every host.

Examples:
  fogrun -np 4 ./target/release/examples/consensus_dsgd
  fogrun -np 8 -H server1:4,server2:4 --network-interface eth0 ./my_program --epochs 2
";

/// Whether `fogrun` forwards the environment variable `name` to every rank.
///
/// ```
/// assert!(fogkit::launch::forwarded("FOGKIT_DATA"));
/// assert!(!fogkit::launch::forwarded("HOME"));
/// ```
pub fn forwarded(name: &str) -> bool {
    name.starts_with("FOGKIT_")
        || name.starts_with("POLARS_")
        || matches!(
            name,
            "RUST_LOG" | "RUST_BACKTRACE" | "RAYON_NUM_THREADS" | "OMP_NUM_THREADS"
        )
}

/// What `fogrun` was asked to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fogrun {
    /// Number of processes.
    pub np: usize,
    /// `--hostfile FILE`, passed to mpirun.
    pub hostfile: Option<String>,
    /// `-H host:slots,...`, passed to mpirun.
    pub hosts: Option<String>,
    /// Pass `--allow-run-as-root` (the user asked, or fogrun runs as root).
    pub allow_root: bool,
    /// Oversubscribe: `Some` when the user chose, `None` to decide from the core count.
    pub oversubscribe: Option<bool>,
    /// `--network-interface`: an interface name or a subnet.
    pub network: Option<String>,
    /// `--mca KEY VALUE` pairs.
    pub mca: Vec<(String, String)>,
    /// `-x NAME`: more environment variables to forward.
    pub env: Vec<String>,
    /// Extra arguments for mpirun.
    pub mpirun_args: Vec<String>,
    /// Start the program even if it does not link the MPI library.
    pub skip_mpi_check: bool,
    /// Print the command before running it.
    pub verbose: bool,
    /// Print the command instead of running it.
    pub dry_run: bool,
    /// The program and its arguments.
    pub program: Vec<String>,
}

/// What the command line asks for besides a run.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run (or print) this.
    Run(Fogrun),
    /// `--help`.
    Help,
    /// `--version`.
    Version,
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
        match Self::parse_all(args)? {
            Parsed::Run(f) => Ok(f),
            Parsed::Help | Parsed::Version => Err(USAGE.to_string()),
        }
    }

    /// Parses `fogrun`'s arguments, `--help` and `--version` included.
    pub fn parse_all<S: AsRef<str>>(args: &[S]) -> Result<Parsed, String> {
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
            let mut step = 2;
            match a {
                "-np" | "-n" | "--np" => {
                    let v = value(i, a)?;
                    np = Some(v.parse().ok().filter(|&n: &usize| n > 0).ok_or_else(|| {
                        format!("{a} expects a positive number of processes, found {v:?}")
                    })?);
                }
                "--hostfile" | "-hostfile" | "--machinefile" => f.hostfile = Some(value(i, a)?),
                "-H" | "--host" => f.hosts = Some(value(i, a)?),
                "--network-interface" => f.network = Some(value(i, a)?),
                "--mca" | "-mca" => {
                    let key = value(i, a)?;
                    let v = value(i + 1, &format!("{a} {key}"))?;
                    f.mca.push((key, v));
                    step = 3;
                }
                "-x" | "--env" => f.env.push(value(i, a)?),
                "--mpirun-arg" => f.mpirun_args.push(value(i, a)?),
                "--allow-run-as-root" => (f.allow_root, step) = (true, 1),
                "--oversubscribe" => (f.oversubscribe, step) = (Some(true), 1),
                "--no-oversubscribe" => (f.oversubscribe, step) = (Some(false), 1),
                "--skip-mpi-check" => (f.skip_mpi_check, step) = (true, 1),
                "--verbose" | "-v" => (f.verbose, step) = (true, 1),
                "--dry-run" => (f.dry_run, step) = (true, 1),
                "-h" | "--help" => return Ok(Parsed::Help),
                "--version" => return Ok(Parsed::Version),
                "--" => {
                    f.program = args[i + 1..]
                        .iter()
                        .map(|s| s.as_ref().to_string())
                        .collect();
                    break;
                }
                s if s.starts_with('-') => {
                    return Err(format!(
                        "unknown option {s:?} (fogrun --help lists them; pass mpirun's own \
                         with --mpirun-arg)\n{USAGE}"
                    ));
                }
                _ => {
                    f.program = args[i..].iter().map(|s| s.as_ref().to_string()).collect();
                    break;
                }
            }
            i += step;
        }
        f.np = np.ok_or_else(|| {
            format!("expected -np N (the number of processes), found none\n{USAGE}")
        })?;
        if f.program.is_empty() {
            return Err(format!("expected a PROGRAM to run, found none\n{USAGE}"));
        }
        Ok(Parsed::Run(f))
    }

    /// Whether the user chose Open MPI's one-sided component: `--mca osc`, `--mpirun-arg
    /// --mca --mpirun-arg osc`, `OMPI_MCA_osc`, or an `osc` line in the user's own
    /// `~/.openmpi/mca-params.conf`. (Not the system's file: Debian's excludes osc/ucx,
    /// its comment citing open-mpi/ompi#8367, which leaves no component for windows
    /// between hosts.)
    fn osc_chosen(&self) -> bool {
        let on_line = self.mca.iter().any(|(k, _)| k == "osc")
            || self
                .mpirun_args
                .windows(2)
                .any(|w| matches!(w[0].as_str(), "--mca" | "-mca" | "--gmca") && w[1] == "osc");
        let own_file = std::env::var_os("HOME")
            .map(|h| std::path::PathBuf::from(h).join(".openmpi/mca-params.conf"))
            .and_then(|f| std::fs::read_to_string(f).ok())
            .is_some_and(|t| {
                t.lines()
                    .any(|l| l.split('=').next().map(str::trim) == Some("osc"))
            });
        on_line || own_file || std::env::var_os("OMPI_MCA_osc").is_some()
    }

    /// The mpirun command line, for a machine with `cores` cores; `openmpi` adds Open
    /// MPI's options (`-x` to forward environment variables, placement, interfaces,
    /// `--oversubscribe`, `--allow-run-as-root`).
    pub fn command(&self, cores: usize, openmpi: bool) -> Vec<String> {
        let mut c = vec!["mpirun".to_string(), "-np".to_string(), self.np.to_string()];
        if let Some(h) = &self.hostfile {
            c.extend(["--hostfile".to_string(), h.clone()]);
        }
        if let Some(h) = &self.hosts {
            c.extend(["-H".to_string(), h.clone()]);
        }
        let s = |x: &str| x.to_string();
        if openmpi {
            let on_this_machine = self.hostfile.is_none() && self.hosts.is_none();
            if self
                .oversubscribe
                .unwrap_or(on_this_machine && self.np > cores)
            {
                c.push(s("--oversubscribe"));
            }
            if self.allow_root {
                c.push(s("--allow-run-as-root"));
            }
            // Each host's ranks consecutive; a rank's threads free to use any core.
            c.extend([s("--map-by"), s("slot"), s("--bind-to"), s("none")]);
            if let Some(net) = &self.network {
                for key in ["btl_tcp_if_include", "oob_tcp_if_include"] {
                    c.extend([s("--mca"), s(key), net.clone()]);
                }
            }
            for (k, v) in &self.mca {
                c.extend([s("--mca"), k.clone(), v.clone()]);
            }
            // RMA windows between hosts: Open MPI 4 would pick osc/pt2pt over TCP, which
            // refuses the MPI_THREAD_MULTIPLE fogkit asks for, or find none where the
            // system's parameters exclude both pt2pt and ucx (Debian's do); this enables
            // osc/ucx for them. Only for jobs given hosts (on one host osc/sm serves every
            // window), and never over an osc the user chose.
            let across_hosts = self.hostfile.is_some() || self.hosts.is_some();
            if across_hosts && !self.osc_chosen() {
                c.extend([s("--mca"), s("osc"), s("^pt2pt")]);
            }
            let mut names: Vec<String> = std::env::vars_os()
                .filter_map(|(k, _)| k.into_string().ok())
                .filter(|k| forwarded(k))
                .collect();
            names.sort();
            names.extend(self.env.iter().cloned());
            for v in names {
                c.extend([s("-x"), v]);
            }
        }
        c.extend(self.mpirun_args.iter().cloned());
        c.extend(self.program.iter().cloned());
        c
    }
}

/// `words` as one line a shell would run as the same command.
fn shell_line(words: &[String]) -> String {
    let quote = |w: &String| {
        let plain = !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
        if plain {
            w.clone()
        } else {
            format!("'{}'", w.replace('\'', r"'\''"))
        }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
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

/// What is wrong with the program's MPI library, if `ldd` can tell: missing, or not
/// linked at all (a fogkit program built without the `mpi` feature).
fn mpi_library_problem(program: &str) -> Option<String> {
    let out = Command::new("ldd").arg(program).output().ok()?;
    if !out.status.success() {
        return None; // not a dynamic executable (a script, a static binary): cannot tell
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mpi: Vec<&str> = text.lines().filter(|l| l.contains("libmpi")).collect();
    if let Some(l) = mpi.iter().find(|l| l.contains("not found")) {
        return Some(format!(
            "{program} needs the MPI library, which is missing ({}): {INSTALL}",
            l.trim()
        ));
    }
    mpi.is_empty().then(|| {
        format!(
            "{program} does not link the MPI library: build it with fogkit's `mpi` feature \
             (e.g. cargo build --release --features fogkit/mpi), or each of the N processes \
             would run alone (--skip-mpi-check starts it anyway)"
        )
    })
}

const INSTALL: &str = "install Open MPI: sudo apt-get install openmpi-bin libopenmpi-dev";

fn mpirun_version() -> String {
    Command::new("mpirun")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `fogrun`'s whole behaviour; returns the process exit code.
pub fn fogrun_main(args: &[String]) -> i32 {
    let mut f = match Fogrun::parse_all(args) {
        Ok(Parsed::Run(f)) => f,
        Ok(Parsed::Help) => {
            println!("{USAGE}\n\n{HELP}");
            return 0;
        }
        Ok(Parsed::Version) => {
            let mpi = mpirun_version();
            let mpi = mpi.lines().next().unwrap_or("mpirun: not found on PATH");
            println!("fogrun (fogkit) {}\n{mpi}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
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
    if let Some(problem) = mpi_library_problem(program).filter(|_| !f.skip_mpi_check) {
        eprintln!("fogrun: {problem}");
        return 127;
    }
    let version = mpirun_version();
    let openmpi = version.contains("Open MPI") || version.contains("OpenRTE");
    // bfrun's habit: containers run as root, and Open MPI refuses root unless told.
    f.allow_root |= openmpi && running_as_root();
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    let cmd = f.command(cores, openmpi);
    if f.dry_run {
        println!("{}", shell_line(&cmd));
        return 0;
    }
    if f.verbose {
        eprintln!("fogrun: {}", shell_line(&cmd));
    }
    let mut child = Command::new(&cmd[0]);
    child.args(&cmd[1..]);
    if f.allow_root {
        child
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    super::guard::run_guarded(child)
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

    #[test]
    fn hosts_interfaces_and_parameters_reach_mpirun() {
        let args = [
            "-np",
            "4",
            "-H",
            "a:2,b:2",
            "--network-interface",
            "10.0.0.0/24",
            "--mca",
            "btl",
            "tcp,self",
            "-x",
            "MY_VAR",
            "prog",
        ];
        let c = Fogrun::parse(&args).unwrap().command(2, true);
        let has = |w: &[&str]| c.windows(w.len()).any(|x| x == w);
        assert!(has(&["-H", "a:2,b:2"]), "{c:?}");
        assert!(has(&["--map-by", "slot", "--bind-to", "none"]), "{c:?}");
        assert!(
            has(&["--mca", "btl_tcp_if_include", "10.0.0.0/24"]),
            "{c:?}"
        );
        assert!(
            has(&["--mca", "oob_tcp_if_include", "10.0.0.0/24"]),
            "{c:?}"
        );
        assert!(has(&["--mca", "btl", "tcp,self"]), "{c:?}");
        assert!(has(&["-x", "MY_VAR"]), "{c:?}");
        assert_eq!(c.last().map(String::as_str), Some("prog"));
        // RMA between hosts needs an osc that takes MPI_THREAD_MULTIPLE; a user's choice wins.
        let chosen_here = Fogrun::parse(&["-np", "1", "p"]).unwrap().osc_chosen();
        if !chosen_here {
            assert!(has(&["--mca", "osc", "^pt2pt"]), "{c:?}");
        }
        for own in [
            &["-np", "2", "-H", "a,b", "--mca", "osc", "ucx", "prog"][..],
            &[
                "-np",
                "2",
                "-H",
                "a,b",
                "--mpirun-arg",
                "--mca",
                "--mpirun-arg",
                "osc",
                "p",
            ][..],
            &["-np", "2", "prog"][..], // one host: osc/sm serves every window
        ] {
            let c = Fogrun::parse(own).unwrap().command(2, true);
            assert!(!c.iter().any(|w| w == "^pt2pt"), "{c:?}");
        }
        assert_eq!(
            Fogrun::parse_all(&["--help"]).unwrap(),
            Parsed::Help,
            "help before anything else"
        );
        assert_eq!(
            Fogrun::parse_all(&["-np", "2", "--version"]).unwrap(),
            Parsed::Version
        );
        assert!(Fogrun::parse(&["-np", "2", "--mca", "btl"])
            .unwrap_err()
            .contains("--mca btl expects a value"));
    }

    #[test]
    fn printed_commands_quote_what_a_shell_would_split() {
        let words = ["mpirun", "-x", "A B", "it's"].map(String::from);
        assert_eq!(shell_line(&words), r"mpirun -x 'A B' 'it'\''s'");
    }
}
