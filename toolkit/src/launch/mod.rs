//! Starting ranks. In-process ranks are [`run`](crate::run)'s default; processes under
//! `mpirun` are started by `fogrun` (BlueFog's `bfrun`), whose logic lives here.
//!
//! ```text
//! fogrun -np 4 ./my_program ARGS...          # 4 processes on this machine
//! fogrun -np 16 --hostfile hosts ./my_program  # across machines
//! ```

mod config;
mod fogrun;
mod guard;
mod init;
mod memory;
mod ranks;
mod run;

pub use config::Config;
pub use fogrun::{fogrun_main, forwarded, Fogrun, Parsed};
pub use init::{init, init_with};
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
