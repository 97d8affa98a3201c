//! One-sided access over MPI: when every process shares one host, each window is memory
//! they all map and an access is loads and stores under a lock word (`shared_window`);
//! otherwise (or with `FOGKIT_MPI_WINDOWS=rma`) each window is an `MPI_Win` over memory
//! MPI allocates, and an access is one MPI-3 passive-target epoch (`MPI_Win_lock`
//! exclusive on the target, `MPI_Get`/`MPI_Put` flushed piece by piece, `MPI_Win_unlock`).
//! Either way the target takes no part.
//!
//! Large regions move in pieces of [`RMA_PIECE`] bytes, each flushed before the next is
//! started (BlueFog's windows deadlocked or crashed on large tensors moved in one
//! operation, its issues #11 and #42). An access that MPI never completes (its target's
//! host lost) ends the job with a message after the transport's timeout: MPI gives no way
//! to cancel an epoch.

use std::collections::HashMap;
use std::os::raw::{c_int, c_void};
use std::sync::{Arc, Mutex};

use mpi::ffi;

use super::raw::check;
use super::shared_window::{segment_bytes, Segments};
use super::watchdog::Watchdog;
use super::MpiTransport;
use crate::transport::window::{range, Accessor, OneSided, Region};
use crate::{Error, Result};

/// The largest piece one `MPI_Put` or `MPI_Get` moves.
pub const RMA_PIECE: usize = 8 << 20;

/// One window: the MPI handle (its memory allocated by MPI and freed with it) and every
/// rank's region length (to refuse an access outside a region before MPI sees it).
struct Win {
    raw: ffi::MPI_Win,
    sizes: Vec<usize>,
    /// Every rank's segment, when the window lives in memory all processes map.
    shared: Option<Segments>,
}

/// Whether windows may live in shared memory: every rank on one host, and the user did
/// not ask for RMA epochs (`FOGKIT_MPI_WINDOWS=rma`, to test that path on one host).
fn use_shared(one_host: bool) -> Result<bool> {
    match std::env::var("FOGKIT_MPI_WINDOWS").as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(one_host),
        Ok("rma") => Ok(false),
        Ok(other) => Err(Error::InvalidArgument(format!(
            "FOGKIT_MPI_WINDOWS expected `auto` or `rma`, found `{other}`"
        ))),
    }
}

// SAFETY: the handle is used only through MPI calls, made under the transport's rules
// (serialised unless MPI gave MPI_THREAD_MULTIPLE); the memory is reached only by MPI and
// by accesses holding the window's exclusive lock.
unsafe impl Send for Win {}
unsafe impl Sync for Win {}

/// This process's open windows, by id.
#[derive(Default)]
pub(super) struct Windows {
    by_id: Mutex<HashMap<u64, Arc<Win>>>,
}

impl Windows {
    fn get(&self, id: u64) -> Result<Arc<Win>> {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "window #{id} expected to be open, found it closed or never created"
                ))
            })
    }
}

/// A target's region inside one passive-target epoch.
struct Epoch<'a> {
    win: &'a Win,
    target: usize,
}

impl Epoch<'_> {
    fn flush(&self) -> Result<()> {
        // SAFETY: the window is live and locked on `target` by this epoch.
        check(
            unsafe { ffi::MPI_Win_flush(self.target as c_int, self.win.raw) },
            "MPI_Win_flush",
        )
    }
}

