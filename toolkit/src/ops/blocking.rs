//! The blocking collectives, as methods of [`Comm`]. Each waits first for this rank's
//! pending nonblocking ops (so all ranks issue calls in one order), then runs inside its
//! op's `tracing` span.

use super::core::{
    allgather_core, allreduce_core, broadcast_core, gather_from, neighbor_mix, rebuild_all,
    sorted_unique,
};
use super::engine::Comm;
use super::kernel::ReduceOp;
use super::weights::{Mix, NeighborWeights};
use super::Op;
use crate::tensor::{Communicable, Element};
use crate::topology::Topology;
use crate::transport::CallInfo;
use crate::{Error, Result};

impl Comm {
    /// Waits until every rank reaches the barrier.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// fogkit::run(3, |bf| bf.barrier()).unwrap();
    /// ```
    pub fn barrier(&self) -> Result<()> {
        let (_op, t) = self.blocking(Op::Barrier)?;
        t.exchange(&CallInfo::bare(Op::Barrier), &[], &[], &mut |_, _| Ok(()))
    }

    /// Sets the topology used by [`neighbor_allreduce`](Self::neighbor_allreduce) and
    /// [`neighbor_allgather`](Self::neighbor_allgather). Collective: every rank must pass
    /// the same graph. Rejects a topology whose size is not the number of ranks, whose
    /// receive weights do not sum to one, or that is not connected.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// use fogkit::topology;
    /// let r = fogkit::run(4, |bf| bf.set_topology(topology::ring(3)));
    /// assert!(r.unwrap_err().to_string().contains("expected a topology of 4 ranks"));
    /// ```
    pub fn set_topology(&self, topo: Topology) -> Result<()> {
        topo.validate_for(self.size())?;
        let mut call = CallInfo::bare(Op::SetTopology);
        call.tag = topo.fingerprint();
        let (_op, t) = self.blocking(Op::SetTopology)?;
        t.exchange(&call, &[], &[], &mut |_, _| Ok(()))?;
        self.replace_topology(topo);
        Ok(())
    }

    /// Root's value on every rank.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// let v = fogkit::run(3, |bf| bf.broadcast(&vec![bf.rank() as f32; 2], 1)).unwrap();
    /// assert_eq!(v, vec![vec![1.0, 1.0]; 3]);
    /// ```
    pub fn broadcast<T: Communicable + ?Sized>(&self, x: &T, root: usize) -> Result<T::Output> {
        let flat = x.flat();
        let (_op, t) = self.blocking(Op::Broadcast)?;
        let out = broadcast_core(t, &flat, root)?;
        x.rebuild(out)
    }

    /// The average over all ranks (BlueFog's `allreduce` default).
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// let v = fogkit::run(4, |bf| bf.allreduce(&[bf.rank() as f64])).unwrap();
    /// assert_eq!(v, vec![[1.5]; 4]);
    /// ```
    pub fn allreduce<T: Communicable + ?Sized>(&self, x: &T) -> Result<T::Output> {
        self.allreduce_op(x, ReduceOp::Avg)
    }

