//! Collectives, written once over [`Transport`](crate::transport::Transport): barrier,
//! broadcast, allreduce, allgather, neighbor_allreduce (static topology or per-call
//! weights), neighbor_allgather, pair_gossip, and their nonblocking forms.
//!
//! Each takes anything [`Communicable`]: `f32`/`f64` slices, `Vec`s, arrays and dfdx
//! tensors of any shape, and returns the same kind of value (a `Vec` for a slice).

mod hierarchical;
mod kernel;
pub(crate) mod nonblocking;

pub use kernel::ReduceOp;
pub use nonblocking::Handle;

use crate::fog::Fog;
use crate::tensor::{Communicable, Element};
use crate::topology::{OnePeer, Topology};
use crate::transport::{CallInfo, Op, Transport};
use crate::{Error, Result};
use kernel::as_elems;

/// Per-call weights for [`Fog::neighbor_allreduce_with`] (BlueFog's `self_weight`,
/// `src_weights`, `dst_weights`): the way to run dynamic topologies and push-sum.
///
/// This rank's result is `self_weight * x + sum_j src_weight_j * (dst_weight_j * x_j)`,
/// where `dst_weight_j` is the scale rank `j` applied when sending to this rank.
///
/// ```
/// use fogkit::prelude::*;
/// use fogkit::topology::one_peer_exponential_two;
/// // One-peer exponential graph: 3 rounds reach the exact average of 8 ranks.
/// let xs = fogkit::run(8, |bf| {
///     let mut x = vec![bf.rank() as f64];
///     for k in 0..3 {
///         let peers = one_peer_exponential_two(bf.size(), bf.rank(), k);
///         x = bf.neighbor_allreduce_with(&x, &NeighborWeights::from_one_peer(&peers))?;
///     }
///     Ok::<_, fogkit::Error>(x[0])
/// })
/// .unwrap();
/// assert!(xs.iter().all(|&v| v == 3.5));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NeighborWeights {
    /// Weight of this rank's own value.
    pub self_weight: f64,
    /// `(source rank, weight)` for each rank received from.
    pub src_weights: Vec<(usize, f64)>,
    /// `(destination rank, scale)` for each rank sent to. When empty while `src_weights`
    /// is not, this rank sends unscaled to its out-neighbours in the current topology.
    pub dst_weights: Vec<(usize, f64)>,
}

impl NeighborWeights {
    /// Only a self weight; add sources and destinations with the builder methods.
    pub fn new(self_weight: f64) -> Self {
        NeighborWeights {
            self_weight,
            ..Default::default()
        }
    }

    /// Receives from `rank` with `weight`.
    pub fn src(mut self, rank: usize, weight: f64) -> Self {
        self.src_weights.push((rank, weight));
        self
    }

    /// Sends to `rank`, unscaled.
    pub fn dst(self, rank: usize) -> Self {
        self.dst_weighted(rank, 1.0)
    }

    /// Sends `scale * x` to `rank`.
    pub fn dst_weighted(mut self, rank: usize, scale: f64) -> Self {
        self.dst_weights.push((rank, scale));
        self
    }

    /// Receives from `recv_from` and sends to `send_to`, averaging uniformly:
    /// every weight `1/(|recv_from| + 1)`.
    pub fn uniform(recv_from: &[usize], send_to: &[usize]) -> Self {
        let w = 1.0 / (recv_from.len() + 1) as f64;
        NeighborWeights {
            self_weight: w,
            src_weights: recv_from.iter().map(|&r| (r, w)).collect(),
            dst_weights: send_to.iter().map(|&r| (r, 1.0)).collect(),
        }
    }

