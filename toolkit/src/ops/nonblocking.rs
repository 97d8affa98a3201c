//! Nonblocking collectives: each starts an item on this rank's queue (see `queue`) and
//! returns a [`Handle`]. Items run in the order they were started; a blocking op first
//! waits for them, so all ranks see the same call order.

use std::sync::atomic::Ordering;

use super::engine::Comm;
use super::kernel::ReduceOp;
use super::queue::{Done, Flat, Ticket, Work};
use super::weights::{Mix, NeighborWeights};
use super::Op;
use crate::tensor::Communicable;
use crate::{Error, Result};

/// A nonblocking op in flight. [`wait`](Handle::wait) gives its result. The op runs on a
/// copy of the input taken when it starts; the handle borrows the input only to rebuild
/// the result in the input's shape. Dropping a handle does not cancel the op (all ranks
/// have started it); its result is discarded.
#[must_use = "a nonblocking op's result is only available through wait()"]
pub struct Handle<'a, Out> {
    ticket: Ticket,
    finish: Box<dyn FnOnce(Done) -> Result<Out> + 'a>,
}

impl<'a, Out> Handle<'a, Out> {
    /// A handle for `ticket` whose result `finish` makes.
    pub(crate) fn new(ticket: Ticket, finish: Box<dyn FnOnce(Done) -> Result<Out> + 'a>) -> Self {
        Handle { ticket, finish }
    }

    /// True once the op has finished (BlueFog's `poll`); `wait` then returns at once.
    pub fn poll(&self) -> bool {
        self.ticket.done.load(Ordering::Acquire)
    }

    /// Blocks until the op finishes and returns its result.
    pub fn wait(self) -> Result<Out> {
        let done = receive(&self.ticket)?;
        (self.finish)(done)
    }
}

/// Blocks (inside a `wait` span) until the ticket's op has finished.
fn receive(ticket: &Ticket) -> Result<Done> {
    let _s = tracing::trace_span!("wait").entered();
    ticket.rx.recv().map_err(|_| {
        Error::InvalidArgument("the communication thread stopped before the op finished".into())
    })?
}

fn one<T: Communicable + ?Sized>(x: &T, done: Done) -> Result<T::Output> {
    match done {
        Done::One(f) => x.rebuild(f.into_vec()?),
        Done::Many(_) => Err(Error::Tensor("expected one result, found several".into())),
    }
}

/// A nonblocking op on a vector the op owns (no borrow, so a caller such as an optimizer
/// can keep it across its own computation).
pub(crate) struct Pending<E> {
    ticket: Ticket,
    _elem: std::marker::PhantomData<E>,
}

impl<E: crate::tensor::Element> Pending<E> {
    /// Blocks until the op finishes and returns its result.
    pub(crate) fn wait(self) -> Result<Vec<E>> {
        match receive(&self.ticket)? {
            Done::One(f) => f.into_vec(),
            Done::Many(_) => Err(Error::Tensor("expected one result, found several".into())),
        }
    }
}

/// Which `W x` an owned nonblocking op forms.
pub(crate) enum Owned<'w> {
    /// The static topology.
    Static,
    /// Per-call weights.
    Weights(&'w NeighborWeights),
    /// Machines over the machine topology.
    Hierarchical,
    /// The global average.
    Average,
}

impl Comm {
    /// Starts `W x` on a copy of `x` this rank's queue owns.
    pub(crate) fn start_owned<E: crate::tensor::Element>(
        &self,
        x: &[E],
        what: Owned<'_>,
    ) -> Result<Pending<E>> {
        let data = Flat::from_vec(x.to_vec());
        let work = match what {
            Owned::Static => Work::Mix {
                op: Op::NeighborAllreduce,
                x: data,
                mix: Mix::static_topology(&self.topology(), self.rank()),
            },
            Owned::Weights(w) => Work::Mix {
                op: Op::NeighborAllreduce,
                x: data,
                mix: Mix::resolve(w, &self.topology(), self.rank(), 0)?,
            },
            Owned::Hierarchical => Work::Hierarchical {
                x: data,
                mix: Mix::static_topology(&self.machine_topology_now(), self.machine_rank()),
            },
            Owned::Average => Work::Allreduce {
                x: data,
                reduce: ReduceOp::Avg,
            },
        };
        Ok(Pending {
            ticket: self.submit(work)?,
            _elem: std::marker::PhantomData,
        })
    }

