//! The one selection point: which transport a job's ranks use. `run` calls [`connect`]
//! (and so will the notebook engines); nothing else constructs a transport for them.

use std::sync::Arc;
use std::time::Duration;

use super::local::LocalWorld;
use super::{OpId, Transport};
use crate::{Error, Result};

/// True when this process was started by `mpirun` (OpenMPI, MPICH/hydra or PMIx).
pub fn launched_by_mpirun() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// The number of processes `mpirun` started, when known: lets one program run with
/// `fogkit::run(fogkit::launched_size().unwrap_or(8), ...)` both ways.
pub fn launched_size() -> Option<usize> {
    let var = |v: &str| std::env::var(v).ok()?.trim().parse().ok();
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| var(v))
        // `srun --mpi=pmix` sets PMIX_RANK and Slurm's task count, not a PMI size.
        .or_else(|| std::env::var_os("PMIX_RANK").and_then(|_| var("SLURM_NTASKS")))
}

/// What a job asks of its transport.
#[derive(Clone, Debug)]
pub struct Want {
    /// Ranks in the job.
    pub ranks: usize,
    /// How long a call waits for its peers before it fails.
    pub timeout: Duration,
    /// Ranks per (emulated) machine; `None`: the hosts (or one machine in-process).
    pub local_size: Option<usize>,
}

/// The endpoints of the ranks that live in this process, in rank order: all of them for
/// in-process ranks, this process's one under `mpirun`.
///
/// ```
/// use fogkit::ops::Op;
/// use fogkit::transport::{connect, Want};
/// let want = Want { ranks: 3, timeout: std::time::Duration::from_secs(5), local_size: None };
/// let here = connect::<Op>(&want).unwrap();
/// assert_eq!(here.iter().map(|t| t.rank()).collect::<Vec<_>>(), vec![0, 1, 2]);
/// assert_eq!(here[0].name(), "local");
/// ```
pub fn connect<O: OpId>(want: &Want) -> Result<Vec<Arc<dyn Transport<O>>>> {
    if want.ranks == 0 {
        return Err(Error::InvalidArgument(
            "expected at least 1 rank, found 0".into(),
        ));
    }
    if launched_by_mpirun() {
        return connect_mpi(want);
    }
    let world = LocalWorld::<O>::new(want.ranks, want.timeout, want.local_size)?;
    Ok((0..want.ranks)
        .map(|r| Arc::new(world.endpoint(r)) as Arc<dyn Transport<O>>)
        .collect())
}

#[cfg(feature = "mpi")]
fn connect_mpi<O: OpId>(want: &Want) -> Result<Vec<Arc<dyn Transport<O>>>> {
    let t = super::mpi::MpiTransport::new(want.timeout, want.local_size)?;
    let size = Transport::<O>::size(&t);
    if size != want.ranks {
        return Err(Error::InvalidArgument(format!(
            "run({}) was started by mpirun with {size} processes: expected `mpirun -np {}` \
             (or pass fogkit::launched_size() to run)",
            want.ranks, want.ranks
        )));
    }
    Ok(vec![Arc::new(t)])
}

#[cfg(not(feature = "mpi"))]
fn connect_mpi<O: OpId>(_want: &Want) -> Result<Vec<Arc<dyn Transport<O>>>> {
    Err(Error::InvalidArgument(
        "this process was started by mpirun, but fogkit was built without its `mpi` feature: \
         expected a build with `--features fogkit/mpi` (or run it without mpirun for \
         in-process ranks)"
            .into(),
    ))
}
