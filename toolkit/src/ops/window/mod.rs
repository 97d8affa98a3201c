//! Windows: BlueFog's one-sided communication. Each rank exposes its tensor and one slot
//! per in-neighbour (of the topology in force at [`Comm::win_create`]); a rank then writes
//! into its out-neighbours' slots ([`Window::neighbor_win_put`],
//! [`Window::neighbor_win_accumulate`]), reads its in-neighbours' tensors
//! ([`Window::neighbor_win_get`]) and combines what arrived ([`Window::win_update`],
//! [`Window::win_update_then_collect`]) without the other ranks taking part, so ranks
//! progress at their own pace. Push-sum's scalar p travels with every tensor
//! ([`Window::associated_p`]).
//!
//! Every op is one exclusive access per region it touches ([`OneSided::access`]): a put
//! never interleaves with the target's update, so each op is atomic where BlueFog needs
//! `require_mutex`; [`Window::win_mutex`] is for sequences of ops. Written once over the
//! transport's one-sided seam; nothing here knows which transport runs it, and no op
//! here waits for another rank except creation, freeing and a held mutex.
//!
//! [`OneSided::access`]: crate::transport::OneSided::access

mod layout;
mod mutex;
mod ops;
mod plan;

use std::marker::PhantomData;
use std::sync::Arc;

use layout::{read_elems, read_f64, read_word, write_elems, write_f64, Layout};
pub use mutex::WinMutex;
pub(crate) use plan::Plan;

use super::core::info;
use super::{Comm, Op};
use crate::tensor::{Communicable, Element};
use crate::topology::Topology;
use crate::transport::CallInfo;
use crate::{Error, Result};

/// A window over tensors of `len` elements of `E`, made by [`Comm::win_create`] on every
/// rank and ended by [`Window::win_free`]. Its ops borrow it: freeing it while a mutex
/// guard or an op uses it does not compile.
///
/// ```
/// use fogkit::topology;
/// // Each rank writes its value into its ring neighbours' slots, then averages.
/// let avg = fogkit::run(4, |bf| {
///     bf.set_topology(topology::ring(4))?;
///     let x = vec![bf.rank() as f64; 2];
///     let win = bf.win_create("x", &x, true)?;
///     win.neighbor_win_put(&x)?;
///     bf.barrier()?; // every put has landed
///     let y = win.win_update()?; // (x_left + x + x_right) / 3, the ring's weights
///     win.win_free()?;
///     Ok(y)
/// })
/// .unwrap();
/// assert_eq!(avg[1], vec![1.0; 2]); // (0 + 1 + 2) / 3
/// ```
pub struct Window<'c, E: Element> {
    comm: &'c Comm,
    id: u64,
    name: String,
    len: usize,
    topology: Arc<Topology>,
    /// This rank's in-neighbours (its slots, in order) and out-neighbours.
    srcs: Vec<usize>,
    dsts: Vec<usize>,
    freed: bool,
    _elem: PhantomData<E>,
}

/// A stable 64-bit hash of a window's name (FNV-1a), compared across ranks.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Comm {
    /// Creates window `name` on every rank (collective; BlueFog's `win_create`) over the
    /// topology in force, holding `x` as this rank's tensor and, for each in-neighbour, a
    /// slot that starts as a copy of `x` (or zeros with `zero_init`). Push-sum's p starts
    /// at 1 for the tensor and for each copy (0 for zeroed slots).
    pub fn win_create<T: Communicable + ?Sized>(
        &self,
        name: &str,
        x: &T,
        zero_init: bool,
    ) -> Result<Window<'_, T::Elem>> {
        let x = x.flat();
        let one_sided = self.one_sided()?;
        let id = self.reserve_window(name)?;
        let made = self.open_window::<T::Elem>(one_sided, id, name, &x, zero_init);
        if made.is_err() {
            self.release_window(name);
        }
        made
    }

    fn open_window<E: Element>(
        &self,
        one_sided: &dyn crate::transport::OneSided,
        id: u64,
        name: &str,
        x: &[E],
        zero_init: bool,
    ) -> Result<Window<'_, E>> {
        let topology = self.topology();
        let me = self.rank();
        let tag = name_hash(name) ^ topology.fingerprint().rotate_left(17);
        let call = info::<E>(Op::WinCreate, x.len(), true, None, tag);
        self.meet(&call)?;
        let srcs = topology.in_neighbors(me);
        let dsts = topology.out_neighbors(me);
        let lay = Layout {
            slots: srcs.len(),
            len: x.len(),
            esize: std::mem::size_of::<E>(),
        };
        one_sided.win_open(id, lay.bytes())?;
        one_sided.access(id, me, &mut |r| {
            write_elems(r, lay.value(), x)?;
            write_f64(r, lay.p_self(), 1.0)?;
            if !zero_init {
                for k in 0..lay.slots {
                    write_elems(r, lay.slot(k), x)?;
                    write_f64(r, lay.p_slot(k), 1.0)?;
                }
            }
            Ok(())
        })?;
        // No rank touches another's region before every region is open and filled.
        self.meet(&call)?;
        Ok(Window {
            comm: self,
            id,
            name: name.to_string(),
            len: x.len(),
            topology,
            srcs,
            dsts,
            freed: false,
            _elem: PhantomData,
        })
    }

    /// A blocking exchange with nothing to send: every rank meets here, their calls checked.
    fn meet(&self, call: &CallInfo<Op>) -> Result<()> {
        let (_span, t) = self.blocking(call.op)?;
        t.exchange(call, &[], &[], &mut |_, _| Ok(()))
    }
}

