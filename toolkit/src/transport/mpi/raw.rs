//! The layer over `mpi::ffi`: the only file of the MPI transport with `unsafe` MPI calls.
//! Start-up and abort, a communicator that frees itself, blocking start-up collectives,
//! and nonblocking requests that borrow their buffers: while a request lives its buffer
//! cannot be touched or freed, and a receive's bytes are readable only once it has
//! completed.
//!
//! It must never hand MPI a buffer that may die before the request completes: a borrowed
//! request dropped unfinished ends the job; an owned one leaks its buffers. The contract
//! of its callers (this transport's own files): never leak a request (`mem::forget`,
//! `Box::leak`), since that would end the borrow without the drop that guards it; rsmpi's
//! `request::scope` would enforce that, and is the shape to move to.

use std::marker::PhantomData;
use std::os::raw::{c_int, c_void};
use std::sync::OnceLock;

use mpi::ffi;

use super::watchdog::{self, Watchdog};
use crate::{Error, Result};

extern "C" {
    fn atexit(cb: extern "C" fn()) -> c_int;
}

extern "C" fn finalize_at_exit() {
    // MPI_Finalize waits for every process: one that is gone must not keep this one.
    let limit = watchdog::limit();
    let _deadline = Watchdog::arm(limit, 1, move || {
        format!(
            "fogkit: rank {}: MPI_Finalize did not return within {limit:?} (another \
             process is gone or stuck); leaving without it",
            crate::launch::process_rank()
        )
    });
    // SAFETY: plain MPI calls with valid out-pointers, at process exit.
    unsafe {
        let mut done: c_int = 0;
        ffi::MPI_Finalized(&mut done);
        if done == 0 {
            ffi::MPI_Finalize();
        }
    }
}

/// Initialises MPI once per process (threads serialized at least: fogkit calls MPI from a
/// rank's thread and its communication thread, never at once) and finalises it at exit.
pub(super) fn ensure_init() -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        // SAFETY: MPI_Init_thread with null argc/argv is allowed; out-pointers are valid.
        unsafe {
            let mut flag: c_int = 0;
            ffi::MPI_Initialized(&mut flag);
            if flag == 0 {
                let mut provided: c_int = 0;
                let rc = ffi::MPI_Init_thread(
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    ffi::RSMPI_THREAD_MULTIPLE,
                    &mut provided,
                );
                if rc != 0 {
                    return Err(format!("MPI_Init_thread failed with code {rc}"));
                }
                if provided < ffi::RSMPI_THREAD_SERIALIZED {
                    return Err(format!(
                        "expected MPI to support at least MPI_THREAD_SERIALIZED, found level {provided}"
                    ));
                }
                atexit(finalize_at_exit);
            }
            Ok(())
        }
    })
    .clone()
    .map_err(Error::InvalidArgument)
}

/// Whether MPI allows calls from several threads at once (MPI_THREAD_MULTIPLE); else
/// fogkit serialises them. Asked once, after [`ensure_init`].
pub(super) fn thread_multiple() -> bool {
    static MULTIPLE: OnceLock<bool> = OnceLock::new();
    *MULTIPLE.get_or_init(|| {
        let mut provided: c_int = 0;
        // SAFETY: MPI is initialised (every transport is made after ensure_init); reading
        // an MPI constant.
        unsafe {
            ffi::MPI_Query_thread(&mut provided);
            provided >= ffi::RSMPI_THREAD_MULTIPLE
        }
    })
}

/// Ends the whole MPI job (all processes) with `code`, after `message` on stderr.
pub fn abort_job(message: &str, code: c_int) -> ! {
    use std::io::Write;
    // One write, so that mpirun does not interleave it with other ranks' lines.
    let _ = std::io::stderr().write_all(format!("{message}\n").as_bytes());
    // MPI_Abort asks mpirun to end every process; when mpirun cannot be reached (this
    // host was cut off) it may never return: leave on our own after a moment.
    let _deadline = Watchdog::arm(std::time::Duration::from_secs(3), code, || {
        format!(
            "fogkit: rank {}: MPI_Abort did not return (mpirun unreachable?); leaving without it",
            crate::launch::process_rank()
        )
    });
    // SAFETY: MPI_Abort on the world communicator; MPI is initialised whenever a
    // transport exists (and MPI_Abort is the one call allowed in a failed state).
    unsafe {
        ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code);
    }
    std::process::exit(code)
}

