//! Communication as a value (BlueFog's `communication_type`): how an optimizer forms `W x`
//! at step `k`. A rule asks for `W x` and never knows whether it came from the static
//! topology, a dynamic schedule, machines, a global average or nothing at all.
//!
//! This module resolves and applies `W`; it never does a rule's arithmetic.

use std::fmt;
use std::sync::Arc;

use crate::ops::{NeighborWeights, Owned, Pending, ReduceOp};
use crate::tensor::Element;
use crate::topology::{
    inner_outer_exp2, inner_outer_ring, one_peer_exponential_two, one_peer_hypercube,
    OnePeerSchedule, Topology,
};
use crate::{Error, Fog, Result};

/// A user's schedule: `(rank, size, k) -> ` that rank's weights at step `k`. Every rank
/// must get weights that pair up (who receives from whom is who sends to whom).
pub type WeightsFn = Arc<dyn Fn(usize, usize, usize) -> NeighborWeights + Send + Sync>;

/// How an optimizer's `W x` is formed.
///
/// ```
/// use fogkit::optim::{Communication, Dynamic};
/// assert_eq!(Communication::parse("one-peer-exp2").unwrap(), Communication::Dynamic(Dynamic::OnePeerExponential));
/// assert!(Communication::parse("ring").unwrap_err().to_string().contains("one-peer-hypercube"));
/// ```
#[derive(Clone, PartialEq)]
pub enum Communication {
    /// The topology in force on the handle ([`Comm::set_topology`](crate::ops::Comm::set_topology)): `neighbor_allreduce`.
    Static,
    /// A new `W` at every step: `neighbor_allreduce_with` and the schedule's weights.
    Dynamic(Dynamic),
    /// Average within each machine, then mix machines over the machine topology
    /// (`hierarchical_neighbor_allreduce`).
    Hierarchical,
    /// The exact average over all ranks (`allreduce`): `W = 11^T / n`.
    Global,
    /// No communication: `W = I` (local steps only).
    None,
}

/// A dynamic schedule: which peers each rank mixes with at step `k` (uniform weights
/// `1 / (receivers + 1)`, as in BlueFog's examples).
#[derive(Clone)]
pub enum Dynamic {
    /// The one-peer exponential graph: rank `i` sends to `i + 2^(k mod tau)` (BlueFog's
    /// default in its examples). Each step's `W` is doubly stochastic, not symmetric.
    OnePeerExponential,
    /// The one-peer hypercube: rank `i` pairs with `i XOR 2^(k mod tau)`; symmetric `W`
    /// at every step (for D^2, and DecentLaM without momentum). Needs a power-of-two number
    /// of ranks.
    OnePeerHypercube,
    /// The one-peer hypercube made lazy, `(I + W_k) / 2`: a rank keeps 3/4 and takes 1/4
    /// from its partner, the same bytes per step. Each `W_k` is symmetric and positive
    /// definite, as DecentLaM's momentum over a changing `W` needs (the plain hypercube's
    /// `W_k` is singular: its disagreement grows under momentum 0.9).
    LazyOnePeerHypercube,
    /// BlueFog's one-peer schedule over a base topology's out-neighbours.
    OnePeer(OnePeerSchedule),
    /// BlueFog's inner-ring / outer-ring machine schedule (machines of more than 2 ranks).
    InnerOuterRing,
    /// BlueFog's inner-exp2 / outer-exp2 machine schedule (machines of more than 2 ranks).
    InnerOuterExp2,
    /// Any function of `(rank, size, k)`.
    Custom(WeightsFn),
}

