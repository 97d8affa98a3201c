//! [`run`]: starts a job's ranks on the transport [`connect`] chooses (threads of this
//! process, or this process's rank under `mpirun`), runs the closure on each, and
//! collects what they return as [`Ranks`]. It never leaves a rank blocked: a rank that
//! fails or panics is reported to its transport, which releases the others.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::config::Config;
use super::ranks::Ranks;
use crate::ops::{Comm, Op};
use crate::transport::{connect, Exit, Transport, Want};
use crate::{timeline, Error, Fog, Result};

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

/// Runs `f` on `n` ranks and returns each rank's result as [`Ranks`]: every rank's,
/// in rank order, for in-process ranks; this process's rank's under `mpirun`.
///
/// By default the ranks are threads of this process (the `local` transport, the
/// embedded default) and `f` may borrow from the caller. Started by `mpirun` (or
/// `fogrun`), the same program runs one rank per process over MPI (feature `mpi`). If
/// any rank fails, the result is `Err`: a panicking rank gives [`Error::RankPanicked`]
/// with its message, an error of the caller's own ([`Error::other`]) gives
/// [`Error::RankFailed`]; other ranks blocked in collectives with it fail instead of
/// hanging. Under `mpirun` a failing rank ends the whole job after printing its error.
///
/// The closure returns [`fogkit::Result`](crate::Result), so `?` works without
/// annotations:
/// ```
/// use fogkit::prelude::*;
/// let xs = fogkit::run(4, |bf| {
///     bf.set_topology(topology::ring(bf.size()))?;
///     let mut x = vec![bf.rank() as f64];
///     for _ in 0..100 {
///         x = bf.neighbor_allreduce(&x)?;
///     }
///     Ok(x[0])
/// })
/// .unwrap();
/// assert!(xs.iter().all(|(_, v)| (v - 1.5).abs() < 1e-12));
/// ```
pub fn run<R, F>(n: usize, f: F) -> Result<Ranks<R>>
where
    F: Fn(&Fog) -> Result<R> + Sync,
    R: Send,
{
    run_with(Config::default(), n, f)
}

/// [`run`] with a [`Config`] (e.g. a shorter collective timeout, or a timeline).
pub fn run_with<R, F>(config: Config, n: usize, f: F) -> Result<Ranks<R>>
where
    F: Fn(&Fog) -> Result<R> + Sync,
    R: Send,
{
    super::memory::keep_freed_memory();
    let want = Want {
        ranks: n,
        timeout: config.timeout,
        local_size: config.local_size,
    };
    let here = connect::<Op>(&want)?;
    let first = here.first().map_or(0, |t| t.rank());
    let (f, config) = (&f, &config);
    let outcomes: Vec<Outcome<R>> = std::thread::scope(|s| {
        let handles: Vec<_> = here
            .into_iter()
            .map(|t| {
                let rank = t.rank();
                std::thread::Builder::new()
                    .name(format!("fogkit-rank-{rank}"))
                    .stack_size(config.stack_size)
                    .spawn_scoped(s, move || rank_main(config, n, t, f))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|p| Outcome::Panicked(panic_message(&*p))),
                Err(e) => Outcome::Failed(Error::InvalidArgument(format!(
                    "could not start the thread of rank {}: {e}",
                    first + i
                ))),
            })
            .collect()
    });
    collect_outcomes(n, first, outcomes)
}

/// One rank's thread: its timeline (if asked for), its kernels' thread pool, its
/// communicator, the closure, and telling the transport how it left.
fn rank_main<R, F>(config: &Config, n: usize, t: Arc<dyn Transport<Op>>, f: &F) -> Outcome<R>
where
    F: Fn(&Fog) -> Result<R> + Sync,
    R: Send,
{
    let rank = t.rank();
    let recorder = match &config.timeline {
        Some(prefix) => match timeline::Recorder::start(prefix, rank) {
            Ok(r) => Some(r),
            Err(e) => {
                t.leave(&Exit::Failed(e.to_string()));
                return Outcome::Failed(e);
            }
        },
        None => None,
    };
    let body = || {
        {
            let fog = Fog::new(Comm::new(Arc::clone(&t)));
            match catch_unwind(AssertUnwindSafe(|| f(&fog))) {
                Ok(r) => {
                    // Finish this rank's nonblocking work before leaving.
                    let drained = fog.shutdown();
                    let r = r.map_err(|e| into_rank_error(rank, e));
                    match (r, drained) {
                        (Ok(v), Ok(())) => {
                            t.leave(&Exit::Returned);
                            Outcome::Done(v)
                        }
                        (Err(e), _) | (Ok(_), Err(e)) => {
                            t.leave(&Exit::Failed(e.to_string()));
                            Outcome::Failed(e)
                        }
                    }
                }
                Err(p) => {
                    let msg = panic_message(&*p);
                    t.leave(&Exit::Panicked(msg.clone()));
                    drop(fog.shutdown());
                    Outcome::Panicked(msg)
                }
            }
        }
    };
    single_threaded_kernels(rank, n, config.stack_size, || match recorder {
        Some(r) => match r.record(body) {
            (Outcome::Done(_), Err(e)) => Outcome::Failed(e),
            (out, _) => out,
        },
        None => body(),
    })
}

/// Runs a rank's body where dfdx's matrix kernels stay on the rank's own thread: with
/// several ranks on one machine the ranks already fill the cores, and sharing rayon's
/// global pool between them only adds hand-offs (measured: 4 ranks training an MLP on 2
/// cores ran 25% faster). One rank alone keeps the global pool. The body runs on the
/// pool's one thread, named after the rank as the rank's own thread is.
fn single_threaded_kernels<T: Send>(
    rank: usize,
    ranks: usize,
    stack_size: usize,
    body: impl FnOnce() -> T + Send,
) -> T {
    if ranks > 1 {
        if let Ok(pool) = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .stack_size(stack_size)
            .thread_name(move |_| format!("fogkit-rank-{rank}"))
            .build()
        {
            return pool.install(body);
        }
    }
    body()
}

/// An error of the caller's own becomes [`Error::RankFailed`] naming the rank.
fn into_rank_error(rank: usize, e: Error) -> Error {
    match e {
        Error::Other(source) => Error::RankFailed { rank, source },
        e => e,
    }
}

/// All results, or the most telling error: the first panic, else the first root-cause
/// error, else the first error (in rank order).
fn collect_outcomes<R>(n: usize, first: usize, outcomes: Vec<Outcome<R>>) -> Result<Ranks<R>> {
    let mut results = Vec::with_capacity(outcomes.len());
    let mut panic: Option<Error> = None;
    let mut root: Option<Error> = None;
    let mut any: Option<Error> = None;
    for (i, o) in outcomes.into_iter().enumerate() {
        match o {
            Outcome::Done(v) => results.push(v),
            Outcome::Panicked(message) => {
                panic.get_or_insert(Error::RankPanicked {
                    rank: first + i,
                    message,
                });
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
        None => Ok(Ranks::new(n, first, results)),
    }
}
