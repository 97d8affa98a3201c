//! Where things are in one rank's window region: a header of 8-byte words (the mutex,
//! one version per in-neighbour slot, push-sum's scalar p for self and for each slot),
//! then the rank's own tensor, then one slot per in-neighbour (ascending rank), each as
//! long as the tensor. Also the typed reads and writes over a [`Region`]. Pure layout and
//! copies: no arithmetic, no communication.

use crate::tensor::Element;
use crate::transport::Region;
use crate::Result;

/// The layout of a region with `slots` in-neighbour slots of `len` elements of `esize`
/// bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub slots: usize,
    pub len: usize,
    pub esize: usize,
}

impl Layout {
    /// The mutex word: 0 when free, else the holder's rank + 1.
    pub const MUTEX: usize = 0;

    /// The version word of slot `k`.
    pub fn version(&self, k: usize) -> usize {
        8 * (1 + k)
    }

    /// The owner's scalar p (an f64).
    pub fn p_self(&self) -> usize {
        8 * (1 + self.slots)
    }

    /// Slot `k`'s scalar p (an f64).
    pub fn p_slot(&self, k: usize) -> usize {
        8 * (2 + self.slots + k)
    }

    /// The owner's tensor.
    pub fn value(&self) -> usize {
        8 * (2 + 2 * self.slots)
    }

    /// Slot `k`'s tensor.
    pub fn slot(&self, k: usize) -> usize {
        self.value() + (1 + k) * self.len * self.esize
    }

    /// The whole region's length in bytes.
    pub fn bytes(&self) -> usize {
        self.slot(self.slots)
    }
}

pub(super) fn read_word(r: &mut dyn Region, at: usize) -> Result<u64> {
    let mut b = [0u8; 8];
    r.read(at, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}

pub(super) fn write_word(r: &mut dyn Region, at: usize, v: u64) -> Result<()> {
    r.write(at, &v.to_ne_bytes())
}

pub(super) fn read_f64(r: &mut dyn Region, at: usize) -> Result<f64> {
    read_word(r, at).map(f64::from_bits)
}

pub(super) fn write_f64(r: &mut dyn Region, at: usize, v: f64) -> Result<()> {
    write_word(r, at, v.to_bits())
}

pub(super) fn read_elems<E: Element>(r: &mut dyn Region, at: usize, len: usize) -> Result<Vec<E>> {
    let mut v = vec![E::default(); len];
    r.read(at, bytemuck::cast_slice_mut(&mut v))?;
    Ok(v)
}

pub(super) fn write_elems<E: Element>(r: &mut dyn Region, at: usize, v: &[E]) -> Result<()> {
    r.write(at, bytemuck::cast_slice(v))
}

/// Runs `f` on `len` elements at `at`: in place where the region is addressable, else on a
/// copy read and written back.
pub(super) fn modify_elems<E: Element>(
    r: &mut dyn Region,
    at: usize,
    len: usize,
    f: impl FnOnce(&mut [E]),
) -> Result<()> {
    let bytes = len * std::mem::size_of::<E>();
    if let Some(d) = r.direct() {
        let range = crate::transport::window::range(d.len(), at, bytes)?;
        f(bytemuck::cast_slice_mut(&mut d[range]));
        return Ok(());
    }
    let mut v = read_elems::<E>(r, at, len)?;
    f(&mut v);
    write_elems(r, at, &v)
}