pub(super) fn check(rc: c_int, what: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what} failed with MPI error code {rc}"
        )))
    }
}

/// A request MPI refused to start cannot be waited for: end the job, saying which.
fn started(rc: c_int, what: &str, peer: usize) {
    if rc != 0 {
        abort_job(
            &format!(
                "fogkit: starting {what} with rank {peer} failed (MPI error code {rc}); \
                 ending the MPI job"
            ),
            1,
        );
    }
}

fn null_request() -> ffi::MPI_Request {
    // SAFETY: reading an MPI constant.
    unsafe { ffi::RSMPI_REQUEST_NULL }
}

/// Whether `req` has completed (a null request has).
fn test(req: &mut ffi::MPI_Request) -> bool {
    if *req == null_request() {
        return true;
    }
    let mut flag: c_int = 0;
    // SAFETY: `req` is a live request handle; MPI sets it to null once complete.
    unsafe {
        ffi::MPI_Test(req, &mut flag, ffi::RSMPI_STATUS_IGNORE);
    }
    flag != 0
}

/// A communicator this process owns, freed on drop unless [`keep`](Comm::keep) says a
/// request may still use it.
pub(super) struct Comm {
    raw: ffi::MPI_Comm,
    free_on_drop: bool,
}

// SAFETY: the handle is only used through MPI calls, which fogkit makes from one thread at
// a time (MPI is initialised with at least MPI_THREAD_SERIALIZED).
unsafe impl Send for Comm {}
unsafe impl Sync for Comm {}

impl Comm {
    /// A private duplicate of `MPI_COMM_WORLD` (collective over all processes).
    pub(super) fn dup_world() -> Result<Comm> {
        let mut raw = Self::null();
        // SAFETY: valid communicator and out-pointer.
        check(
            unsafe { ffi::MPI_Comm_dup(ffi::RSMPI_COMM_WORLD, &mut raw) },
            "MPI_Comm_dup",
        )?;
        Ok(Comm {
            raw,
            free_on_drop: true,
        })
    }

    fn null() -> ffi::MPI_Comm {
        // SAFETY: reading an MPI constant.
        unsafe { ffi::RSMPI_COMM_NULL }
    }

    /// The processes sharing memory with this one (collective), ordered by `key`.
    pub(super) fn split_shared(&self, key: usize) -> Result<Comm> {
        let mut raw = Self::null();
        // SAFETY: valid communicator, info handle and out-pointer.
        check(
            unsafe {
                ffi::MPI_Comm_split_type(
                    self.raw,
                    ffi::RSMPI_COMM_TYPE_SHARED,
                    key as c_int,
                    ffi::RSMPI_INFO_NULL,
                    &mut raw,
                )
            },
            "MPI_Comm_split_type",
        )?;
        Ok(Comm {
            raw,
            free_on_drop: true,
        })
    }

    /// The MPI handle, for the window calls.
    pub(super) fn handle(&self) -> ffi::MPI_Comm {
        self.raw
    }

    /// Never free this communicator (a timed-out request may still reference it).
    pub(super) fn keep(&mut self) {
        self.free_on_drop = false;
    }

    /// This process's rank.
    pub(super) fn rank(&self) -> usize {
        let mut r: c_int = 0;
        // SAFETY: valid communicator and out-pointer.
        unsafe { ffi::MPI_Comm_rank(self.raw, &mut r) };
        r as usize
    }

    /// Number of processes.
    pub(super) fn size(&self) -> usize {
        let mut s: c_int = 0;
        // SAFETY: valid communicator and out-pointer.
        unsafe { ffi::MPI_Comm_size(self.raw, &mut s) };
        s as usize
    }