    /// Push-sum weights (column-stochastic): this rank keeps `1/(|send_to| + 1)` of its
    /// value and sends the same share to each of `send_to`; what arrives from `recv_from`
    /// is added unweighted. The sum over ranks is kept exactly; the ranks do not agree
    /// unless each also runs the same mix on a weight that starts at 1 and divides by it
    /// (push-sum, chapter 5). Only the senders need to know their out-degree.
    ///
    /// ```
    /// use fogkit::prelude::*;
    /// // Rank 0 pushes to 1 and 2; rank 1 pushes to 2; rank 2 pushes to 0.
    /// let sends = [vec![1, 2], vec![2], vec![0]];
    /// let out = fogkit::run(3, |bf| {
    ///     let r = bf.rank();
    ///     let recv: Vec<usize> = (0..3).filter(|&j| sends[j].contains(&r)).collect();
    ///     bf.neighbor_allreduce_with(&[3.0], &NeighborWeights::push(&recv, &sends[r]))
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![[2.5], [2.5], [4.0]]); // the sum, 9, is kept
    /// ```
    pub fn push(recv_from: &[usize], send_to: &[usize]) -> Self {
        let share = 1.0 / (send_to.len() + 1) as f64;
        NeighborWeights {
            self_weight: share,
            src_weights: recv_from.iter().map(|&r| (r, 1.0)).collect(),
            dst_weights: send_to.iter().map(|&r| (r, share)).collect(),
        }
    }

    /// Uniform weights for one iteration of a dynamic one-peer schedule.
    pub fn from_one_peer(p: &OnePeer) -> Self {
        Self::uniform(&p.recv_from, &p.send_to)
    }

    /// `rank`'s row of a topology (its receive weights) and its out-neighbours.
    pub fn from_topology(topo: &Topology, rank: usize) -> Self {
        let (self_weight, src_weights) = topo.recv_weights(rank);
        NeighborWeights {
            self_weight,
            src_weights,
            dst_weights: topo
                .out_neighbors(rank)
                .into_iter()
                .map(|r| (r, 1.0))
                .collect(),
        }
    }
}

/// A resolved neighbour mix: sources ascending, destinations with optional scales.
#[derive(Clone, Debug)]
pub(crate) struct Mix {
    self_weight: f64,
    srcs: Vec<(usize, f64)>,
    dsts: Vec<(usize, f64)>,
    tag: u64,
}

impl Mix {
    fn resolve(w: &NeighborWeights, topo: &Topology, rank: usize, tag: u64) -> Result<Mix> {
        let n = topo.size();
        let check = |what: &str, list: &[(usize, f64)]| -> Result<Vec<(usize, f64)>> {
            let mut v = list.to_vec();
            v.sort_by_key(|p| p.0);
            for (i, &(r, x)) in v.iter().enumerate() {
                if r >= n || r == rank {
                    return Err(Error::InvalidArgument(format!(
                        "{what} ranks must be other ranks below {n}, found {r} (this is rank {rank})"
                    )));
                }
                if i > 0 && v[i - 1].0 == r {
                    return Err(Error::InvalidArgument(format!(
                        "{what} lists rank {r} twice"
                    )));
                }
                if !x.is_finite() {
                    return Err(Error::InvalidArgument(format!(
                        "{what} weight for rank {r} must be finite, found {x}"
                    )));
                }
            }
            Ok(v)
        };
        if !w.self_weight.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "self_weight must be finite, found {}",
                w.self_weight
            )));
        }
        let srcs = check("src_weights", &w.src_weights)?;
        let dsts = if w.dst_weights.is_empty() && !w.src_weights.is_empty() {
            topo.out_neighbors(rank)
                .into_iter()
                .map(|r| (r, 1.0))
                .collect()
        } else {
            check("dst_weights", &w.dst_weights)?
        };
        Ok(Mix {
            self_weight: w.self_weight,
            srcs,
            dsts,
            tag,
        })
    }

    fn static_topology(topo: &Topology, rank: usize) -> Mix {
        let (self_weight, srcs) = topo.recv_weights(rank);
        Mix {
            self_weight,
            srcs,
            dsts: topo
                .out_neighbors(rank)
                .into_iter()
                .map(|r| (r, 1.0))
                .collect(),
            tag: topo.fingerprint(),
        }
    }
}