impl Region for Epoch<'_> {
    fn len(&self) -> usize {
        self.win.sizes[self.target]
    }

    fn read(&mut self, offset: usize, out: &mut [u8]) -> Result<()> {
        range(self.len(), offset, out.len())?;
        let mut done = 0;
        while done < out.len() {
            let n = (out.len() - done).min(RMA_PIECE);
            // SAFETY: `out[done..done + n]` is ours and stays borrowed until the flush
            // below completes the get; the target range was checked against its region.
            check(
                unsafe {
                    ffi::MPI_Get(
                        out[done..].as_mut_ptr() as *mut c_void,
                        n as c_int,
                        ffi::RSMPI_UINT8_T,
                        self.target as c_int,
                        (offset + done) as ffi::MPI_Aint,
                        n as c_int,
                        ffi::RSMPI_UINT8_T,
                        self.win.raw,
                    )
                },
                "MPI_Get",
            )?;
            self.flush()?;
            done += n;
        }
        Ok(())
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        range(self.len(), offset, data.len())?;
        let mut done = 0;
        while done < data.len() {
            let n = (data.len() - done).min(RMA_PIECE);
            // SAFETY: `data[done..done + n]` stays borrowed until the flush below
            // completes the put; the target range was checked against its region.
            check(
                unsafe {
                    ffi::MPI_Put(
                        data[done..].as_ptr() as *const c_void,
                        n as c_int,
                        ffi::RSMPI_UINT8_T,
                        self.target as c_int,
                        (offset + done) as ffi::MPI_Aint,
                        n as c_int,
                        ffi::RSMPI_UINT8_T,
                        self.win.raw,
                    )
                },
                "MPI_Put",
            )?;
            self.flush()?;
            done += n;
        }
        Ok(())
    }
}

impl MpiTransport {
    /// Runs `f` holding MPI for this thread alone when MPI gave less than
    /// MPI_THREAD_MULTIPLE, and under a watchdog that ends the job after the timeout
    /// (`what` names the stuck call).
    fn rma<T>(&self, what: impl Fn() -> String + Send + 'static, f: impl FnOnce() -> T) -> T {
        let _serial = (!super::raw::thread_multiple())
            .then(|| self.serial.lock().unwrap_or_else(|p| p.into_inner()));
        let me = self.rank;
        let limit = self.timeout.max(super::watchdog::AT_LEAST);
        let _deadline = Watchdog::arm(limit, 1, move || {
            format!(
                "fogkit: rank {me}: {} did not finish in {limit:?} (a lost host?); ending \
                 this process",
                what()
            )
        });
        f()
    }
}

impl OneSided for MpiTransport {
    fn win_open(&self, id: u64, bytes: usize) -> Result<()> {
        let comm = &self.comm;
        // Every process shares its choice (2: a bad setting) before any fails, so that a
        // setting wrong on some processes only fails them all instead of leaving the
        // others waiting.
        let choice = use_shared(self.one_host);
        let code = match &choice {
            Ok(shared) => *shared as u64,
            Err(_) => 2,
        };
        let win = self.rma(
            move || format!("creating window #{id}"),
            || -> Result<Win> {
                let sizes = comm.allgather(&[bytes as u64, code])?;
                let shared = choice?;
                if let Some(c) = sizes.chunks(2).find(|c| c[1] != code) {
                    return Err(Error::InvalidArgument(format!(
                        "window creation expected every process to choose shared memory \
                         alike, found {} here and {} elsewhere (FOGKIT_MPI_WINDOWS set on \
                         some processes only, or set wrong there?)",
                        code, c[1]
                    )));
                }
                let sizes: Vec<usize> = sizes.chunks(2).map(|c| c[0] as usize).collect();
                if shared {
                    let (raw, bases) = allocate_shared(comm.handle(), bytes, &sizes)?;
                    let shared = Some(Segments { bases });
                    return Ok(Win { raw, sizes, shared });
                }
                let (raw, base) = allocate_rma(comm.handle(), bytes)?;
                zero_own(raw, comm.rank(), base, bytes)?;
                let shared = None;
                Ok(Win { raw, sizes, shared })
            },
        )?;
        let mut map = self.windows.by_id.lock().unwrap_or_else(|p| p.into_inner());
        if map.insert(id, Arc::new(win)).is_some() {
            return Err(Error::InvalidArgument(format!(
                "window #{id} opened twice on rank {}",
                self.rank
            )));
        }
        Ok(())
    }

    fn win_close(&self, id: u64) -> Result<()> {
        let win = self
            .windows
            .by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let Some(win) = win else {
            return Err(Error::InvalidArgument(format!(
                "window #{id} expected to be open, found it closed or never created"
            )));
        };
        let Ok(mut win) = Arc::try_unwrap(win) else {
            return Err(Error::InvalidArgument(format!(
                "window #{id} closed while an access to it runs"
            )));
        };
        self.rma(
            move || format!("freeing window #{id}"),
            // SAFETY: collective free of a live window no access uses any more; MPI
            // frees its memory.
            || check(unsafe { ffi::MPI_Win_free(&mut win.raw) }, "MPI_Win_free"),
        )
    }

