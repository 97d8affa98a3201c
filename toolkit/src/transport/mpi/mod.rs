//! The `mpi` transport: one rank per process under `mpirun`, over the system's MPI
//! (Open MPI from Debian), reached through rsmpi's `mpi::ffi` behind the safe layer in
//! `raw`.
//!
//! Each call first shares a small fixed-size descriptor of every rank's call (one
//! nonblocking allgather; [`descriptor`](crate::transport::descriptor)), so the same
//! [`check_consistent`] as the local transport runs on every rank before any data moves.
//! Data then goes point to point (`copy`), or, when every rank shares one host and the
//! messages are large, is read in place from the sender's memory (`in_place`). Every wait
//! polls against a deadline: a rank that never arrives gives [`Error::Timeout`], never a
//! hang.
//!
//! Windows (one-sided access) are MPI-3 RMA epochs, in `window`.

mod cma;
mod copy;
mod in_place;
mod machines;
mod pool;
mod raw;
mod shared_window;
mod wait;
mod watchdog;
mod window;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use copy::PIECE;
pub use raw::abort_job;
pub use window::RMA_PIECE;

use super::{
    check_consistent, descriptor, CallInfo, Exit, Machine, OpId, Posted, Transport, Visit,
};
use crate::{Error, Result};
use pool::Pool;
use raw::Comm;
use wait::{Backoff, Stage};
use watchdog::Watchdog;

/// One process's endpoint: a private duplicate of `MPI_COMM_WORLD`.
pub struct MpiTransport {
    comm: Comm,
    rank: usize,
    size: usize,
    machine: Machine,
    timeout: Duration,
    calls: AtomicU64,
    /// Set after a mismatch or timeout: every later call fails with it.
    failed: Mutex<Option<Error>>,
    pool: Pool,
    /// Held for a whole call: MPI may be initialised with MPI_THREAD_SERIALIZED only, so
    /// two threads must never be inside MPI at once (fogkit's own calls never contend).
    serial: Mutex<()>,
    /// All ranks share one host and can read each other's memory (see `cma`).
    cma: bool,
    /// All ranks share one host: windows live in memory they all map (`shared_window`).
    one_host: bool,
    /// Every rank's host, for messages.
    hosts: Vec<String>,
    /// Open windows (one-sided access, `window`).
    windows: window::Windows,
}

/// Calls whose largest message is at least this many bytes read in place.
const IN_PLACE_BYTES: usize = 64 << 10;

/// Messages of one call carry tag `call % TAGS`; in-place acknowledgements `TAGS + that`;
/// descriptors `2 * TAGS + that` (all below 32767, the least upper bound MPI allows).
const TAGS: u64 = 8_192;

impl MpiTransport {
    /// Joins the MPI job (initialising MPI on first use). Collective over all processes.
    /// `local_size` regroups ranks into emulated machines (for tests on one host);
    /// otherwise machines are the hosts, found with `MPI_Comm_split_type(SHARED)`.
    pub fn new(timeout: Duration, local_size: Option<usize>) -> Result<MpiTransport> {
        let limit = watchdog::allow(timeout);
        // Start-up's calls block inside MPI: a process that never joins must not keep
        // this one forever.
        let _deadline = Watchdog::arm(limit, 1, move || {
            format!(
                "fogkit: rank {}: MPI start-up timed out after {limit:?}: some \
                 process did not join (a host that cannot be reached, or a network \
                 interface that does not connect the hosts: see fogrun \
                 --network-interface); ending this process",
                crate::launch::process_rank()
            )
        });
        raw::ensure_init()?;
        let comm = Comm::dup_world()?;
        let (rank, size) = (comm.rank(), comm.size());
        let (found, leaders) = machines::find_machines(&comm, rank, size)?;
        let machine = match local_size {
            Some(ls) => Machine::grouped(rank, size, ls)?,
            None => found,
        };
        let one_host = leaders.iter().all(|&l| l == leaders[0]);
        let cma = one_host && machines::probe_cma(&comm, rank, size)?;
        let hosts = machines::gather_hosts(&comm)?;
        Ok(MpiTransport {
            comm,
            rank,
            size,
            machine,
            timeout,
            calls: AtomicU64::new(0),
            failed: Mutex::new(None),
            pool: Pool::default(),
            serial: Mutex::new(()),
            cma,
            one_host,
            hosts,
            windows: window::Windows::default(),
        })
    }

    fn fail(&self, e: &Error) -> Error {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert_with(|| e.share());
        e.share()
    }

