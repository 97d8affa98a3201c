//! One-sided access over MPI-3 RMA: each window is an `MPI_Win` over memory this process
//! owns, and an access is one passive-target epoch (`MPI_Win_lock` exclusive on the
//! target, `MPI_Get`/`MPI_Put` flushed piece by piece, `MPI_Win_unlock`), so the target
//! takes no part. On one host Open MPI moves the bytes with a single copy between the
//! processes (its shared-memory transport's cross-memory attach), as the in-place path of
//! `exchange` does.
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
use super::watchdog::Watchdog;
use super::MpiTransport;
use crate::transport::window::{range, Accessor, OneSided, Region};
use crate::{Error, Result};

/// The largest piece one `MPI_Put` or `MPI_Get` moves.
pub const RMA_PIECE: usize = 8 << 20;

/// One window: the MPI handle, the memory it exposes (kept alive until freed) and every
/// rank's region length (to refuse an access outside a region before MPI sees it).
struct Win {
    raw: ffi::MPI_Win,
    _mem: Box<[u64]>,
    sizes: Vec<usize>,
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
        let mut mem = vec![0u64; bytes.div_ceil(8).max(1)].into_boxed_slice();
        let base = mem.as_mut_ptr() as *mut c_void;
        let comm = &self.comm;
        let (raw, sizes) = self.rma(
            move || format!("creating window #{id}"),
            || -> Result<(ffi::MPI_Win, Vec<usize>)> {
                let sizes = comm.allgather(&[bytes as u64])?;
                // SAFETY: a null window handle to be filled in.
                let mut raw: ffi::MPI_Win = unsafe { ffi::RSMPI_WIN_NULL };
                // SAFETY: `mem` lives in the `Win` until MPI_Win_free; every process of
                // the communicator makes this call (ops' window creation is collective).
                check(
                    unsafe {
                        ffi::MPI_Win_create(
                            base,
                            bytes as ffi::MPI_Aint,
                            1,
                            ffi::RSMPI_INFO_NULL,
                            comm.handle(),
                            &mut raw,
                        )
                    },
                    "MPI_Win_create",
                )?;
                Ok((raw, sizes.iter().map(|&s| s as usize).collect()))
            },
        )?;
        let win = Win {
            raw,
            _mem: mem,
            sizes,
        };
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
            // SAFETY: collective free of a live window no access uses any more; its
            // memory is dropped only after.
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