    fn patience(&self) -> std::time::Duration {
        self.timeout
    }

    fn access(&self, id: u64, target: usize, f: &mut Accessor<'_>) -> Result<()> {
        if target >= self.size {
            return Err(Error::InvalidArgument(format!(
                "window access expected a rank below {}, found {target}",
                self.size
            )));
        }
        let win = self.windows.get(id)?;
        if let Some(seg) = &win.shared {
            let what = move || format!("rank {target}'s region of window #{id}");
            let patience = self.timeout.max(super::watchdog::AT_LEAST);
            return seg.access(self.rank, target, win.sizes[target], patience, what, f);
        }
        self.rma(
            move || format!("an access to rank {target}'s region of window #{id}"),
            || {
                // SAFETY: a live window; exclusive lock on a valid rank, released below
                // whatever `f` returns.
                check(
                    unsafe {
                        ffi::MPI_Win_lock(
                            ffi::MPI_LOCK_EXCLUSIVE as c_int,
                            target as c_int,
                            0,
                            win.raw,
                        )
                    },
                    "MPI_Win_lock",
                )?;
                let r = f(&mut Epoch { win: &win, target });
                // SAFETY: the epoch opened above.
                let unlocked = check(
                    unsafe { ffi::MPI_Win_unlock(target as c_int, win.raw) },
                    "MPI_Win_unlock",
                );
                r.and(unlocked)
            },
        )
    }
}

/// Allocates this process's memory of an RMA window. MPI's failure to make one returns
/// here as an error that says what to change (MPI_ERRORS_RETURN for the call), instead of
/// MPI_ERRORS_ARE_FATAL's abort: Open MPI 4's osc/pt2pt, the one it picks between hosts
/// over TCP unless told otherwise, refuses MPI_THREAD_MULTIPLE; osc/ucx works.
fn allocate_rma(comm: ffi::MPI_Comm, bytes: usize) -> Result<(ffi::MPI_Win, *mut u8)> {
    // SAFETY: reading MPI constants, as placeholders for the handles filled in below.
    let (mut raw, mut previous): (ffi::MPI_Win, ffi::MPI_Errhandler) =
        unsafe { (ffi::RSMPI_WIN_NULL, ffi::RSMPI_ERRORS_RETURN) };
    let mut base: *mut u8 = std::ptr::null_mut();
    // SAFETY: a live communicator and a handle to fill in (freed below once restored).
    check(
        unsafe { ffi::MPI_Comm_get_errhandler(comm, &mut previous) },
        "MPI_Comm_get_errhandler",
    )?;
    // SAFETY: a live communicator and a predefined handler. While the window is made, other
    // threads' calls on this communicator return their errors too: every call fogkit makes
    // checks its return code.
    check(
        unsafe { ffi::MPI_Comm_set_errhandler(comm, ffi::RSMPI_ERRORS_RETURN) },
        "MPI_Comm_set_errhandler",
    )?;
    // SAFETY: every process of the communicator makes this call (ops' window creation is
    // collective); MPI owns the memory until MPI_Win_free.
    let rc = unsafe {
        ffi::MPI_Win_allocate(
            bytes.max(8) as ffi::MPI_Aint,
            1,
            ffi::RSMPI_INFO_NULL,
            comm,
            &mut base as *mut *mut u8 as *mut c_void,
            &mut raw,
        )
    };
    // SAFETY: the handler read above, put back; then its reference from
    // MPI_Comm_get_errhandler is released (the communicator keeps its own).
    let restored = check(
        unsafe { ffi::MPI_Comm_set_errhandler(comm, previous) },
        "MPI_Comm_set_errhandler",
    )
    .and(check(
        unsafe { ffi::MPI_Errhandler_free(&mut previous) },
        "MPI_Errhandler_free",
    ));
    if rc != 0 {
        return Err(Error::InvalidArgument(format!(
            "MPI_Win_allocate of {bytes} bytes failed with MPI error code {rc} ({}): MPI \
             could not make an RMA window. Between hosts the likely cause is Open MPI 4's \
             osc/pt2pt, which refuses the MPI_THREAD_MULTIPLE fogkit asks for: fogrun passes \
             `--mca osc ^pt2pt` so that osc/ucx is used (under plain mpirun, pass it \
             yourself)",
            error_string(rc)
        )));
    }
    restored.map(|()| (raw, base))
}

