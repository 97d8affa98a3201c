//! Receive buffers kept between calls: fresh pages cost a fault each, and a training loop
//! receives the same sizes every step.

use std::sync::Mutex;

/// Buffers kept at most.
const KEEP: usize = 16;

/// A pool of `u64`-aligned byte buffers.
#[derive(Default)]
pub(super) struct Pool(Mutex<Vec<Vec<u64>>>);

impl Pool {
    /// A buffer of at least `bytes` bytes (rounded up to whole words), from the pool when
    /// one fits.
    pub(super) fn take(&self, bytes: usize) -> Vec<u64> {
        let words = bytes.div_ceil(8);
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= words)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        match best {
            Some(i) => pool.swap_remove(i),
            None => vec![0u64; words],
        }
    }

    /// Returns buffers, keeping the largest few.
    pub(super) fn give_back(&self, bufs: impl IntoIterator<Item = Vec<u64>>) {
        let mut pool = self.0.lock().unwrap_or_else(|p| p.into_inner());
        pool.extend(bufs.into_iter().filter(|b| b.capacity() > 0));
        pool.sort_by_key(|b| std::cmp::Reverse(b.len()));
        pool.truncate(KEEP);
    }
}

/// The first `len` bytes of a word buffer.
pub(super) fn bytes_mut(buf: &mut [u64], len: usize) -> &mut [u8] {
    &mut bytemuck::cast_slice_mut::<u64, u8>(buf)[..len]
}
