//! The rank handle [`Fog`] (BlueFog's `bf`) and [`run`], which starts the ranks.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use dfdx::tensor::{Cpu, Tensor, TensorFromVec};

use crate::ops::nonblocking::CommThread;
use crate::tensor::Element;
use crate::topology::{self, Topology};
use crate::transport::local::LocalWorld;
use crate::transport::Transport;
use crate::{Error, Result};

/// How ranks are run.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a collective waits for the other ranks before it fails with
    /// [`Error::Timeout`]. Default: 120 s, or `FOGKIT_TIMEOUT` (seconds) when set.
    pub timeout: Duration,
    /// Stack size of each rank's thread (default 16 MiB).
    pub stack_size: usize,
    /// In-process ranks per emulated machine (default: all on one machine, or
    /// `FOGKIT_LOCAL_SIZE`); must divide the number of ranks. Under MPI the machines are
    /// the hosts.
    pub local_size: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        let timeout = std::env::var("FOGKIT_TIMEOUT")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(120));
        let local_size = std::env::var("FOGKIT_LOCAL_SIZE")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        Config {
            timeout,
            stack_size: 16 << 20,
            local_size,
        }
    }
}

impl Config {
    /// Sets the collective timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Groups in-process ranks into emulated machines of `local_size` ranks.
    pub fn local_size(mut self, local_size: usize) -> Self {
        self.local_size = Some(local_size);
        self
    }
}

/// One rank's view of the network: its rank, the topology, and every collective.
///
/// Created by [`run`]; each rank's closure gets `&Fog`.
pub struct Fog {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) topology: RefCell<Arc<Topology>>,
    pub(crate) machine_topology: RefCell<Arc<Topology>>,
    pub(crate) comm: RefCell<Option<CommThread>>,
    device: Cpu,
}

impl Fog {
    pub(crate) fn new(transport: Arc<dyn Transport>) -> Self {
        let n = transport.size();
        let machines = transport.machine().machine_size;
        Fog {
            transport,
            topology: RefCell::new(Arc::new(topology::exponential_two(n))),
            machine_topology: RefCell::new(Arc::new(topology::exponential_two(machines))),
            comm: RefCell::new(None),
            device: Cpu::default(),
        }
    }

    /// This rank, `0..size()`.
    pub fn rank(&self) -> usize {
        self.transport.rank()
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.transport.size()
    }

    /// The transport's name: `"local"` (threads in this process) or `"mpi"`.
    pub fn transport_name(&self) -> &'static str {
        self.transport.name()
    }

    /// The transport and how it moves data, e.g. `"mpi (neighbours read in place)"`.
    pub fn transport_description(&self) -> String {
        self.transport.describe()
    }

    /// The dfdx device tensors are made on.
    pub fn device(&self) -> &Cpu {
        &self.device
    }

    /// A 1-D dfdx tensor holding `data`, on this rank's device.
    ///
    /// ```
    /// let v = fogkit::run(2, |bf| bf.tensor_from(&[bf.rank() as f64, 1.0])).unwrap();
    /// assert_eq!(v[1].as_vec(), vec![1.0, 1.0]);
    /// ```
    pub fn tensor_from<E: Element + dfdx::dtypes::Unit>(
        &self,
        data: &[E],
    ) -> Result<Tensor<(usize,), E, Cpu>> {
        self.device
            .try_tensor_from_vec(data.to_vec(), (data.len(),))
            .map_err(|e| Error::Tensor(format!("could not build tensor: {e}")))
    }

    /// The topology in force (default: [`topology::exponential_two`], as BlueFog's).
    pub fn topology(&self) -> Arc<Topology> {
        Arc::clone(&self.topology.borrow())
    }

    /// Ranks this rank receives from under the current topology, ascending.
    pub fn in_neighbor_ranks(&self) -> Vec<usize> {
        self.topology.borrow().in_neighbors(self.rank())
    }

    /// Ranks this rank sends to under the current topology, ascending.
    pub fn out_neighbor_ranks(&self) -> Vec<usize> {
        self.topology.borrow().out_neighbors(self.rank())
    }
}