/// MPI's own words for error code `rc`.
fn error_string(rc: c_int) -> String {
    let mut text = [0 as std::os::raw::c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: a buffer of MPI_MAX_ERROR_STRING characters and a length to fill in.
    let ok = unsafe { ffi::MPI_Error_string(rc, text.as_mut_ptr(), &mut len) } == 0;
    let len = (len.max(0) as usize).min(text.len() - 1);
    if !ok || len == 0 {
        return "no description".into();
    }
    text[..len].iter().map(|&c| c as u8 as char).collect()
}

/// Allocates this process's segment of a shared window (lock word and region, zeroed) and
/// finds every rank's: their addresses in this process.
fn allocate_shared(
    comm: ffi::MPI_Comm,
    bytes: usize,
    sizes: &[usize],
) -> Result<(ffi::MPI_Win, Vec<*mut u8>)> {
    let n = sizes.len();
    // SAFETY: a null window handle and base pointer to be filled in.
    let mut raw: ffi::MPI_Win = unsafe { ffi::RSMPI_WIN_NULL };
    let mut base: *mut u8 = std::ptr::null_mut();
    let seg = segment_bytes(bytes);
    // SAFETY: collective over a communicator whose processes share one host; MPI maps the
    // memory until MPI_Win_free.
    check(
        unsafe {
            ffi::MPI_Win_allocate_shared(
                seg as ffi::MPI_Aint,
                1,
                ffi::RSMPI_INFO_NULL,
                comm,
                &mut base as *mut *mut u8 as *mut c_void,
                &mut raw,
            )
        },
        "MPI_Win_allocate_shared",
    )?;
    // SAFETY: MPI gave `seg` writable bytes at `base`; no other process touches them
    // before the barrier that follows win_open.
    unsafe { std::ptr::write_bytes(base, 0, seg) };
    let mut bases = Vec::with_capacity(n);
    for (r, &len) in sizes.iter().enumerate() {
        let (mut size, mut unit, mut at): (ffi::MPI_Aint, c_int, *mut u8) =
            (0, 0, std::ptr::null_mut());
        // SAFETY: a live shared window and a rank inside its communicator.
        check(
            unsafe {
                ffi::MPI_Win_shared_query(
                    raw,
                    r as c_int,
                    &mut size,
                    &mut unit,
                    &mut at as *mut *mut u8 as *mut c_void,
                )
            },
            "MPI_Win_shared_query",
        )?;
        if (at as usize) % 8 != 0 || (size as usize) < segment_bytes(len) {
            // SAFETY: collective free of the window just made (every process runs this
            // check on the same sizes, so all fail together).
            unsafe { ffi::MPI_Win_free(&mut raw) };
            return Err(Error::InvalidArgument(format!(
                "shared window segment of rank {r} expected 8-byte aligned and at least {} \
                 bytes, found address {at:p} and {size} bytes",
                segment_bytes(len)
            )));
        }
        bases.push(at);
    }
    Ok((raw, bases))
}

/// Zeroes this process's region of an RMA window inside an exclusive epoch on itself, so
/// that the stores are visible to other processes' gets under MPI's separate memory model
/// too (no other process accesses it before the barrier that follows win_open).
fn zero_own(raw: ffi::MPI_Win, me: usize, base: *mut u8, bytes: usize) -> Result<()> {
    // SAFETY: a live window and this process's own rank.
    check(
        unsafe { ffi::MPI_Win_lock(ffi::MPI_LOCK_EXCLUSIVE as c_int, me as c_int, 0, raw) },
        "MPI_Win_lock",
    )?;
    // SAFETY: MPI gave `bytes` (at least) writable bytes at `base`, locked above.
    unsafe { std::ptr::write_bytes(base, 0, bytes) };
    // SAFETY: the epoch opened above.
    check(
        unsafe { ffi::MPI_Win_unlock(me as c_int, raw) },
        "MPI_Win_unlock",
    )
}