    /// Elementwise sum, average, min or max over all ranks, reduced in rank order.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn allreduce_op<T: Communicable + ?Sized>(&self, x: &T, op: ReduceOp) -> Result<T::Output> {
        let flat = x.flat();
        let mut out = vec![T::Elem::default(); flat.len()];
        let (_op, t) = self.blocking(Op::Allreduce)?;
        allreduce_core(t, &flat, &mut out, op)?;
        x.rebuild(out)
    }

    /// [`allreduce_op`](Self::allreduce_op) into a buffer the caller owns.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn allreduce_into<E: Element>(&self, x: &[E], out: &mut [E], op: ReduceOp) -> Result<()> {
        let (_op, t) = self.blocking(Op::Allreduce)?;
        allreduce_core(t, x, out, op)
    }

    /// Gathers every rank's bytes on `root` (in rank order; `None` on other ranks): how
    /// metrics and other non-numeric data reach one place.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// let v = fogkit::run(3, |bf| bf.gather_bytes(&[bf.rank() as u8; 2], 0)).unwrap();
    /// assert_eq!(v[0], Some(vec![vec![0, 0], vec![1, 1], vec![2, 2]]));
    /// assert_eq!(v[1], None);
    /// ```
    pub fn gather_bytes(&self, data: &[u8], root: usize) -> Result<Option<Vec<Vec<u8>>>> {
        let (n, me) = (self.size(), self.rank());
        if root >= n {
            return Err(Error::InvalidArgument(format!(
                "gather root must be a rank below {n}, found {root}"
            )));
        }
        let (sends, recv): (Vec<(usize, &[u8])>, Vec<usize>) = if me == root {
            (vec![], (0..n).filter(|&r| r != me).collect())
        } else {
            (vec![(root, data)], vec![])
        };
        let call = CallInfo {
            op: Op::Gather,
            dtype: None,
            len: data.len(),
            same_len: false,
            root: Some(root),
            tag: 0,
        };
        let mut parts: Vec<Vec<u8>> = vec![Vec::new(); recv.len()];
        let (_op, t) = self.blocking(Op::Gather)?;
        t.exchange(&call, &sends, &recv, &mut |_, bufs| {
            for (p, b) in parts.iter_mut().zip(bufs) {
                p.extend_from_slice(b);
            }
            Ok(())
        })?;
        if me != root {
            return Ok(None);
        }
        parts.insert(me, data.to_vec());
        Ok(Some(parts))
    }

    /// The consensus error `sqrt(1/n sum_i ||x_i - mean(x)||^2)` over all ranks (every
    /// rank gets it): how far the ranks are from agreeing.
    ///
    /// ```
    /// let e = fogkit::run(2, |bf| bf.consensus_error(&[bf.rank() as f64 * 2.0])).unwrap();
    /// assert_eq!(e, vec![1.0, 1.0]);
    /// ```
    pub fn consensus_error<E: Element>(&self, x: &[E]) -> Result<f64> {
        let mean = self.allreduce(x)?;
        let d: f64 = x
            .iter()
            .zip(&mean)
            .map(|(a, b)| (a.to_f64() - b.to_f64()).powi(2))
            .sum();
        Ok(self.allreduce(&[d])?[0].sqrt())
    }

    /// Every rank's value, in rank order. Lengths may differ between ranks for slices and
    /// `Vec`s.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// let v = fogkit::run(3, |bf| bf.allgather(&vec![bf.rank() as f64; bf.rank() + 1])).unwrap();
    /// assert_eq!(v[0], vec![vec![0.0], vec![1.0, 1.0], vec![2.0, 2.0, 2.0]]);
    /// ```
    pub fn allgather<T: Communicable + ?Sized>(&self, x: &T) -> Result<Vec<T::Output>> {
        let flat = x.flat();
        let (_op, t) = self.blocking(Op::Allgather)?;
        let parts = allgather_core(t, &flat)?;
        rebuild_all(x, parts)
    }

    /// Partial averaging over the current topology: `x_i <- sum_j w_ij x_j` (the talk's
    /// "partial averaging" step).
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// use fogkit::topology;
    /// let v = fogkit::run(3, |bf| {
    ///     bf.set_topology(topology::fully_connected(3))?;
    ///     bf.neighbor_allreduce(&vec![bf.rank() as f64 * 3.0])
    /// })
    /// .unwrap();
    /// assert_eq!(v, vec![vec![3.0]; 3]);
    /// ```
    pub fn neighbor_allreduce<T: Communicable + ?Sized>(&self, x: &T) -> Result<T::Output> {
        let flat = x.flat();
        let mut out = vec![T::Elem::default(); flat.len()];
        self.neighbor_allreduce_into(&flat, &mut out)?;
        x.rebuild(out)
    }

    /// [`neighbor_allreduce`](Self::neighbor_allreduce) into a buffer the caller owns (no
    /// allocation: the form for hot loops).
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn neighbor_allreduce_into<E: Element>(&self, x: &[E], out: &mut [E]) -> Result<()> {
        let mix = Mix::static_topology(&self.topology(), self.rank());
        let (_op, t) = self.blocking(Op::NeighborAllreduce)?;
        neighbor_mix(t, Op::NeighborAllreduce, x, out, &mix)
    }

    /// Neighbour averaging with per-call weights and neighbours (dynamic topologies,
    /// push-sum): see [`NeighborWeights`]. Weights are used as given (they need not sum
    /// to one); every rank received from must send to this rank in the same call.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn neighbor_allreduce_with<T: Communicable + ?Sized>(
        &self,
        x: &T,
        weights: &NeighborWeights,
    ) -> Result<T::Output> {
        let flat = x.flat();
        let mut out = vec![T::Elem::default(); flat.len()];
        self.neighbor_allreduce_with_into(&flat, &mut out, weights)?;
        x.rebuild(out)
    }

    /// [`neighbor_allreduce_with`](Self::neighbor_allreduce_with) into a caller's buffer.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn neighbor_allreduce_with_into<E: Element>(
        &self,
        x: &[E],
        out: &mut [E],
        weights: &NeighborWeights,
    ) -> Result<()> {
        let mix = Mix::resolve(weights, &self.topology(), self.rank(), 0)?;
        let (_op, t) = self.blocking(Op::NeighborAllreduce)?;
        neighbor_mix(t, Op::NeighborAllreduce, x, out, &mix)
    }

    /// The values of this rank's in-neighbours, in [`in_neighbor_ranks`](Self::in_neighbor_ranks)
    /// order.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// use fogkit::topology;
    /// let v = fogkit::run(4, |bf| {
    ///     bf.set_topology(topology::ring(4))?;
    ///     bf.neighbor_allgather(&[bf.rank() as f32])
    /// })
    /// .unwrap();
    /// assert_eq!(v[0], vec![[1.0], [3.0]]);
    /// ```
    pub fn neighbor_allgather<T: Communicable + ?Sized>(&self, x: &T) -> Result<Vec<T::Output>> {
        let topo = self.topology();
        let me = self.rank();
        self.neighbor_allgather_with(x, &topo.in_neighbors(me), &topo.out_neighbors(me))
    }

    /// Gathers from `src_ranks` while sending to `dst_ranks` (dynamic topologies); the
    /// result follows `src_ranks` sorted ascending.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn neighbor_allgather_with<T: Communicable + ?Sized>(
        &self,
        x: &T,
        src_ranks: &[usize],
        dst_ranks: &[usize],
    ) -> Result<Vec<T::Output>> {
        let (n, me) = (self.size(), self.rank());
        let srcs = sorted_unique("src_ranks", src_ranks, n, me)?;
        let dsts = sorted_unique("dst_ranks", dst_ranks, n, me)?;
        let flat = x.flat();
        let (_op, t) = self.blocking(Op::NeighborAllgather)?;
        let parts = gather_from(t, Op::NeighborAllgather, &flat, &srcs, &dsts, 0)?;
        rebuild_all(x, parts)
    }

    /// Averages with one peer, which must call `pair_gossip` with this rank at the same
    /// time: `(x + x_peer) / 2`.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// let v = fogkit::run(2, |bf| bf.pair_gossip(&[bf.rank() as f64 * 2.0], 1 - bf.rank())).unwrap();
    /// assert_eq!(v, vec![[1.0], [1.0]]);
    /// ```
    pub fn pair_gossip<T: Communicable + ?Sized>(&self, x: &T, peer: usize) -> Result<T::Output> {
        self.pair_gossip_with(x, peer, 0.5, 0.5)
    }

    /// `self_weight * x + pair_weight * x_peer`.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn pair_gossip_with<T: Communicable + ?Sized>(
        &self,
        x: &T,
        peer: usize,
        self_weight: f64,
        pair_weight: f64,
    ) -> Result<T::Output> {
        let mix = self.pair_mix(peer, self_weight, pair_weight)?;
        let flat = x.flat();
        let mut out = vec![T::Elem::default(); flat.len()];
        let (_op, t) = self.blocking(Op::PairGossip)?;
        neighbor_mix(t, Op::PairGossip, &flat, &mut out, &mix)?;
        x.rebuild(out)
    }

    pub(super) fn pair_mix(&self, peer: usize, self_weight: f64, pair_weight: f64) -> Result<Mix> {
        let (n, me) = (self.size(), self.rank());
        if peer >= n || peer == me {
            return Err(Error::InvalidArgument(format!(
                "pair_gossip peer must be another rank below {n}, found {peer} (this is rank {me})"
            )));
        }
        if !self_weight.is_finite() || !pair_weight.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "pair_gossip weights must be finite, found {self_weight} and {pair_weight}"
            )));
        }
        Ok(Mix {
            self_weight,
            srcs: vec![(peer, pair_weight)],
            dsts: vec![(peer, 1.0)],
            tag: 0,
        })
    }
}