/// Outcome of one rank's closure.
enum Outcome<R> {
    Done(R),
    Failed(Error),
    Panicked(String),
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Runs `f` on `n` ranks and returns each rank's result in rank order.
///
/// The ranks are threads of this process (the `local` transport, the embedded default);
/// `f` may borrow from the caller. If any rank fails, the result is `Err`: a panicking
/// rank gives [`Error::RankPanicked`] with its message, an `Err` from `f` gives
/// [`Error::RankFailed`]; other ranks blocked in collectives with it fail instead of
/// hanging.
///
/// ```
/// use fogkit::prelude::*;
/// let xs = fogkit::run(4, |bf: &Fog| -> fogkit::Result<_> {
///     bf.set_topology(topology::ring(bf.size()))?;
///     let mut x = vec![bf.rank() as f64];
///     for _ in 0..100 {
///         x = bf.neighbor_allreduce(&x)?;
///     }
///     Ok(x[0])
/// })
/// .unwrap();
/// assert!(xs.iter().all(|v| (v - 1.5).abs() < 1e-12));
/// ```
pub fn run<R, E, F>(n: usize, f: F) -> Result<Vec<R>>
where
    F: Fn(&Fog) -> std::result::Result<R, E> + Sync,
    R: Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    run_with(Config::default(), n, f)
}

/// [`run`] with a [`Config`] (e.g. a shorter collective timeout).
pub fn run_with<R, E, F>(config: Config, n: usize, f: F) -> Result<Vec<R>>
where
    F: Fn(&Fog) -> std::result::Result<R, E> + Sync,
    R: Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if n == 0 {
        return Err(Error::InvalidArgument(
            "expected at least 1 rank, found 0".into(),
        ));
    }
    if crate::launch::launched_by_mpirun() {
        return run_mpi::<R, E, F>(config, n, &f);
    }
    let world = LocalWorld::new(n, config.timeout, config.local_size.unwrap_or(n))?;
    let f = &f;
    let outcomes: Vec<Outcome<R>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|rank| {
                let world = Arc::clone(&world);
                std::thread::Builder::new()
                    .name(format!("fogkit-rank-{rank}"))
                    .stack_size(config.stack_size)
                    .spawn_scoped(s, move || {
                        single_threaded_kernels(n, config.stack_size, || {
                            let fog = Fog::new(Arc::new(world.endpoint(rank)));
                            let res = catch_unwind(AssertUnwindSafe(|| f(&fog)));
                            match res {
                                Ok(r) => {
                                    // Finish this rank's nonblocking work before leaving.
                                    let drained = fog.shutdown();
                                    world.leave(rank, describe_exit(&r), false);
                                    match (r, drained) {
                                        (Ok(v), Ok(())) => Outcome::Done(v),
                                        (Ok(_), Err(e)) => Outcome::Failed(e),
                                        (Err(e), _) => Outcome::Failed(into_error(rank, e.into())),
                                    }
                                }
                                Err(p) => {
                                    let msg = panic_message(&*p);
                                    world.leave(rank, format!("panicked: {msg}"), true);
                                    drop(fog.shutdown());
                                    Outcome::Panicked(msg)
                                }
                            }
                        })
                    })
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(rank, h)| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|p| Outcome::Panicked(panic_message(&*p))),
                Err(e) => Outcome::Failed(Error::InvalidArgument(format!(
                    "could not start the thread of rank {rank}: {e}"
                ))),
            })
            .collect()
    });
    collect_outcomes(outcomes)
}

