//! Machine-level averaging (BlueFog's `hierarchical_neighbor_allreduce`): ranks on one
//! machine average first (a super node), then machines mix with their neighbour machines
//! over the machine topology. Local rank `k` of a machine talks to local rank `k` of its
//! neighbour machines, so every rank of a machine ends with the same value.

use super::core::{neighbor_mix, reduce_among};
use super::engine::Comm;
use super::kernel::ReduceOp;
use super::weights::{Mix, NeighborWeights};
use super::{Op, Wire};
use crate::tensor::{Communicable, Element};
use crate::topology::Topology;
use crate::transport::CallInfo;
use crate::{Error, Result};

pub(crate) fn hierarchical_core<E: Element>(
    t: &Wire,
    x: &[E],
    out: &mut [E],
    machine_mix: &Mix,
) -> Result<()> {
    let m = t.machine();
    let me = t.rank();
    let base = m.machine_rank * m.local_size;
    let local: Vec<usize> = (base..base + m.local_size).filter(|&r| r != me).collect();
    let mut avg = vec![E::default(); x.len()];
    reduce_among(
        t,
        &local,
        Op::HierarchicalNeighborAllreduce,
        x,
        &mut avg,
        ReduceOp::Avg,
    )?;
    let to_rank = |mach: usize| mach * m.local_size + m.local_rank;
    let rank_mix = Mix {
        self_weight: machine_mix.self_weight,
        srcs: machine_mix
            .srcs
            .iter()
            .map(|&(s, w)| (to_rank(s), w))
            .collect(),
        dsts: machine_mix
            .dsts
            .iter()
            .map(|&(d, w)| (to_rank(d), w))
            .collect(),
        tag: machine_mix.tag,
    };
    neighbor_mix(t, Op::HierarchicalNeighborAllreduce, &avg, out, &rank_mix)
}

impl Comm {
    /// Rank among the ranks on this machine.
    pub fn local_rank(&self) -> usize {
        self.machine().local_rank
    }

    /// Ranks on this machine.
    pub fn local_size(&self) -> usize {
        self.machine().local_size
    }

    /// Index of this machine (machines hold consecutive ranks).
    pub fn machine_rank(&self) -> usize {
        self.machine().machine_rank
    }

    /// Number of machines.
    pub fn machine_size(&self) -> usize {
        self.machine().machine_size
    }

    /// The topology over machines used by
    /// [`hierarchical_neighbor_allreduce`](Self::hierarchical_neighbor_allreduce)
    /// (default: exponential-two over the machines).
    pub fn machine_topology(&self) -> std::sync::Arc<Topology> {
        self.machine_topology_now()
    }

    /// Sets the machine topology. Collective: every rank passes the same graph of
    /// [`machine_size`](Self::machine_size) nodes.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn set_machine_topology(&self, topo: Topology) -> Result<()> {
        topo.validate_for(self.machine_size())
            .map_err(|e| Error::Topology(format!("machine topology: {e}")))?;
        let mut call = CallInfo::bare(Op::SetTopology);
        call.tag = topo.fingerprint() ^ 0x6d61_6368_696e_6573; // "machines"
        let (_op, t) = self.blocking(Op::SetTopology)?;
        t.exchange(&call, &[], &[], &mut |_, _| Ok(()))?;
        self.replace_machine_topology(topo);
        Ok(())
    }

    /// Average within each machine, then mix with the neighbour machines over the machine
    /// topology.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    ///
    /// ```
    /// use fogkit::prelude::*;
    /// // 6 ranks as 3 emulated machines of 2; machine m holds 2m and 2m+1.
    /// let cfg = Config::default().local_size(2);
    /// let v = fogkit::run_with(cfg, 6, |bf| -> fogkit::Result<_> {
    ///     bf.set_machine_topology(topology::fully_connected(bf.machine_size()))?;
    ///     bf.hierarchical_neighbor_allreduce(&[bf.rank() as f64])
    /// })
    /// .unwrap();
    /// assert!(v.iter().all(|(_, x)| (x[0] - 2.5).abs() < 1e-15));
    /// ```
    pub fn hierarchical_neighbor_allreduce<T: Communicable + ?Sized>(
        &self,
        x: &T,
    ) -> Result<T::Output> {
        let mix = Mix::static_topology(&self.machine_topology_now(), self.machine_rank());
        self.hierarchical(x, &mix)
    }

    /// [`hierarchical_neighbor_allreduce`](Self::hierarchical_neighbor_allreduce) with
    /// per-call weights over machine indices (all ranks of a machine pass the same).
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn hierarchical_neighbor_allreduce_with<T: Communicable + ?Sized>(
        &self,
        x: &T,
        machine_weights: &NeighborWeights,
    ) -> Result<T::Output> {
        let mix = Mix::resolve(
            machine_weights,
            &self.machine_topology_now(),
            self.machine_rank(),
            0,
        )?;
        self.hierarchical(x, &mix)
    }

    /// [`hierarchical_neighbor_allreduce`](Self::hierarchical_neighbor_allreduce) into a
    /// buffer the caller owns.
    ///
    /// Waits first for this rank's pending nonblocking ops.
    pub fn hierarchical_neighbor_allreduce_into<E: Element>(
        &self,
        x: &[E],
        out: &mut [E],
    ) -> Result<()> {
        super::core::same_len(x, out)?;
        let mix = Mix::static_topology(&self.machine_topology_now(), self.machine_rank());
        let (_op, t) = self.blocking(Op::HierarchicalNeighborAllreduce)?;
        hierarchical_core(t, x, out, &mix)
    }

    fn hierarchical<T: Communicable + ?Sized>(&self, x: &T, mix: &Mix) -> Result<T::Output> {
        let flat = x.flat();
        let mut out = vec![T::Elem::default(); flat.len()];
        let (_op, t) = self.blocking(Op::HierarchicalNeighborAllreduce)?;
        hierarchical_core(t, &flat, &mut out, mix)?;
        x.rebuild(out)
    }
}
