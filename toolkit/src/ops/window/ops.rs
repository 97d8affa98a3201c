//! The window ops: put, accumulate and get between neighbours, and the update that
//! combines what arrived. Each touches a region in one exclusive access, so it is atomic
//! to every other op on that region; sums run self first, then slots by ascending rank,
//! so every transport gives the same bits.

use super::layout::{read_elems, read_f64, write_elems, write_f64, write_word};
use super::plan::{Deposit, Fetch, Plan, Target};
use super::Window;
use crate::ops::nonblocking::Handle;
use crate::ops::queue::{Flat, Work};
use crate::ops::Op;
use crate::tensor::{Communicable, Element};
use crate::Result;

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

    /// The ranks of `weights` as plan targets, each with its slot from `slot` (which
    /// refuses a rank that is not a neighbour).
    fn targets(
        &self,
        weights: &[(usize, f64)],
        slot: impl Fn(usize) -> Result<usize>,
    ) -> Result<Vec<Target>> {
        weights
            .iter()
            .map(|&(j, w)| {
                Ok(Target {
                    rank: j,
                    layout: self.layout_of(j),
                    slot: slot(j)?,
                    weight: w,
                })
            })
            .collect()
    }

    /// The plan of a put or accumulate, its destinations checked.
    fn deposit_plan(
        &self,
        what: &str,
        x: &[E],
        self_weight: f64,
        dsts: &[(usize, f64)],
        add: bool,
    ) -> Result<Deposit> {
        self.check_len(what, x)?;
        let targets = self.targets(dsts, |j| self.my_slot_at(j))?;
        let me = self.comm.rank();
        Ok(Deposit {
            id: self.id,
            me,
            mine: self.layout_of(me),
            self_weight,
            targets,
            add,
        })
    }

    fn deposit(&self, x: &[E], self_weight: f64, dsts: &[(usize, f64)], add: bool) -> Result<()> {
        let op = if add { Op::WinAccumulate } else { Op::WinPut };
        let plan = self.deposit_plan(op.name(), x, self_weight, dsts, add)?;
        let _span = op.span().entered();
        plan.run(self.comm.one_sided()?, x)?;
        self.comm.count_sent(plan.bytes(), plan.targets.len());
        Ok(())
    }

    /// Starts `plan` on the communication thread; the handle borrows the window.
    fn start(&self, op: Op, plan: Plan, x: Vec<E>) -> Result<Handle<'_, ()>> {
        self.comm.one_sided()?;
        if let Plan::Deposit(d) = &plan {
            self.comm.count_sent(d.bytes(), d.targets.len());
        }
        let ticket = self.comm.submit(Work::Window {
            op,
            plan,
            x: Flat::from_vec(x),
        })?;
        // The finishing closure holds the window's borrow, so the handle holds it too.
        let window = self;
        Ok(Handle::new(
            ticket,
            Box::new(move |_| {
                let _ = window.id;
                Ok(())
            }),
        ))
    }

    /// [`neighbor_win_put`](Window::neighbor_win_put), started on the communication
    /// thread (BlueFog's `win_put_nonblocking`); `wait` or `poll` the handle. The handle
    /// borrows the window: it cannot be freed while the op is in flight.
    ///
    /// ```
    /// let v = fogkit::run(2, |bf| {
    ///     let win = bf.win_create("nb", &[bf.rank() as f64], true)?;
    ///     let h = win.neighbor_win_put_nonblocking(&[bf.rank() as f64 + 10.0])?;
    ///     h.wait()?; // win.win_free() here instead would not compile
    ///     bf.barrier()?;
    ///     let got = win.neighbor_values()?;
    ///     win.win_free()?;
    ///     Ok(got[0].1[0])
    /// })
    /// .unwrap();
    /// assert_eq!((v[0], v[1]), (11.0, 10.0));
    /// ```
    pub fn neighbor_win_put_nonblocking<T: Communicable<Elem = E> + ?Sized>(
        &self,
        x: &T,
    ) -> Result<Handle<'_, ()>> {
        self.neighbor_win_put_nonblocking_with(x, 1.0, &self.all_dsts())
    }

    /// [`neighbor_win_put_with`](Window::neighbor_win_put_with), nonblocking.
    pub fn neighbor_win_put_nonblocking_with<T: Communicable<Elem = E> + ?Sized>(
        &self,
        x: &T,
        self_weight: f64,
        dst_weights: &[(usize, f64)],
    ) -> Result<Handle<'_, ()>> {
        let x = x.flat().into_owned();
        let plan = self.deposit_plan("neighbor_win_put", &x, self_weight, dst_weights, false)?;
        self.start(Op::WinPut, Plan::Deposit(plan), x)
    }

    /// [`neighbor_win_accumulate_with`](Window::neighbor_win_accumulate_with), nonblocking
    /// (BlueFog's `win_accumulate_nonblocking`).
    pub fn neighbor_win_accumulate_nonblocking_with<T: Communicable<Elem = E> + ?Sized>(
        &self,
        x: &T,
        self_weight: f64,
        dst_weights: &[(usize, f64)],
    ) -> Result<Handle<'_, ()>> {
        let x = x.flat().into_owned();
        let plan = self.deposit_plan(
            "neighbor_win_accumulate",
            &x,
            self_weight,
            dst_weights,
            true,
        )?;
        self.start(Op::WinAccumulate, Plan::Deposit(plan), x)
    }

    /// [`neighbor_win_get_with`](Window::neighbor_win_get_with), nonblocking (BlueFog's
    /// `win_get_nonblocking`).
    pub fn neighbor_win_get_nonblocking_with(
        &self,
        src_weights: &[(usize, f64)],
    ) -> Result<Handle<'_, ()>> {
        let plan = self.fetch_plan(src_weights)?;
        self.start(Op::WinGet, Plan::Fetch(plan), Vec::new())
    }

    fn fetch_plan(&self, src_weights: &[(usize, f64)]) -> Result<Fetch> {
        let me = self.comm.rank();
        let targets = self.targets(src_weights, |j| self.slot_of(j))?;
        Ok(Fetch {
            id: self.id,
            me,
            mine: self.layout_of(me),
            targets,
        })
    }

    /// Writes `x` into every out-neighbour's slot for this rank and makes `x` this rank's
    /// tensor (BlueFog's `win_put` with its default weights).
    pub fn neighbor_win_put<T: Communicable<Elem = E> + ?Sized>(&self, x: &T) -> Result<()> {
        self.deposit(&x.flat(), 1.0, &self.all_dsts(), false)
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
        self.deposit(&x.flat(), self_weight, dst_weights, false)
    }

    /// Adds `x` into every out-neighbour's slot for this rank and makes `x` this rank's
    /// tensor (BlueFog's `win_accumulate` with its default weights).
    pub fn neighbor_win_accumulate<T: Communicable<Elem = E> + ?Sized>(&self, x: &T) -> Result<()> {
        self.deposit(&x.flat(), 1.0, &self.all_dsts(), true)
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
        self.deposit(&x.flat(), self_weight, dst_weights, true)
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
        let plan = self.fetch_plan(src_weights)?;
        let _span = Op::WinGet.span().entered();
        plan.run::<E>(self.comm.one_sided()?)
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
        let _span = Op::WinUpdate.span().entered();
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