/// Runs a rank's body where dfdx's matrix kernels stay on the rank's own thread: with
/// several ranks on one machine the ranks already fill the cores, and sharing rayon's
/// global pool between them only adds hand-offs (measured: 4 ranks training an MLP on 2
/// cores ran 25% faster). One rank alone keeps the global pool.
fn single_threaded_kernels<T: Send>(
    ranks: usize,
    stack_size: usize,
    body: impl FnOnce() -> T + Send,
) -> T {
    if ranks > 1 {
        if let Ok(pool) = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .stack_size(stack_size)
            .build()
        {
            return pool.install(body);
        }
    }
    body()
}

fn describe_exit<R, E>(r: &std::result::Result<R, E>) -> String {
    match r {
        Ok(_) => "returned from its closure".into(),
        Err(_) => "returned an error from its closure".into(),
    }
}

fn into_error(rank: usize, e: Box<dyn std::error::Error + Send + Sync>) -> Error {
    match e.downcast::<Error>() {
        Ok(fe) => *fe,
        Err(other) => Error::RankFailed {
            rank,
            source: other,
        },
    }
}

/// All results, or the most telling error: the first panic, else the first root-cause
/// error, else the first error (in rank order).
fn collect_outcomes<R>(outcomes: Vec<Outcome<R>>) -> Result<Vec<R>> {
    let mut results = Vec::with_capacity(outcomes.len());
    let mut panic: Option<Error> = None;
    let mut root: Option<Error> = None;
    let mut any: Option<Error> = None;
    for (rank, o) in outcomes.into_iter().enumerate() {
        match o {
            Outcome::Done(v) => results.push(v),
            Outcome::Panicked(message) => {
                panic.get_or_insert(Error::RankPanicked { rank, message });
            }
            Outcome::Failed(e) => {
                if !e.is_consequence() && root.is_none() {
                    root = Some(e);
                } else if any.is_none() {
                    any = Some(e);
                }
            }
        }
    }
    match panic.or(root).or(any) {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

/// Under mpirun: `f` runs once, on this process's rank. A failing rank ends the whole job
/// (after printing its error), since the other processes may be waiting for it.
#[cfg(feature = "mpi")]
fn run_mpi<R, E, F>(config: Config, n: usize, f: &F) -> Result<Vec<R>>
where
    F: Fn(&Fog) -> std::result::Result<R, E> + Sync,
    R: Send,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use crate::transport::mpi::{abort_job, MpiTransport};
    let t = MpiTransport::new(config.timeout, config.local_size)?;
    if t.size() != n {
        return Err(Error::InvalidArgument(format!(
            "run({n}) was started by mpirun with {} processes: expected `mpirun -np {n}` \
             (or pass fogkit::launched_size() to run)",
            t.size()
        )));
    }
    let rank = t.rank();
    if n > 1 {
        // One process per rank: keep dfdx's kernels on this process's thread (see
        // `single_threaded_kernels`); fails harmlessly if the pool already exists.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
    }
    let fog = Fog::new(Arc::new(t));
    match catch_unwind(AssertUnwindSafe(|| f(&fog))) {
        Ok(Ok(v)) => {
            fog.shutdown()?;
            Ok(vec![v])
        }
        Ok(Err(e)) => {
            let e = into_error(rank, e.into());
            abort_job(
                &format!("fogkit: rank {rank} failed: {e}; ending the MPI job"),
                1,
            )
        }
        Err(p) => abort_job(
            &format!(
                "fogkit: rank {rank} panicked: {}; ending the MPI job",
                panic_message(&*p)
            ),
            101,
        ),
    }
}

#[cfg(not(feature = "mpi"))]
#[allow(clippy::extra_unused_type_parameters)] // same signature as the MPI build's
fn run_mpi<R, E, F>(_config: Config, _n: usize, _f: &F) -> Result<Vec<R>> {
    Err(Error::InvalidArgument(
        "this process was started by mpirun, but fogkit was built without its `mpi` feature: \
         expected a build with `--features fogkit/mpi` (or run it without mpirun for \
         in-process ranks)"
            .into(),
    ))
}