    /// The minimum of `v` over the processes (blocking; start-up only).
    pub(super) fn min(&self, v: u64) -> Result<u64> {
        let mut out: u64 = 0;
        // SAFETY: one u64 in, one out, both live for the blocking call.
        check(
            unsafe {
                ffi::MPI_Allreduce(
                    &v as *const u64 as *const c_void,
                    &mut out as *mut u64 as *mut c_void,
                    1,
                    ffi::RSMPI_UINT64_T,
                    ffi::RSMPI_MIN,
                    self.raw,
                )
            },
            "MPI_Allreduce",
        )?;
        Ok(out)
    }

    /// Every process's `mine` (all the same length), in rank order (blocking; start-up).
    pub(super) fn allgather(&self, mine: &[u64]) -> Result<Vec<u64>> {
        let mut all = vec![0u64; mine.len() * self.size()];
        // SAFETY: `all` holds size * len words; both live for the blocking call.
        check(
            unsafe {
                ffi::MPI_Allgather(
                    mine.as_ptr() as *const c_void,
                    mine.len() as c_int,
                    ffi::RSMPI_UINT64_T,
                    all.as_mut_ptr() as *mut c_void,
                    mine.len() as c_int,
                    ffi::RSMPI_UINT64_T,
                    self.raw,
                )
            },
            "MPI_Allgather",
        )?;
        Ok(all)
    }

    /// Starts sending `mine` to every other process and receiving theirs, point to
    /// point with `tag` (same length everywhere), so that a wait that runs out can say
    /// whose has not arrived; the exchange owns its buffers.
    pub(super) fn iexchange(&self, mine: &[u64], tag: c_int) -> Exchanging {
        let (n, me, w) = (self.size(), self.rank(), mine.len());
        let mut x = Exchanging {
            all: vec![0u64; w * n],
            sends: Vec::with_capacity(n.saturating_sub(1)),
            recvs: Vec::with_capacity(n.saturating_sub(1)),
        };
        x.all[me * w..(me + 1) * w].copy_from_slice(mine);
        let base = x.all.as_mut_ptr();
        for r in (0..n).filter(|&r| r != me) {
            let (mut send, mut recv) = (null_request(), null_request());
            // SAFETY: `all` is owned by `x`, which never frees it while a request may be
            // pending (see its Drop); the send reads this rank's slot, each receive writes
            // its source's slot, and the slots do not overlap.
            let rc = unsafe {
                ffi::MPI_Isend(
                    base.add(me * w) as *const c_void,
                    w as c_int,
                    ffi::RSMPI_UINT64_T,
                    r as c_int,
                    tag,
                    self.raw,
                    &mut send,
                ) | ffi::MPI_Irecv(
                    base.add(r * w) as *mut c_void,
                    w as c_int,
                    ffi::RSMPI_UINT64_T,
                    r as c_int,
                    tag,
                    self.raw,
                    &mut recv,
                )
            };
            x.sends.push(send);
            x.recvs.push((r, recv));
            if rc != 0 {
                abort_job(&format!("fogkit: starting an exchange with rank {r} failed (MPI error code {rc}); ending the MPI job"), 1);
            }
        }
        x
    }

    /// Starts sending `buf` to `dst` with `tag`; `buf` stays borrowed until it completes.
    pub(super) fn isend<'b>(&self, buf: &'b [u8], dst: usize, tag: c_int) -> Request<'b> {
        let mut req = Request {
            raw: null_request(),
            _buf: PhantomData,
        };
        // SAFETY: `buf` is borrowed by the request for 'b; a request is never dropped
        // unfinished without ending the job (see its Drop).
        let rc = unsafe {
            ffi::MPI_Isend(
                buf.as_ptr() as *const c_void,
                buf.len() as c_int,
                ffi::RSMPI_UINT8_T,
                dst as c_int,
                tag,
                self.raw,
                &mut req.raw,
            )
        };
        started(rc, "a send", dst);
        req
    }

    /// Starts receiving into `buf` from `src` with `tag`; the bytes are readable through
    /// [`Recv::finish`] once it completes.
    pub(super) fn irecv<'b>(&self, buf: &'b mut [u8], src: usize, tag: c_int) -> Recv<'b> {
        let mut raw = null_request();
        // SAFETY: as for `isend`; `buf` is borrowed mutably, so nothing reads it meanwhile.
        let rc = unsafe {
            ffi::MPI_Irecv(
                buf.as_mut_ptr() as *mut c_void,
                buf.len() as c_int,
                ffi::RSMPI_UINT8_T,
                src as c_int,
                tag,
                self.raw,
                &mut raw,
            )
        };
        started(rc, "a receive", src);
        Recv {
            req: Request {
                raw,
                _buf: PhantomData,
            },
            buf,
        }
    }
}