impl PartialEq for Dynamic {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Dynamic::OnePeer(a), Dynamic::OnePeer(b)) => a == b,
            (Dynamic::Custom(a), Dynamic::Custom(b)) => Arc::ptr_eq(a, b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl fmt::Debug for Dynamic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Communication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for Communication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The names [`Communication::parse`] accepts, in order.
pub const COMMUNICATION_NAMES: [&str; 9] = [
    "static",
    "one-peer-exp2",
    "one-peer-hypercube",
    "lazy-one-peer-hypercube",
    "inner-outer-ring",
    "inner-outer-exp2",
    "hierarchical",
    "global",
    "none",
];

impl Dynamic {
    fn name(&self) -> &'static str {
        match self {
            Dynamic::OnePeerExponential => "one-peer-exp2",
            Dynamic::OnePeerHypercube => "one-peer-hypercube",
            Dynamic::LazyOnePeerHypercube => "lazy-one-peer-hypercube",
            Dynamic::OnePeer(_) => "one-peer",
            Dynamic::InnerOuterRing => "inner-outer-ring",
            Dynamic::InnerOuterExp2 => "inner-outer-exp2",
            Dynamic::Custom(_) => "custom",
        }
    }

    /// `rank`'s weights at step `k` among `size` ranks in machines of `local` ranks.
    fn weights(&self, size: usize, local: usize, rank: usize, k: usize) -> Result<NeighborWeights> {
        let machines = || {
            Error::InvalidArgument(format!(
                "the {} schedule needs at least 2 machines of more than 2 ranks each, found \
                 {local} ranks per machine among {size}",
                self.name()
            ))
        };
        let hypercube = || {
            one_peer_hypercube(size, rank, k).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "the one-peer hypercube needs a power-of-two number of ranks, found {size}"
                ))
            })
        };
        let peers = match self {
            Dynamic::OnePeerExponential => one_peer_exponential_two(size, rank, k),
            Dynamic::OnePeerHypercube => hypercube()?,
            Dynamic::LazyOnePeerHypercube => {
                let p = hypercube()?;
                let mut w = NeighborWeights::new(if p.recv_from.is_empty() { 1.0 } else { 0.75 });
                debug_assert_eq!(p.recv_from.len(), p.send_to.len(), "a hypercube pairs");
                for (&from, &to) in p.recv_from.iter().zip(&p.send_to) {
                    w = w.src(from, 0.25).dst(to);
                }
                return Ok(w);
            }
            Dynamic::OnePeer(s) if s.size() == size => s.at(rank, k),
            Dynamic::OnePeer(s) => {
                return Err(Error::InvalidArgument(format!(
                    "a one-peer schedule over {} ranks used on {size} ranks",
                    s.size()
                )))
            }
            Dynamic::InnerOuterRing => {
                inner_outer_ring(size, local, rank, k).ok_or_else(machines)?
            }
            Dynamic::InnerOuterExp2 => {
                inner_outer_exp2(size, local, rank, k).ok_or_else(machines)?
            }
            Dynamic::Custom(f) => return Ok(f(rank, size, k)),
        };
        Ok(NeighborWeights::from_one_peer(&peers))
    }
}

impl Communication {
    /// The name used in tables and on the command line.
    pub fn name(&self) -> String {
        match self {
            Communication::Static => "static".into(),
            Communication::Dynamic(d) => d.name().into(),
            Communication::Hierarchical => "hierarchical".into(),
            Communication::Global => "global".into(),
            Communication::None => "none".into(),
        }
    }

