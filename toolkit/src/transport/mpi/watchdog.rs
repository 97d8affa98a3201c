//! Deadlines for the MPI calls that cannot be polled: start-up (`MPI_Init` and the
//! start-up collectives), `MPI_Abort` and `MPI_Finalize`. A watchdog thread ends the
//! process, after saying why, if the call has not returned in time; dropping the watchdog
//! disarms it.
//!
//! It must never call MPI (the stuck call holds it) nor run exit handlers (one of them
//! finalizes MPI): it writes its message and leaves with `_exit`.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

extern "C" {
    fn _exit(code: c_int) -> !;
}

/// Start-up and finalize wait at least this long, whatever the call timeout: starting
/// processes can take seconds on a loaded machine.
pub(super) const AT_LEAST: Duration = Duration::from_secs(30);

/// The longest a start-up or finalize may take: the transport's call timeout (the
/// largest any endpoint was created with) or [`AT_LEAST`], 120 s until one is created.
static LIMIT_MS: AtomicU64 = AtomicU64::new(120_000);

/// Sets the start-up and finalize limit from a call timeout `t`; returns it.
pub(super) fn allow(t: Duration) -> Duration {
    let t = t.max(AT_LEAST);
    LIMIT_MS.store(t.as_millis() as u64, Ordering::Relaxed);
    t
}

/// The current limit.
pub(super) fn limit() -> Duration {
    Duration::from_millis(LIMIT_MS.load(Ordering::Relaxed))
}

/// Ends the process with `code` after printing `message` unless dropped within `after`.
pub(super) struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

impl Watchdog {
    /// Arms a watchdog.
    pub(super) fn arm(
        after: Duration,
        code: i32,
        message: impl FnOnce() -> String + Send + 'static,
    ) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("fogkit-watchdog".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(after) {
                    use std::io::Write;
                    let _ = std::io::stderr().write_all(format!("{}\n", message()).as_bytes());
                    // SAFETY: _exit ends the process at once; nothing here is left half done
                    // that exit handlers would finish (they would call MPI, which is stuck).
                    unsafe { _exit(code) }
                }
            });
        if spawned.is_err() {
            // Without a thread there is no deadline, but the call itself still runs.
            tracing::warn!("could not start a watchdog thread; this MPI call has no deadline");
        }
        Watchdog { _disarm: tx }
    }
}