impl Drop for Comm {
    fn drop(&mut self) {
        if !self.free_on_drop {
            return;
        }
        // SAFETY: the communicator is ours and not used again.
        unsafe {
            let mut finalized: c_int = 0;
            ffi::MPI_Finalized(&mut finalized);
            if finalized == 0 {
                ffi::MPI_Comm_free(&mut self.raw);
            }
        }
    }
}

/// A nonblocking send (or any request) that borrows its buffer for `'b`.
#[must_use = "a request must be tested until it completes"]
pub(super) struct Request<'b> {
    raw: ffi::MPI_Request,
    _buf: PhantomData<&'b [u8]>,
}

impl Request<'_> {
    /// Whether it has completed.
    pub(super) fn test(&mut self) -> bool {
        test(&mut self.raw)
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if !test(&mut self.raw) {
            // MPI may still write the buffer this request borrows: ending the job is the
            // only sound way out.
            abort_job(
                "fogkit: an MPI request was abandoned before it completed; ending the MPI job",
                1,
            );
        }
    }
}

/// A nonblocking receive into a borrowed buffer.
#[must_use = "a receive must be tested until it completes"]
pub(super) struct Recv<'b> {
    req: Request<'b>,
    buf: &'b mut [u8],
}

impl<'b> Recv<'b> {
    /// Whether it has completed.
    pub(super) fn test(&mut self) -> bool {
        self.req.test()
    }

    /// The received bytes for the rest of `'b`, once complete (else the receive back,
    /// still pending).
    pub(super) fn finish(mut self) -> std::result::Result<&'b [u8], Recv<'b>> {
        if self.req.test() {
            let buf = std::mem::take(&mut self.buf);
            Ok(buf)
        } else {
            Err(self)
        }
    }
}

/// A nonblocking exchange of `u64`s with every other process, owning its buffers.
pub(super) struct Exchanging {
    all: Vec<u64>,
    sends: Vec<ffi::MPI_Request>,
    /// Each source and its receive.
    recvs: Vec<(usize, ffi::MPI_Request)>,
}

impl Exchanging {
    /// Whether every send and receive has completed.
    pub(super) fn done(&mut self) -> bool {
        // Test every request each round (no short circuit): progress on one must not
        // wait for another.
        let mut pending = 0;
        for r in self
            .sends
            .iter_mut()
            .chain(self.recvs.iter_mut().map(|(_, r)| r))
        {
            pending += usize::from(!test(r));
        }
        pending == 0
    }

    /// The processes whose words have not arrived (or that have not taken ours).
    pub(super) fn missing(&mut self) -> Vec<usize> {
        let mut m: Vec<usize> = self
            .recvs
            .iter_mut()
            .filter_map(|(src, r)| (!test(r)).then_some(*src))
            .collect();
        let peers: Vec<usize> = self.recvs.iter().map(|(p, _)| *p).collect();
        for (r, p) in self.sends.iter_mut().zip(peers) {
            if !test(r) && !m.contains(&p) {
                m.push(p);
            }
        }
        m.sort_unstable();
        m
    }

    /// Every process's words in rank order, once [`done`](Self::done).
    pub(super) fn into_all(mut self) -> Vec<u64> {
        std::mem::take(&mut self.all)
    }
}

impl Drop for Exchanging {
    fn drop(&mut self) {
        if !self.done() {
            // Still pending (a timeout): MPI may write `all` later, so leak it.
            std::mem::forget(std::mem::take(&mut self.all));
        }
    }
}