fn info<E: Element>(op: Op, len: usize, same_len: bool, root: Option<usize>, tag: u64) -> CallInfo {
    CallInfo {
        op,
        dtype: Some(E::DTYPE),
        len,
        same_len,
        root,
        tag,
    }
}

fn bytes<E: Element>(x: &[E]) -> &[u8] {
    bytemuck::cast_slice(x)
}

// ---- cores: transport-generic, used by blocking and nonblocking forms ----

pub(crate) fn neighbor_mix<E: Element>(
    t: &dyn Transport,
    op: Op,
    x: &[E],
    out: &mut [E],
    mix: &Mix,
) -> Result<()> {
    if out.len() != x.len() {
        return Err(Error::InvalidArgument(format!(
            "output must have the input's length {}, found {}",
            x.len(),
            out.len()
        )));
    }
    // Scaled copies only for destinations that ask for a scale other than 1.
    let scaled: Vec<Option<Vec<E>>> = mix
        .dsts
        .iter()
        .map(|&(_, s)| {
            (s != 1.0).then(|| {
                let s = E::from_f64(s);
                x.iter().map(|&v| s * v).collect()
            })
        })
        .collect();
    let sends: Vec<(usize, &[u8])> = mix
        .dsts
        .iter()
        .zip(&scaled)
        .map(|(&(d, _), sc)| (d, bytes(sc.as_deref().unwrap_or(x))))
        .collect();
    let recv: Vec<usize> = mix.srcs.iter().map(|s| s.0).collect();
    let call = info::<E>(op, x.len(), true, None, mix.tag);
    t.exchange(&call, &sends, &recv, &mut |off, bufs| {
        let (lo, hi) = piece::<E>(off, bufs, x.len())?;
        let mut terms = Vec::with_capacity(bufs.len());
        for (b, &(_, w)) in bufs.iter().zip(&mix.srcs) {
            terms.push((E::from_f64(w), as_elems::<E>(b)?));
        }
        kernel::weighted_sum(
            &mut out[lo..hi],
            E::from_f64(mix.self_weight),
            &x[lo..hi],
            &terms,
        );
        Ok(())
    })
}

/// The element range `lo..hi` that a visit at byte `off` with equal-length pieces `bufs`
/// covers, within a vector of `len` elements (all of it when there are no pieces).
fn piece<E: Element>(off: usize, bufs: &[&[u8]], len: usize) -> Result<(usize, usize)> {
    let size = std::mem::size_of::<E>();
    let lo = off / size;
    let hi = match bufs.first() {
        None => len,
        Some(b) => lo + b.len() / size,
    };
    if off % size != 0 || hi > len || bufs.iter().any(|b| b.len() != (hi - lo) * size) {
        return Err(Error::Tensor(format!(
            "expected pieces of whole {} within {len} elements, found {} bytes at offset {off}",
            E::DTYPE,
            bufs.first().map_or(0, |b| b.len())
        )));
    }
    Ok((lo, hi))
}

fn others(t: &dyn Transport) -> Vec<usize> {
    (0..t.size()).filter(|&r| r != t.rank()).collect()
}

/// Below this many elements, allreduce gathers everything in one round; above, it
/// reduce-scatters then allgathers (each rank receives about 2x the vector, as a ring
/// allreduce does). Both reduce every element in rank order: the same bits.
const ALLREDUCE_ONE_ROUND: usize = 1 << 14;

pub(crate) fn allreduce_core<E: Element>(
    t: &dyn Transport,
    x: &[E],
    out: &mut [E],
    op: ReduceOp,
) -> Result<()> {
    if out.len() != x.len() {
        return Err(Error::InvalidArgument(format!(
            "output must have the input's length {}, found {}",
            x.len(),
            out.len()
        )));
    }
    let peers = others(t);
    if x.len() < ALLREDUCE_ONE_ROUND {
        reduce_among(t, &peers, Op::Allreduce, x, out, op)
    } else {
        reduce_scatter_allgather(t, &peers, x, out, op)
    }
}