    /// Parses one of [`COMMUNICATION_NAMES`].
    pub fn parse(name: &str) -> Result<Communication> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "static" => Communication::Static,
            "one-peer-exp2" => Communication::Dynamic(Dynamic::OnePeerExponential),
            "one-peer-hypercube" => Communication::Dynamic(Dynamic::OnePeerHypercube),
            "lazy-one-peer-hypercube" => Communication::Dynamic(Dynamic::LazyOnePeerHypercube),
            "inner-outer-ring" => Communication::Dynamic(Dynamic::InnerOuterRing),
            "inner-outer-exp2" => Communication::Dynamic(Dynamic::InnerOuterExp2),
            "hierarchical" => Communication::Hierarchical,
            "global" => Communication::Global,
            "none" => Communication::None,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown communication {name:?}: expected one of {}",
                    COMMUNICATION_NAMES.join(", ")
                )))
            }
        })
    }

    /// `W` for this rank at step `k`.
    pub(crate) fn plan(&self, bf: &Fog, k: usize) -> Result<Plan> {
        Ok(match self {
            Communication::Static => Plan::Static(bf.topology()),
            Communication::Dynamic(d) => {
                Plan::Weights(d.weights(bf.size(), bf.local_size(), bf.rank(), k)?)
            }
            Communication::Hierarchical => Plan::Hierarchical(bf.machine_topology()),
            Communication::Global => Plan::Global,
            Communication::None => Plan::Identity,
        })
    }

    /// Where this step's `W` is not symmetric, in words (`None` when it is). Every rank
    /// reaches the same answer: a dynamic schedule is checked over all ranks' rows.
    pub(crate) fn asymmetry(&self, bf: &Fog, plan: &Plan, k: usize) -> Result<Option<String>> {
        let topo_asym = |t: &Topology, what: &str| {
            (!t.is_symmetric(1e-12)).then(|| {
                format!(
                    "the {what} topology's W is not symmetric ({} ranks)",
                    t.size()
                )
            })
        };
        Ok(match (self, plan) {
            (_, Plan::Identity | Plan::Global) => None,
            (_, Plan::Static(t)) => topo_asym(t, "static"),
            (_, Plan::Hierarchical(t)) => topo_asym(t, "machine"),
            (Communication::Dynamic(d), Plan::Weights(_)) => {
                let n = bf.size();
                let rows = (0..n)
                    .map(|r| d.weights(n, bf.local_size(), r, k))
                    .collect::<Result<Vec<_>>>()?;
                let w = |i: usize, j: usize| entry(&rows, i, j);
                (0..n)
                    .flat_map(|i| (0..i).map(move |j| (i, j)))
                    .find(|&(i, j)| (w(i, j) - w(j, i)).abs() > 1e-12)
                    .map(|(i, j)| {
                        format!(
                            "the {} schedule's W at step {k} is not symmetric (w[{i}][{j}] = {}, \
                             w[{j}][{i}] = {})",
                            d.name(),
                            w(i, j),
                            w(j, i)
                        )
                    })
            }
            (_, Plan::Weights(_)) => None,
        })
    }
}

impl Communication {
    /// Where this step's `W` of a dynamic schedule is not certified positive definite, in
    /// words (`None` when it is, or when `W` does not change from step to step). The test
    /// is strict diagonal dominance: every rank's self weight above the sum of its
    /// neighbours' (above 1/2 for a row that sums to 1). Every rank reaches the same answer.
    pub(crate) fn indefinite(&self, bf: &Fog, k: usize) -> Result<Option<String>> {
        let Communication::Dynamic(d) = self else {
            return Ok(None);
        };
        let n = bf.size();
        let rows = (0..n)
            .map(|r| d.weights(n, bf.local_size(), r, k))
            .collect::<Result<Vec<_>>>()?;
        for (r, row) in rows.iter().enumerate() {
            // The entries as they arrive: each source's weight times its send scale.
            let others: f64 = row
                .src_weights
                .iter()
                .map(|&(j, _)| entry(&rows, r, j).abs())
                .sum();
            if row.self_weight <= others {
                return Ok(Some(format!(
                    "the {} schedule's W at step {k} gives rank {r} the self weight {} against \
                     {others} for its neighbours",
                    d.name(),
                    row.self_weight
                )));
            }
        }
        Ok(None)
    }
}

/// D^2's convergence condition (Tang et al., ICML 2018): the smallest eigenvalue of a
/// symmetric `W` above -1/3. Where `t` breaks it, the warning in words; `None` when it
/// holds or `t` is not symmetric (refused before this is asked).
pub(crate) fn d2_warning(t: &Topology, what: &str) -> Option<String> {
    let low = *t.eigenvalues()?.first()?;
    (low <= -1.0 / 3.0 + 1e-12).then(|| {
        format!(
            "D2 (and D2-DmSGD) converges when the smallest eigenvalue of W is above -1/3, and the {what} \
             topology's is {low:.4}: it may stall or diverge; its lazy form (I + W) / 2 \
             (Topology::lazy) meets the condition"
        )
    })
}

/// `w[i][j]` of a step's `W` from every rank's weights: what `i` takes of `j`'s value
/// (its receive weight times the scale `j` sends with, 1 when `j` names none).
fn entry(rows: &[NeighborWeights], i: usize, j: usize) -> f64 {
    let src = rows[i]
        .src_weights
        .iter()
        .find(|p| p.0 == j)
        .map_or(0.0, |p| p.1);
    let scale = if rows[j].dst_weights.is_empty() {
        1.0
    } else {
        rows[j]
            .dst_weights
            .iter()
            .find(|p| p.0 == i)
            .map_or(0.0, |p| p.1)
    };
    src * scale
}