    /// Shares every rank's descriptor of this call and checks that they fit; returns
    /// them decoded.
    fn agree<O: OpId>(
        &self,
        call: u64,
        info: &CallInfo<O>,
        sends: &[(usize, &[u8])],
        recv_from: &[usize],
        start: Instant,
    ) -> Result<Vec<descriptor::Decoded<O>>> {
        let (n, me) = (self.size, self.rank);
        let send_to: Vec<usize> = sends.iter().map(|s| s.0).collect();
        // The descriptor's rank masks cannot carry a duplicate or a stray rank: refuse them
        // here, as the local transport's check does.
        for (what, ranks) in [("receive from", recv_from), ("send to", &send_to[..])] {
            for (i, &j) in ranks.iter().enumerate() {
                if j >= n || j == me || ranks[..i].contains(&j) {
                    return Err(Error::Mismatch {
                        call,
                        detail: format!(
                            "rank {me} in {} expected to {what} distinct other ranks below \
                             {n}, found {ranks:?}",
                            info.op
                        ),
                    });
                }
            }
        }
        let mine = descriptor::encode(call, info, &send_to, recv_from, n);
        let width = mine.len();
        let tag = (2 * TAGS + call % TAGS) as i32;
        let mut pending = self.comm.iexchange(&mine, tag);
        let mut backoff = Backoff::default();
        let waiting = tracing::trace_span!("wait_peers").entered();
        while !pending.done() {
            if Instant::now() >= start + self.timeout {
                // The requests still reference their buffers: they are leaked with them.
                let missing = pending.missing();
                let detail = format!(": {}", machines::named(&missing, &self.hosts));
                return Err(self.fail(&Error::Timeout {
                    rank: me,
                    op: info.to_string(),
                    call,
                    waited: start.elapsed(),
                    missing,
                    detail,
                }));
            }
            backoff.idle();
        }
        let all = pending.into_all();
        drop(waiting);
        let _check = tracing::trace_span!("check").entered();
        let decoded = all
            .chunks(width)
            .enumerate()
            .map(|(r, d)| descriptor::decode::<O>(d, n, r))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| self.fail(&e))?;
        if let Some((r, d)) = decoded.iter().enumerate().find(|(_, d)| d.call != call) {
            return Err(self.fail(&Error::Mismatch {
                call,
                detail: format!(
                    "rank {r} is at call #{} while rank {me} is at call #{call}",
                    d.call
                ),
            }));
        }
        let posts: Vec<Posted<'_, O>> = decoded
            .iter()
            .map(|d| Posted {
                info: &d.info,
                send_to: d.send_to.clone(),
                recv_from: &d.recv_from,
            })
            .collect();
        check_consistent(call, &posts).map_err(|e| self.fail(&e))?;
        Ok(decoded)
    }
}

impl Drop for MpiTransport {
    fn drop(&mut self) {
        // A communicator left with pending requests (after a timeout) is not freed.
        let failed = self.failed.lock().map(|f| f.is_some()).unwrap_or(true);
        if failed {
            self.comm.keep();
        }
    }
}

impl<O: OpId> Transport<O> for MpiTransport {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn name(&self) -> &'static str {
        "mpi"
    }

    fn machine(&self) -> Machine {
        self.machine
    }

    fn describe(&self) -> String {
        if self.cma {
            "mpi (neighbours read in place)".into()
        } else {
            "mpi (point-to-point copies)".into()
        }
    }

    fn one_sided(&self) -> Option<&dyn super::OneSided> {
        Some(self)
    }

    /// A failing rank ends the whole job (after printing why): the other processes may
    /// be waiting for it, and MPI cannot tell them.
    fn leave(&self, exit: &Exit) {
        let me = self.rank;
        match exit {
            Exit::Returned => {}
            Exit::Failed(e) => abort_job(
                &format!("fogkit: rank {me} failed: {e}; ending the MPI job"),
                1,
            ),
            Exit::Panicked(m) => abort_job(
                &format!("fogkit: rank {me} panicked: {m}; ending the MPI job"),
                101,
            ),
        }
    }

    fn exchange(
        &self,
        info: &CallInfo<O>,
        sends: &[(usize, &[u8])],
        recv_from: &[usize],
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        let _serial = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Err(e.share());
        }
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let decoded = self.agree(call, info, sends, recv_from, start)?;
        if sends.is_empty() && recv_from.is_empty() {
            return visit(0, &[]);
        }
        let what = info.to_string();
        let stage = Stage {
            me: self.rank,
            what: &what,
            call,
            start,
            deadline: start + self.timeout,
            tag: (call % TAGS) as i32,
            hosts: &self.hosts,
        };
        // Every rank knows every rank's length, so all choose the same path: in place
        // pays an extra acknowledgement, worth it only for large messages.
        let largest = decoded
            .iter()
            .map(|d| d.info.len * d.info.dtype.map_or(0, |t| t.size()))
            .max()
            .unwrap_or(0);
        if self.cma && largest >= IN_PLACE_BYTES {
            in_place::move_in_place(&self.comm, &self.pool, &stage, sends, recv_from, visit)
        } else {
            let _t = tracing::trace_span!("transfer").entered();
            copy::move_by_copy(&self.comm, &self.pool, &stage, sends, recv_from, visit)
        }
    }
}
