//! The window ops: put, accumulate and get between neighbours, and the update that
//! combines what arrived. Each touches a region in one exclusive access, so it is atomic
//! to every other op on that region; sums run self first, then slots by ascending rank,
//! so every transport gives the same bits.

use super::layout::{
    modify_elems, read_elems, read_f64, read_word, write_elems, write_f64, write_word,
};
use super::Window;
use crate::tensor::{Communicable, Element};
use crate::Result;

/// `w * x`, or `x` itself when `w` is 1.
fn scaled<E: Element>(x: &[E], w: f64) -> std::borrow::Cow<'_, [E]> {
    if w == 1.0 {
        std::borrow::Cow::Borrowed(x)
    } else {
        let w = E::from_f64(w);
        std::borrow::Cow::Owned(x.iter().map(|&v| w * v).collect())
    }
}

/// How a write lands in the target's slot.
#[derive(Clone, Copy, PartialEq)]
enum Write {
    Replace,
    Add,
}

impl<E: Element> Window<'_, E> {
    fn all_dsts(&self) -> Vec<(usize, f64)> {
        self.dsts.iter().map(|&j| (j, 1.0)).collect()
    }

    fn check_len(&self, what: &str, x: &[E]) -> Result<()> {
        if x.len() != self.len {
            return Err(crate::Error::InvalidArgument(format!(
                "{what} on window `{}` expected {} elements (as at win_create), found {}",
                self.name,
                self.len,
                x.len()
            )));
        }
        Ok(())
    }

    /// Sets this rank's tensor to `self_weight * x` and its p to `self_weight * p`;
    /// returns the p before.
    fn set_self(&self, x: &[E], self_weight: f64) -> Result<f64> {
        let lay = self.layout_of(self.comm.rank());
        let mut p = 0.0;
        self.access(self.comm.rank(), &mut |r| {
            p = read_f64(r, lay.p_self())?;
            write_elems(r, lay.value(), &scaled(x, self_weight))?;
            write_f64(r, lay.p_self(), self_weight * p)
        })?;
        Ok(p)
    }

    fn deposit(
        &self,
        what: &str,
        x: &[E],
        self_weight: f64,
        dsts: &[(usize, f64)],
        how: Write,
    ) -> Result<()> {
        self.check_len(what, x)?;
        let slots: Vec<usize> = dsts
            .iter()
            .map(|&(j, _)| self.my_slot_at(j))
            .collect::<Result<_>>()?;
        let p = self.set_self(x, self_weight)?;
        for (&(j, w), &k) in dsts.iter().zip(&slots) {
            let lay = self.layout_of(j);
            let v = scaled(x, w);
            self.access(j, &mut |r| {
                match how {
                    Write::Replace => {
                        write_elems(r, lay.slot(k), &v)?;
                        write_f64(r, lay.p_slot(k), w * p)?;
                    }
                    Write::Add => {
                        modify_elems::<E>(r, lay.slot(k), lay.len, |s| {
                            for (a, &b) in s.iter_mut().zip(v.iter()) {
                                *a = *a + b;
                            }
                        })?;
                        let q = read_f64(r, lay.p_slot(k))?;
                        write_f64(r, lay.p_slot(k), q + w * p)?;
                    }
                }
                let ver = read_word(r, lay.version(k))?;
                write_word(r, lay.version(k), ver + 1)
            })?;
            self.comm.count_sent(std::mem::size_of_val(x) + 16, 1);
        }
        Ok(())
    }

    /// Writes `x` into every out-neighbour's slot for this rank and makes `x` this rank's
    /// tensor (BlueFog's `win_put` with its default weights).
    pub fn neighbor_win_put<T: Communicable<Elem = E> + ?Sized>(&self, x: &T) -> Result<()> {
        self.deposit(
            "neighbor_win_put",
            &x.flat(),
            1.0,
            &self.all_dsts(),
            Write::Replace,
        )
    }

    /// Writes `w * x` into the slot for this rank at each `(rank, w)` of `dst_weights`
    /// (out-neighbours at win_create), with p scaled alike, and makes `self_weight * x`
    /// this rank's tensor (its p scaled by `self_weight`). Each write adds 1 to the slot's
    /// version.
    pub fn neighbor_win_put_with<T: Communicable<Elem = E> + ?Sized>(
        &self,
        x: &T,
        self_weight: f64,
        dst_weights: &[(usize, f64)],
    ) -> Result<()> {
        self.deposit(
            "neighbor_win_put",
            &x.flat(),
            self_weight,
            dst_weights,
            Write::Replace,
        )
    }

    /// Adds `x` into every out-neighbour's slot for this rank and makes `x` this rank's
    /// tensor (BlueFog's `win_accumulate` with its default weights).
    pub fn neighbor_win_accumulate<T: Communicable<Elem = E> + ?Sized>(&self, x: &T) -> Result<()> {
        self.deposit(
            "neighbor_win_accumulate",
            &x.flat(),
            1.0,
            &self.all_dsts(),
            Write::Add,
        )
    }

    /// Adds `w * x` (and `w * p` to the slot's p) into the slot for this rank at each
    /// `(rank, w)` of `dst_weights`, and makes `self_weight * x` this rank's tensor (its p
    /// scaled by `self_weight`): push-sum's step, which keeps the sum over ranks of tensor
    /// plus slots exact when `self_weight + sum w = 1`.
    ///
    /// ```
    /// use fogkit::topology;
    /// let totals = fogkit::run(3, |bf| {
    ///     bf.set_topology(topology::ring(3))?;
    ///     let x = [bf.rank() as f64 + 1.0];
    ///     let win = bf.win_create("s", &x, true)?;
    ///     let d = win.out_neighbor_ranks().to_vec();
    ///     let w = 1.0 / (d.len() + 1) as f64;
    ///     let dst: Vec<_> = d.iter().map(|&j| (j, w)).collect();
    ///     win.neighbor_win_accumulate_with(&x, w, &dst)?;
    ///     bf.barrier()?;
    ///     let y = win.win_update_then_collect()?; // own share + what arrived
    ///     let p = win.associated_p()?;
    ///     win.win_free()?;
    ///     Ok((y[0], p))
    /// })
    /// .unwrap();
    /// let sum: f64 = totals.iter().map(|(_, v)| v.0).sum();
    /// assert!((sum - 6.0).abs() < 1e-12); // 1 + 2 + 3, kept
    /// assert!(totals.iter().all(|(_, v)| (v.1 - 1.0).abs() < 1e-12)); // regular graph
    /// ```
    pub fn neighbor_win_accumulate_with<T: Communicable<Elem = E> + ?Sized>(
        &self,
        x: &T,
        self_weight: f64,
        dst_weights: &[(usize, f64)],
    ) -> Result<()> {
        self.deposit(
            "neighbor_win_accumulate",
            &x.flat(),
            self_weight,
            dst_weights,
            Write::Add,
        )
    }

    /// Reads every in-neighbour's tensor (and p) into its slot here (BlueFog's `win_get`
    /// with its default weights).
    pub fn neighbor_win_get(&self) -> Result<()> {
        let all: Vec<(usize, f64)> = self.srcs.iter().map(|&j| (j, 1.0)).collect();
        self.neighbor_win_get_with(&all)
    }

    /// Reads `w * x_j` (and `w * p_j`) into the slot of each `(j, w)` of `src_weights`
    /// (in-neighbours at win_create); each adds 1 to the slot's version.
    pub fn neighbor_win_get_with(&self, src_weights: &[(usize, f64)]) -> Result<()> {
        let me = self.comm.rank();
        let mine = self.layout_of(me);
        for &(j, w) in src_weights {
            let k = self.slot_of(j)?;
            let theirs = self.layout_of(j);
            let (mut v, mut p) = (Vec::new(), 0.0);
            self.access(j, &mut |r| {
                v = read_elems::<E>(r, theirs.value(), theirs.len)?;
                p = read_f64(r, theirs.p_self())?;
                Ok(())
            })?;
            let v = scaled(&v, w);
            self.access(me, &mut |r| {
                write_elems(r, mine.slot(k), &v)?;
                write_f64(r, mine.p_slot(k), w * p)?;
                let ver = read_word(r, mine.version(k))?;
                write_word(r, mine.version(k), ver + 1)
            })?;
        }
        Ok(())
    }

    /// Combines this rank's tensor with its slots using the weights of the topology at
    /// win_create (row `rank` of W), makes the result this rank's tensor and returns it
    /// (BlueFog's `win_update`); p is combined alike; versions go back to 0.
    pub fn win_update(&self) -> Result<Vec<E>> {
        let (sw, nw) = self.topology.recv_weights(self.comm.rank());
        self.win_update_with(sw, &nw, false)
    }

    /// `self_weight * x + sum_j w_j * slot_j` over `neighbor_weights` (in-neighbours at
    /// win_create), p alike; the result becomes this rank's tensor and is returned. With
    /// `reset`, every slot and its p are zeroed after. Versions go back to 0.
    pub fn win_update_with(
        &self,
        self_weight: f64,
        neighbor_weights: &[(usize, f64)],
        reset: bool,
    ) -> Result<Vec<E>> {
        let mut terms: Vec<(usize, f64)> = neighbor_weights
            .iter()
            .map(|&(j, w)| Ok((self.slot_of(j)?, w)))
            .collect::<Result<_>>()?;
        terms.sort_by_key(|t| t.0);
        let lay = self.layout_of(self.comm.rank());
        let mut out = Vec::new();
        self.access(self.comm.rank(), &mut |r| {
            let sw = E::from_f64(self_weight);
            let mut acc: Vec<E> = read_elems::<E>(r, lay.value(), lay.len)?
                .into_iter()
                .map(|v| sw * v)
                .collect();
            let mut p = self_weight * read_f64(r, lay.p_self())?;
            for &(k, w) in &terms {
                let s = read_elems::<E>(r, lay.slot(k), lay.len)?;
                let we = E::from_f64(w);
                for (a, &b) in acc.iter_mut().zip(&s) {
                    *a = *a + we * b;
                }
                p += w * read_f64(r, lay.p_slot(k))?;
            }
            write_elems(r, lay.value(), &acc)?;
            write_f64(r, lay.p_self(), p)?;
            for k in 0..lay.slots {
                if reset {
                    write_elems(r, lay.slot(k), &vec![E::default(); lay.len])?;
                    write_f64(r, lay.p_slot(k), 0.0)?;
                }
                write_word(r, lay.version(k), 0)?;
            }
            out = acc;
            Ok(())
        })?;
        Ok(out)
    }

    /// Adds every slot to this rank's tensor (and p), zeroes the slots and returns the sum
    /// (BlueFog's `win_update_then_collect`): push-sum's receive step.
    pub fn win_update_then_collect(&self) -> Result<Vec<E>> {
        let all: Vec<(usize, f64)> = self.srcs.iter().map(|&j| (j, 1.0)).collect();
        self.win_update_with(1.0, &all, true)
    }
}