impl<'c, E: Element> Window<'c, E> {
    /// The window's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Elements in the tensor (and in each slot).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The topology the window was created over.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// This rank's in-neighbours, whose slots it holds (ascending).
    pub fn in_neighbor_ranks(&self) -> &[usize] {
        &self.srcs
    }

    /// This rank's out-neighbours, into whose slots it may write (ascending).
    pub fn out_neighbor_ranks(&self) -> &[usize] {
        &self.dsts
    }

    fn layout_of(&self, rank: usize) -> Layout {
        let slots = if rank == self.comm.rank() {
            self.srcs.len()
        } else {
            self.topology.in_neighbors(rank).len()
        };
        Layout {
            slots,
            len: self.len,
            esize: std::mem::size_of::<E>(),
        }
    }

    /// This rank's slot index at out-neighbour `dst`, or an error naming the window's
    /// out-neighbours.
    fn my_slot_at(&self, dst: usize) -> Result<usize> {
        let me = self.comm.rank();
        if !self.dsts.contains(&dst) {
            return Err(Error::InvalidArgument(format!(
                "window `{}` expected a destination among rank {me}'s out-neighbours {:?} \
                 (the topology at win_create), found {dst}",
                self.name, self.dsts
            )));
        }
        let nbrs = self.topology.in_neighbors(dst);
        nbrs.iter()
            .position(|&j| j == me)
            .ok_or_else(|| Error::InvalidArgument(format!("rank {dst} has no slot for {me}")))
    }

    /// Slot index of in-neighbour `src` here, or an error naming the in-neighbours.
    fn slot_of(&self, src: usize) -> Result<usize> {
        self.srcs.iter().position(|&j| j == src).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "window `{}` expected a source among rank {}'s in-neighbours {:?} (the \
                 topology at win_create), found {src}",
                self.name,
                self.comm.rank(),
                self.srcs
            ))
        })
    }

    fn access(&self, target: usize, f: &mut crate::transport::window::Accessor<'_>) -> Result<()> {
        self.comm.one_sided()?.access(self.id, target, f)
    }

    /// This rank's tensor as its neighbours see it (after the last update or put).
    pub fn value(&self) -> Result<Vec<E>> {
        let lay = self.layout_of(self.comm.rank());
        let mut out = Vec::new();
        self.access(self.comm.rank(), &mut |r| {
            out = read_elems(r, lay.value(), lay.len)?;
            Ok(())
        })?;
        Ok(out)
    }

    /// What each in-neighbour has deposited here so far (its slot), in ascending rank.
    pub fn neighbor_values(&self) -> Result<Vec<(usize, Vec<E>)>> {
        let lay = self.layout_of(self.comm.rank());
        let mut out = Vec::new();
        self.access(self.comm.rank(), &mut |r| {
            out = (0..lay.slots)
                .map(|k| Ok((self.srcs[k], read_elems(r, lay.slot(k), lay.len)?)))
                .collect::<Result<_>>()?;
            Ok(())
        })?;
        Ok(out)
    }

    /// Push-sum's scalar p carried with this rank's tensor (BlueFog's
    /// `win_associated_p`): 1 at creation, combined with the same weights as the tensor
    /// by every op, so that `x / p` is the de-biased estimate.
    pub fn associated_p(&self) -> Result<f64> {
        let lay = self.layout_of(self.comm.rank());
        let mut p = 0.0;
        self.access(self.comm.rank(), &mut |r| {
            p = read_f64(r, lay.p_self())?;
            Ok(())
        })?;
        Ok(p)
    }

    /// How many times each in-neighbour has written into its slot here since this rank's
    /// last [`win_update`](Window::win_update) (BlueFog's `get_win_version`), ascending.
    pub fn get_win_version(&self) -> Result<Vec<(usize, u64)>> {
        let lay = self.layout_of(self.comm.rank());
        let mut out = Vec::new();
        self.access(self.comm.rank(), &mut |r| {
            out = (0..lay.slots)
                .map(|k| Ok((self.srcs[k], read_word(r, lay.version(k))?)))
                .collect::<Result<_>>()?;
            Ok(())
        })?;
        Ok(out)
    }

    /// Frees the window on every rank (collective; BlueFog's `win_free`). Every rank's
    /// window ops before it have finished when it returns.
    pub fn win_free(mut self) -> Result<()> {
        self.freed = true;
        self.comm.release_window(&self.name);
        let call = info::<E>(Op::WinFree, self.len, true, None, name_hash(&self.name));
        self.comm.meet(&call)?;
        self.comm.one_sided()?.win_close(self.id)
    }
}

impl<E: Element> Drop for Window<'_, E> {
    fn drop(&mut self) {
        if !self.freed {
            // Freeing is collective: it cannot happen here. The memory stays until the
            // job ends.
            tracing::warn!(
                "window `{}` dropped without win_free: its memory stays until the job ends",
                self.name
            );
            self.comm.release_window(&self.name);
        }
    }
}