/// Every rank in `group` (plus this one) reduces all of them, in rank order, in one round.
fn reduce_among<E: Element>(
    t: &dyn Transport,
    group: &[usize],
    opk: Op,
    x: &[E],
    out: &mut [E],
    op: ReduceOp,
) -> Result<()> {
    let me = t.rank();
    let at = group.iter().filter(|&&p| p < me).count();
    let sends: Vec<(usize, &[u8])> = group.iter().map(|&p| (p, bytes(x))).collect();
    let call = info::<E>(opk, x.len(), true, None, op.tag());
    t.exchange(&call, &sends, group, &mut |off, bufs| {
        let (lo, hi) = piece::<E>(off, bufs, x.len())?;
        let mut all: Vec<&[E]> = Vec::with_capacity(bufs.len() + 1);
        for b in bufs {
            all.push(as_elems::<E>(b)?);
        }
        all.insert(at, &x[lo..hi]);
        kernel::reduce(&mut out[lo..hi], &all, op);
        Ok(())
    })
}

fn reduce_scatter_allgather<E: Element>(
    t: &dyn Transport,
    peers: &[usize],
    x: &[E],
    out: &mut [E],
    op: ReduceOp,
) -> Result<()> {
    let (n, me, len) = (t.size(), t.rank(), x.len());
    let bounds = |r: usize| (r * len / n, (r + 1) * len / n);
    // Round 1: rank r reduces chunk r of everyone's vector.
    let sends: Vec<(usize, &[u8])> = peers
        .iter()
        .map(|&p| {
            let (lo, hi) = bounds(p);
            (p, bytes(&x[lo..hi]))
        })
        .collect();
    let (mlo, mhi) = bounds(me);
    let mut mine = vec![E::default(); mhi - mlo];
    let call = info::<E>(Op::Allreduce, len, true, None, op.tag());
    t.exchange(&call, &sends, peers, &mut |off, bufs| {
        let (lo, hi) = piece::<E>(off, bufs, mhi - mlo)?;
        let mut all: Vec<&[E]> = Vec::with_capacity(bufs.len() + 1);
        for b in bufs {
            all.push(as_elems::<E>(b)?);
        }
        all.insert(me, &x[mlo + lo..mlo + hi]);
        kernel::reduce(&mut mine[lo..hi], &all, op);
        Ok(())
    })?;
    // Round 2: everyone gathers the reduced chunks.
    out[mlo..mhi].copy_from_slice(&mine);
    let sends: Vec<(usize, &[u8])> = peers.iter().map(|&p| (p, bytes(&mine))).collect();
    let call = info::<E>(Op::Allreduce, len, true, None, op.tag() | 1 << 32);
    t.exchange(&call, &sends, peers, &mut |off, bufs| {
        for (b, &p) in bufs.iter().zip(peers) {
            let (plo, phi) = bounds(p);
            let s = as_elems::<E>(b)?;
            let lo = plo + off / std::mem::size_of::<E>();
            if lo + s.len() > phi {
                return Err(Error::Tensor(format!(
                    "expected at most {} elements of chunk {p}, found {}",
                    phi - plo,
                    lo + s.len() - plo
                )));
            }
            out[lo..lo + s.len()].copy_from_slice(s);
        }
        Ok(())
    })
}