/// `W` at one step, resolved for this rank.
pub(crate) enum Plan {
    /// `W = I`: no communication.
    Identity,
    /// The static topology (as it was when the step began).
    Static(Arc<Topology>),
    /// Per-step weights.
    Weights(NeighborWeights),
    /// Machines, over this machine topology.
    Hierarchical(Arc<Topology>),
    /// The global average.
    Global,
}

impl Plan {
    /// `out = W x` (collective unless `W = I`).
    pub(crate) fn apply<E: Element>(&self, bf: &Fog, x: &[E], out: &mut [E]) -> Result<()> {
        match self {
            Plan::Identity => {
                out.copy_from_slice(x);
                Ok(())
            }
            Plan::Static(_) => bf.neighbor_allreduce_into(x, out),
            Plan::Weights(w) => bf.neighbor_allreduce_with_into(x, out, w),
            Plan::Hierarchical(_) => bf.hierarchical_neighbor_allreduce_into(x, out),
            Plan::Global => bf.allreduce_into(x, out, ReduceOp::Avg),
        }
    }

    /// Starts `out = W x` on this rank's communication thread; `Inflight::wait` gives it.
    pub(crate) fn start<E: Element>(&self, bf: &Fog, x: &[E]) -> Result<Inflight<E>> {
        let what = match self {
            Plan::Identity => return Ok(Inflight::of(Flight::Ready(x.to_vec()))),
            Plan::Static(_) => Owned::Static,
            Plan::Weights(w) => Owned::Weights(w),
            Plan::Hierarchical(_) => Owned::Hierarchical,
            Plan::Global => Owned::Average,
        };
        Ok(Inflight::of(Flight::Pending(bf.start_owned(x, what)?)))
    }

    /// `W` as a fingerprint, to notice when a static `W` changes.
    pub(crate) fn fingerprint(&self) -> Option<u64> {
        match self {
            Plan::Static(t) => Some(t.fingerprint()),
            Plan::Hierarchical(t) => Some(t.fingerprint() ^ 1),
            _ => None,
        }
    }
}

enum Flight<E> {
    Ready(Vec<E>),
    Pending(Pending<E>),
}

/// `W x` in flight (or none). A clone of an optimizer does not inherit its exchange. (The
/// mutex keeps an optimizer `Sync`, as a receiver alone is not.)
pub(crate) struct Inflight<E>(std::sync::Mutex<Option<Flight<E>>>);

impl<E> Inflight<E> {
    fn of(f: Flight<E>) -> Self {
        Inflight(std::sync::Mutex::new(Some(f)))
    }

    fn take(&mut self) -> Option<Flight<E>> {
        self.0.get_mut().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl<E> Default for Inflight<E> {
    fn default() -> Self {
        Inflight(std::sync::Mutex::new(None))
    }
}

impl<E> Clone for Inflight<E> {
    fn clone(&self) -> Self {
        Inflight::default()
    }
}

impl<E> fmt::Debug for Inflight<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("exchange")
    }
}

impl<E: Element> Inflight<E> {
    /// Whether an exchange was started.
    pub(crate) fn is_some(&mut self) -> bool {
        self.0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Waits for the exchange into `out` (which must have the started vector's length).
    pub(crate) fn wait_into(&mut self, out: &mut [E]) -> Result<()> {
        let v = match self.take() {
            None => return Err(Error::InvalidArgument("no exchange in flight".into())),
            Some(Flight::Ready(v)) => v,
            Some(Flight::Pending(p)) => p.wait()?,
        };
        if v.len() != out.len() {
            return Err(Error::InvalidArgument(format!(
                "the exchange started with {} values; the step was given {}",
                v.len(),
                out.len()
            )));
        }
        out.copy_from_slice(&v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::d2_warning;
    use crate::topology;

    #[test]
    fn d2_warns_on_an_even_ring_and_not_on_its_lazy_form_or_an_odd_ring() {
        let w = d2_warning(&topology::ring(8), "static").expect("ring(8) has -1/3");
        assert!(w.contains("is -0.3333"), "{w}");
        assert!(d2_warning(&topology::ring(8).lazy(), "static").is_none());
        // ring(5): smallest eigenvalue (1 + 2 cos(4 pi / 5)) / 3 = -0.206.
        assert!(d2_warning(&topology::ring(5), "static").is_none());
    }
}
