//! The second seam: one-sided access. A rank exposes a region of its memory as a window,
//! and any rank may then read or write any rank's region without that rank taking part
//! (MPI-3's passive-target RMA; on in-process ranks, shared memory behind a lock).
//!
//! The contract is small on purpose: [`OneSided::win_open`] and [`OneSided::win_close`]
//! (collective), and [`OneSided::access`], which runs a closure with exclusive access to one
//! rank's region: no other access to that region runs at the same time, so a sequence of
//! reads and writes inside one access is atomic to every other rank. Everything a window
//! means (slots per neighbour, versions, weights, push-sum's scalar) is written once in
//! `ops`, over this trait. A transport never does arithmetic here either; it must never
//! hang: an access that cannot finish in the transport's timeout is an error (or, where
//! MPI gives no way back, ends the job with a message).

use crate::Result;

/// One rank's window memory, as one access sees it. Offsets are bytes from the start of
/// the region; a range outside it is an error.
pub trait Region {
    /// The region's length in bytes.
    fn len(&self) -> usize;
    /// Whether the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies bytes `offset..offset + out.len()` into `out`.
    fn read(&mut self, offset: usize, out: &mut [u8]) -> Result<()>;
    /// Copies `data` to bytes `offset..offset + data.len()`.
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<()>;
    /// The region's bytes themselves, when this rank can address them (in-process ranks,
    /// or this rank's own region on a transport that allows it): lets ops combine in
    /// place instead of reading and writing back. Aligned to 8 bytes.
    fn direct(&mut self) -> Option<&mut [u8]> {
        None
    }
}

/// What [`OneSided::access`] runs: it gets the target's region for the whole access.
pub type Accessor<'a> = dyn FnMut(&mut dyn Region) -> Result<()> + 'a;

/// One-sided access to the ranks' windows (see the module docs).
pub trait OneSided: Send + Sync {
    /// Collective over all ranks (each calls it once for the same `id`): exposes `bytes`
    /// zeroed bytes of this rank's memory as its region of window `id`. Ranks' regions
    /// may differ in length. Callers make every rank meet (a barrier) after it and before
    /// their first access to another rank's region.
    fn win_open(&self, id: u64, bytes: usize) -> Result<()>;
    /// Collective: ends window `id` on every rank. Callers make every rank meet after
    /// its last access and before this call.
    fn win_close(&self, id: u64) -> Result<()>;
    /// How long a rank waits for what another rank holds (a window's mutex) before it
    /// fails: the transport's call timeout.
    fn patience(&self) -> std::time::Duration;
    /// Runs `f` with exclusive access to `target`'s region of window `id` (`target` may be
    /// this rank). Blocks while another access to that region runs.
    fn access(&self, id: u64, target: usize, f: &mut Accessor<'_>) -> Result<()>;
}

/// The checked range `offset..offset + len` of a region of `size` bytes.
pub(crate) fn range(size: usize, offset: usize, len: usize) -> Result<std::ops::Range<usize>> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(offset..end),
        _ => Err(crate::Error::InvalidArgument(format!(
            "window access of {len} bytes at offset {offset} expected to lie inside the \
             region of {size} bytes"
        ))),
    }
}