pub(crate) fn broadcast_core<E: Element>(
    t: &dyn Transport,
    x: &[E],
    root: usize,
) -> Result<Vec<E>> {
    let n = t.size();
    if root >= n {
        return Err(Error::InvalidArgument(format!(
            "broadcast root must be a rank below {n}, found {root}"
        )));
    }
    let me = t.rank();
    let (sends, recv): (Vec<(usize, &[u8])>, Vec<usize>) = if me == root {
        (
            others(t).into_iter().map(|p| (p, bytes(x))).collect(),
            vec![],
        )
    } else {
        (vec![], vec![root])
    };
    let call = info::<E>(Op::Broadcast, x.len(), true, Some(root), 0);
    let mut out = if me == root {
        x.to_vec()
    } else {
        Vec::with_capacity(x.len())
    };
    t.exchange(&call, &sends, &recv, &mut |_, bufs| {
        if let Some(b) = bufs.first() {
            out.extend_from_slice(as_elems::<E>(b)?);
        }
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn gather_from<E: Element>(
    t: &dyn Transport,
    op: Op,
    x: &[E],
    srcs: &[usize],
    dsts: &[usize],
    tag: u64,
) -> Result<Vec<Vec<E>>> {
    let sends: Vec<(usize, &[u8])> = dsts.iter().map(|&p| (p, bytes(x))).collect();
    let call = info::<E>(op, x.len(), false, None, tag);
    let mut out: Vec<Vec<E>> = vec![Vec::new(); srcs.len()];
    t.exchange(&call, &sends, srcs, &mut |_, bufs| {
        for (o, b) in out.iter_mut().zip(bufs) {
            o.extend_from_slice(as_elems::<E>(b)?);
        }
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn allgather_core<E: Element>(t: &dyn Transport, x: &[E]) -> Result<Vec<Vec<E>>> {
    let peers = others(t);
    let mut v = gather_from(t, Op::Allgather, x, &peers, &peers, 0)?;
    v.insert(t.rank(), x.to_vec());
    Ok(v)
}

fn rebuild_all<T: Communicable + ?Sized>(
    x: &T,
    parts: Vec<Vec<T::Elem>>,
) -> Result<Vec<T::Output>> {
    parts.into_iter().map(|p| x.rebuild(p)).collect()
}

fn sorted_unique(what: &str, ranks: &[usize], n: usize, me: usize) -> Result<Vec<usize>> {
    let mut v = ranks.to_vec();
    v.sort_unstable();
    v.dedup();
    if v.len() != ranks.len() {
        return Err(Error::InvalidArgument(format!(
            "{what} lists a rank twice: {ranks:?}"
        )));
    }
    if let Some(&r) = v.iter().find(|&&r| r >= n || r == me) {
        return Err(Error::InvalidArgument(format!(
            "{what} must be other ranks below {n}, found {r} (this is rank {me})"
        )));
    }
    Ok(v)
}

// ---- the handle's collectives ----

impl Fog {
    fn t(&self) -> Result<&dyn Transport> {
        self.drain()?;
        Ok(&*self.transport)
    }

    /// Waits until every rank reaches the barrier.
    ///
    /// ```
    /// fogkit::run(3, |bf| bf.barrier()).unwrap();
    /// ```
    pub fn barrier(&self) -> Result<()> {
        self.t()?
            .exchange(&CallInfo::bare(Op::Barrier), &[], &[], &mut |_, _| Ok(()))
    }

    /// Sets the topology used by [`neighbor_allreduce`](Self::neighbor_allreduce) and
    /// [`neighbor_allgather`](Self::neighbor_allgather). Collective: every rank must pass
    /// the same graph. Rejects a topology whose size is not the number of ranks, whose
    /// receive weights do not sum to one, or that is not connected.
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
        self.t()?.exchange(&call, &[], &[], &mut |_, _| Ok(()))?;
        *self.topology.borrow_mut() = std::sync::Arc::new(topo);
        Ok(())
    }

    /// Root's value on every rank.
    ///
    /// ```
    /// let v = fogkit::run(3, |bf| bf.broadcast(&vec![bf.rank() as f32; 2], 1)).unwrap();
    /// assert_eq!(v, vec![vec![1.0, 1.0]; 3]);
    /// ```
    pub fn broadcast<T: Communicable + ?Sized>(&self, x: &T, root: usize) -> Result<T::Output> {
        let flat = x.flat();
        let out = broadcast_core(self.t()?, &flat, root)?;
        x.rebuild(out)
    }

    /// The average over all ranks (BlueFog's `allreduce` default).
    ///
    /// ```
    /// let v = fogkit::run(4, |bf| bf.allreduce(&[bf.rank() as f64])).unwrap();
    /// assert_eq!(v, vec![[1.5]; 4]);
    /// ```
    pub fn allreduce<T: Communicable + ?Sized>(&self, x: &T) -> Result<T::Output> {
        self.allreduce_op(x, ReduceOp::Avg)
    }

    /// Elementwise sum, average, min or max over all ranks, reduced in rank order.
    pub fn allreduce_op<T: Communicable + ?Sized>(&self, x: &T, op: ReduceOp) -> Result<T::Output> {
        let flat = x.flat();
        let mut out = vec![T::Elem::default(); flat.len()];
        allreduce_core(self.t()?, &flat, &mut out, op)?;
        x.rebuild(out)
    }

    /// [`allreduce_op`](Self::allreduce_op) into a buffer the caller owns.
    pub fn allreduce_into<E: Element>(&self, x: &[E], out: &mut [E], op: ReduceOp) -> Result<()> {
        allreduce_core(self.t()?, x, out, op)
    }

    /// Gathers every rank's bytes on `root` (in rank order; `None` on other ranks): how
    /// metrics and other non-numeric data reach one place.
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
        self.t()?.exchange(&call, &sends, &recv, &mut |_, bufs| {
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
    /// ```
    /// let v = fogkit::run(3, |bf| bf.allgather(&vec![bf.rank() as f64; bf.rank() + 1])).unwrap();
    /// assert_eq!(v[0], vec![vec![0.0], vec![1.0, 1.0], vec![2.0, 2.0, 2.0]]);
    /// ```
    pub fn allgather<T: Communicable + ?Sized>(&self, x: &T) -> Result<Vec<T::Output>> {
        let flat = x.flat();
        let parts = allgather_core(self.t()?, &flat)?;
        rebuild_all(x, parts)
    }

    /// Partial averaging over the current topology: `x_i <- sum_j w_ij x_j` (the talk's
    /// "partial averaging" step).
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
    pub fn neighbor_allreduce_into<E: Element>(&self, x: &[E], out: &mut [E]) -> Result<()> {
        let mix = Mix::static_topology(&self.topology.borrow(), self.rank());
        neighbor_mix(self.t()?, Op::NeighborAllreduce, x, out, &mix)
    }

    /// Neighbour averaging with per-call weights and neighbours (dynamic topologies,
    /// push-sum): see [`NeighborWeights`]. Weights are used as given (they need not sum
    /// to one); every rank received from must send to this rank in the same call.
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
    pub fn neighbor_allreduce_with_into<E: Element>(
        &self,
        x: &[E],
        out: &mut [E],
        weights: &NeighborWeights,
    ) -> Result<()> {
        let mix = Mix::resolve(weights, &self.topology.borrow(), self.rank(), 0)?;
        neighbor_mix(self.t()?, Op::NeighborAllreduce, x, out, &mix)
    }

    /// The values of this rank's in-neighbours, in [`in_neighbor_ranks`](Self::in_neighbor_ranks)
    /// order.
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
        let parts = gather_from(self.t()?, Op::NeighborAllgather, &flat, &srcs, &dsts, 0)?;
        rebuild_all(x, parts)
    }

    /// Averages with one peer, which must call `pair_gossip` with this rank at the same
    /// time: `(x + x_peer) / 2`.
    ///
    /// ```
    /// let v = fogkit::run(2, |bf| bf.pair_gossip(&[bf.rank() as f64 * 2.0], 1 - bf.rank())).unwrap();
    /// assert_eq!(v, vec![[1.0], [1.0]]);
    /// ```
    pub fn pair_gossip<T: Communicable + ?Sized>(&self, x: &T, peer: usize) -> Result<T::Output> {
        self.pair_gossip_with(x, peer, 0.5, 0.5)
    }

    /// `self_weight * x + pair_weight * x_peer`.
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
        neighbor_mix(self.t()?, Op::PairGossip, &flat, &mut out, &mix)?;
        x.rebuild(out)
    }

    fn pair_mix(&self, peer: usize, self_weight: f64, pair_weight: f64) -> Result<Mix> {
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
