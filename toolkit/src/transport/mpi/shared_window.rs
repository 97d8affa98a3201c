//! Windows when every process shares one host: the regions live in memory all processes
//! map (`MPI_Win_allocate_shared`), and an access is plain loads and stores under a lock
//! word that sits in front of each region, taken with an atomic compare-and-swap. No MPI
//! call runs per access and the target takes no part, as in the in-process transport
//! (BlueFog's issue #73 asked for this path: RMA epochs cost milliseconds each when the
//! processes outnumber the cores).
//!
//! A rank's segment is [`LOCK_BYTES`] of lock word, then its region, rounded up to
//! [`LOCK_BYTES`], so that segments placed one after another keep the base's alignment
//! (window creation checks that every segment is 8-byte aligned and large enough). Waiting for a lock never blocks
//! without bound: it spins, yields, then sleeps, and fails after the transport's timeout
//! naming the region (its holder stuck or gone).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::transport::window::{range, Accessor, Region};
use crate::{Error, Result};

/// Bytes in front of each region: its lock word, padded to a cache line.
pub(super) const LOCK_BYTES: usize = 64;

/// The bytes a rank allocates for a region of `bytes`.
pub(super) fn segment_bytes(bytes: usize) -> usize {
    LOCK_BYTES + bytes.div_ceil(LOCK_BYTES) * LOCK_BYTES
}

/// Every rank's segment of one window, as this process maps them.
pub(super) struct Segments {
    /// Per rank, the start of its segment (lock word first).
    pub(super) bases: Vec<*mut u8>,
}

// SAFETY: the segments are memory every process and thread may reach; this code reads
// and writes a region only holding its lock word, taken atomically.
unsafe impl Send for Segments {}
unsafe impl Sync for Segments {}

/// A region under its lock.
struct Held<'a> {
    bytes: &'a mut [u8],
}

impl Region for Held<'_> {
    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn read(&mut self, offset: usize, out: &mut [u8]) -> Result<()> {
        let r = range(self.bytes.len(), offset, out.len())?;
        out.copy_from_slice(&self.bytes[r]);
        Ok(())
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        let r = range(self.bytes.len(), offset, data.len())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }

    fn direct(&mut self) -> Option<&mut [u8]> {
        Some(self.bytes)
    }
}

/// Unlocks on drop, so an accessor's error or panic never leaves the region locked.
struct Unlock<'a>(&'a AtomicU64);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// Takes `lock` (0 free, 1 held) for rank `me`, waiting at most `patience`; `what` names
/// the region for the error.
fn take(
    lock: &AtomicU64,
    me: usize,
    patience: Duration,
    what: impl Fn() -> String,
) -> Result<Unlock<'_>> {
    let start = Instant::now();
    let mut round = 0u32;
    loop {
        if lock
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(Unlock(lock));
        }
        round = round.saturating_add(1);
        if round < 64 {
            std::hint::spin_loop();
        } else if round < 512 {
            std::thread::yield_now();
        } else {
            if start.elapsed() > patience {
                return Err(Error::PeerLost {
                    rank: me,
                    op: "a window access".into(),
                    reason: format!(
                        "{} stayed locked for {patience:?} (its holder stuck or gone)",
                        what()
                    ),
                });
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

impl Segments {
    /// Runs `f` on `target`'s region of `len` bytes, holding its lock.
    pub(super) fn access(
        &self,
        me: usize,
        target: usize,
        len: usize,
        patience: Duration,
        what: impl Fn() -> String,
        f: &mut Accessor<'_>,
    ) -> Result<()> {
        let base = self.bases[target];
        // SAFETY: the segment is mapped for the window's life and starts with an 8-byte
        // aligned lock word that every process touches only atomically once the window
        // is open (its owner zeroed it before the barrier that follows creation).
        let lock = unsafe { AtomicU64::from_ptr(base as *mut u64) };
        let _held = take(lock, me, patience, what)?;
        // SAFETY: the region follows the lock word inside the segment MPI mapped; holding
        // the lock, this access is the only one reading or writing it.
        let bytes = unsafe { std::slice::from_raw_parts_mut(base.add(LOCK_BYTES), len) };
        f(&mut Held { bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_with_the_region_named() {
        let lock = AtomicU64::new(1);
        let e = take(&lock, 2, Duration::from_millis(30), || {
            "rank 3's region".into()
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("rank 2 cannot finish a window access: rank 3's region stayed locked"),
            "{e}"
        );
    }

    #[test]
    fn a_taken_lock_is_free_again_once_dropped() {
        let lock = AtomicU64::new(0);
        {
            let _held = take(&lock, 0, Duration::from_millis(30), String::new);
            assert_eq!(lock.load(Ordering::Relaxed), 1, "held");
        }
        assert_eq!(lock.load(Ordering::Relaxed), 0, "free again");
        assert_eq!(segment_bytes(1), 128);
        assert_eq!(segment_bytes(0), 64);
    }
}