    fn start<'a, T, Out>(
        &self,
        x: &'a T,
        work: impl FnOnce(Flat) -> Work,
        finish: impl FnOnce(&'a T, Done) -> Result<Out> + 'a,
    ) -> Result<Handle<'a, Out>>
    where
        T: Communicable + ?Sized,
    {
        let data = Flat::from_vec(x.flat().into_owned());
        let ticket = self.submit(work(data))?;
        Ok(Handle {
            ticket,
            finish: Box::new(move |done| finish(x, done)),
        })
    }

    /// Nonblocking [`neighbor_allreduce`](Self::neighbor_allreduce).
    ///
    /// ```
    /// let v = fogkit::run(4, |bf| {
    ///     let x = vec![bf.rank() as f64; 3];
    ///     let h = bf.neighbor_allreduce_nonblocking(&x)?;
    ///     // ... compute here while the exchange runs ...
    ///     h.wait()
    /// })
    /// .unwrap();
    /// // exp2(4): rank 0 averages itself with ranks 2 and 3, weights 1/3.
    /// assert!(v[0].iter().all(|&e| (e - 5.0 / 3.0).abs() < 1e-15));
    /// ```
    pub fn neighbor_allreduce_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
    ) -> Result<Handle<'a, T::Output>> {
        let mix = Mix::static_topology(&self.topology(), self.rank());
        self.mix_nonblocking(x, Op::NeighborAllreduce, mix)
    }

    /// Nonblocking [`neighbor_allreduce_with`](Self::neighbor_allreduce_with).
    pub fn neighbor_allreduce_with_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
        weights: &NeighborWeights,
    ) -> Result<Handle<'a, T::Output>> {
        let mix = Mix::resolve(weights, &self.topology(), self.rank(), 0)?;
        self.mix_nonblocking(x, Op::NeighborAllreduce, mix)
    }

    /// Nonblocking [`pair_gossip`](Self::pair_gossip).
    pub fn pair_gossip_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
        peer: usize,
    ) -> Result<Handle<'a, T::Output>> {
        let mix = self.pair_mix(peer, 0.5, 0.5)?;
        self.mix_nonblocking(x, Op::PairGossip, mix)
    }

    fn mix_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
        op: Op,
        mix: Mix,
    ) -> Result<Handle<'a, T::Output>> {
        self.start(x, |x| Work::Mix { op, x, mix }, one)
    }

    /// Nonblocking [`allreduce_op`](Self::allreduce_op).
    pub fn allreduce_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
        op: ReduceOp,
    ) -> Result<Handle<'a, T::Output>> {
        self.start(x, |x| Work::Allreduce { x, reduce: op }, one)
    }

    /// Nonblocking [`broadcast`](Self::broadcast).
    pub fn broadcast_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
        root: usize,
    ) -> Result<Handle<'a, T::Output>> {
        self.start(x, |x| Work::Broadcast { x, root }, one)
    }

    /// Nonblocking [`allgather`](Self::allgather).
    pub fn allgather_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
    ) -> Result<Handle<'a, Vec<T::Output>>> {
        self.start(
            x,
            |x| Work::Allgather { x },
            |x, done| match done {
                Done::Many(parts) => parts
                    .into_iter()
                    .map(|p| x.rebuild(p.into_vec()?))
                    .collect(),
                Done::One(_) => Err(Error::Tensor(
                    "expected every rank's part, found one".into(),
                )),
            },
        )
    }
}
