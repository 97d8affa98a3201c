//! One-sided access between in-process ranks: each rank's region of a window is a
//! buffer behind its own lock, which [`OneSided::access`] holds for the whole access, so
//! ranks read and write each other's regions directly, and never two at once.
//!
//! Everything here is safe code: the lock is the whole protocol. It must never run user
//! code under a lock other than the accessor ops gives it, nor wait without a bound. It
//! depends on nothing of the transport but the seam's types, so that `tests/window-core`
//! can run it under Miri (`one_sided.rs` connects it to the transport).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::transport::window::{range, Accessor, Region};
use crate::{Error, Result};

/// A rank's region in 8-byte words and its length in bytes; `None` while not open.
type Slot = Mutex<Option<(Vec<u64>, usize)>>;

/// Every rank's region of one window.
pub struct Window {
    /// Per rank: its region in 8-byte words (so that ops may view it as f64 and u64),
    /// and its length in bytes; `None` until the rank opens it and after it closes it.
    regions: Vec<Slot>,
    /// Ranks that have opened it and not closed it yet.
    open: Mutex<usize>,
}

/// The windows of one world, by id.
#[derive(Default)]
pub struct Windows {
    by_id: Mutex<HashMap<u64, Arc<Window>>>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code that can panic runs under these locks except fogkit's accessors, whose
    // writes are whole copies: recover the guard rather than propagate poisoning.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Windows {
    /// Opens `rank`'s region of window `id` (of `n` ranks): `bytes` zeroed bytes.
    pub fn open(&self, n: usize, id: u64, rank: usize, bytes: usize) -> Result<()> {
        let win = {
            let mut map = relock(&self.by_id);
            Arc::clone(map.entry(id).or_insert_with(|| {
                Arc::new(Window {
                    regions: (0..n).map(|_| Mutex::new(None)).collect(),
                    open: Mutex::new(0),
                })
            }))
        };
        let mut region = relock(&win.regions[rank]);
        if region.is_some() {
            return Err(Error::InvalidArgument(format!(
                "rank {rank} opened window #{id} twice"
            )));
        }
        *region = Some((vec![0u64; bytes.div_ceil(8)], bytes));
        *relock(&win.open) += 1;
        Ok(())
    }

    /// Closes `rank`'s region of window `id`; the last rank to close removes the window.
    pub fn close(&self, id: u64, rank: usize) -> Result<()> {
        let mut map = relock(&self.by_id);
        let win = map.get(&id).cloned().ok_or_else(|| unknown(id))?;
        *relock(&win.regions[rank]) = None;
        let mut open = relock(&win.open);
        *open = open.saturating_sub(1);
        if *open == 0 {
            map.remove(&id);
        }
        Ok(())
    }

    fn get(&self, id: u64) -> Result<Arc<Window>> {
        relock(&self.by_id)
            .get(&id)
            .cloned()
            .ok_or_else(|| unknown(id))
    }
}

fn unknown(id: u64) -> Error {
    Error::InvalidArgument(format!(
        "window #{id} expected to be open on every rank, found it closed or never created"
    ))
}

/// A locked region, as an access sees it.
struct Locked<'a> {
    words: &'a mut Vec<u64>,
    bytes: usize,
}

impl Region for Locked<'_> {
    fn len(&self) -> usize {
        self.bytes
    }

    fn read(&mut self, offset: usize, out: &mut [u8]) -> Result<()> {
        let r = range(self.bytes, offset, out.len())?;
        out.copy_from_slice(&bytemuck::cast_slice::<u64, u8>(self.words)[r]);
        Ok(())
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        let r = range(self.bytes, offset, data.len())?;
        bytemuck::cast_slice_mut::<u64, u8>(self.words)[r].copy_from_slice(data);
        Ok(())
    }

    fn direct(&mut self) -> Option<&mut [u8]> {
        Some(&mut bytemuck::cast_slice_mut::<u64, u8>(self.words)[..self.bytes])
    }
}

impl Windows {
    /// Runs `f` on `target`'s region of window `id` (of `n` ranks), holding its lock.
    pub fn access(&self, n: usize, id: u64, target: usize, f: &mut Accessor<'_>) -> Result<()> {
        if target >= n {
            return Err(Error::InvalidArgument(format!(
                "window access expected a rank below {n}, found {target}"
            )));
        }
        let win = self.get(id)?;
        let mut guard = relock(&win.regions[target]);
        let Some((words, bytes)) = guard.as_mut() else {
            return Err(Error::InvalidArgument(format!(
                "window #{id} is not open on rank {target}"
            )));
        };
        f(&mut Locked {
            words,
            bytes: *bytes,
        })
    }
}
