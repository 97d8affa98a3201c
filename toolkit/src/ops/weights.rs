//! Who a rank averages with and how much: per-call [`NeighborWeights`] (BlueFog's
//! `self_weight`, `src_weights`, `dst_weights`) and the resolved [`Mix`] the cores run.
//! Pure data and validation; nothing here communicates.

use crate::topology::{OnePeer, Topology};
use crate::{Error, Result};

/// Per-call weights for
/// [`Comm::neighbor_allreduce_with`](crate::ops::Comm::neighbor_allreduce_with) (BlueFog's
/// `self_weight`, `src_weights`, `dst_weights`): the way to run dynamic topologies and
/// push-sum.
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
/// assert!(xs.iter().all(|(_, &v)| v == 3.5));
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
    pub(crate) self_weight: f64,
    pub(crate) srcs: Vec<(usize, f64)>,
    pub(crate) dsts: Vec<(usize, f64)>,
    pub(crate) tag: u64,
}

impl Mix {
    pub(crate) fn resolve(
        w: &NeighborWeights,
        topo: &Topology,
        rank: usize,
        tag: u64,
    ) -> Result<Mix> {
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

    pub(crate) fn static_topology(topo: &Topology, rank: usize) -> Mix {
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
