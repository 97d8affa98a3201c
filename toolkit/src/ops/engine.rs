//! [`Comm`], ops' engine: one per rank, holding the transport, the topologies in force
//! and the queue of nonblocking work. Only this file touches that state; the collectives
//! reach it through the methods here. It never does arithmetic and never blocks except
//! where a method says so.

use std::cell::RefCell;
use std::sync::Arc;

use super::counted::Counted;
use super::queue::{Queue, Ticket, Work};
use super::{Op, Wire};
use crate::topology::{self, Topology};
use crate::transport::Machine;
use crate::Result;

/// One rank's communicator: its transport, topologies and nonblocking queue. Every
/// collective is a method on it; [`Fog`](crate::Fog) (BlueFog's `bf`) derefs to it.
pub struct Comm {
    transport: Arc<Wire>,
    counted: Arc<Counted>,
    topology: RefCell<Arc<Topology>>,
    machine_topology: RefCell<Arc<Topology>>,
    queue: RefCell<Option<Queue>>,
}

impl Comm {
    /// A communicator over `transport`, with BlueFog's default topologies
    /// (exponential-two over the ranks and over the machines).
    pub(crate) fn new(transport: Arc<Wire>) -> Self {
        let n = transport.size();
        let machines = transport.machine().machine_size;
        let counted = Arc::new(Counted::new(transport));
        Comm {
            transport: Arc::clone(&counted) as Arc<Wire>,
            counted,
            topology: RefCell::new(Arc::new(topology::exponential_two(n))),
            machine_topology: RefCell::new(Arc::new(topology::exponential_two(machines))),
            queue: RefCell::new(None),
        }
    }

    /// This rank, `0..size()`.
    pub fn rank(&self) -> usize {
        self.transport.rank()
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.transport.size()
    }

    /// The transport's name: `"local"` (threads in this process) or `"mpi"`.
    pub fn transport_name(&self) -> &'static str {
        self.transport.name()
    }

    /// The transport and how it moves data, e.g. `"mpi (neighbours read in place)"`.
    pub fn transport_description(&self) -> String {
        self.transport.describe()
    }

    /// The topology in force (default: [`topology::exponential_two`], as BlueFog's).
    pub fn topology(&self) -> Arc<Topology> {
        Arc::clone(&self.topology.borrow())
    }

    /// Ranks this rank receives from under the current topology, ascending.
    pub fn in_neighbor_ranks(&self) -> Vec<usize> {
        self.topology.borrow().in_neighbors(self.rank())
    }

    /// Ranks this rank sends to under the current topology, ascending.
    pub fn out_neighbor_ranks(&self) -> Vec<usize> {
        self.topology.borrow().out_neighbors(self.rank())
    }

    /// Bytes this rank has sent to other ranks so far, over every op (blocking and
    /// nonblocking): what a topology or schedule costs on the wire.
    ///
    /// ```
    /// use fogkit::topology;
    /// let b = fogkit::run(4, |bf| -> fogkit::Result<u64> {
    ///     bf.set_topology(topology::ring(4))?;
    ///     let before = bf.bytes_sent();
    ///     bf.neighbor_allreduce(&[1.0f64; 8])?; // 8 f64 to each of 2 neighbours
    ///     Ok(bf.bytes_sent() - before)
    /// })
    /// .unwrap();
    /// assert!(b.iter().all(|(_, &b)| b == 2 * 8 * 8));
    /// ```
    pub fn bytes_sent(&self) -> u64 {
        self.counted.sent().0
    }

    /// Messages this rank has sent to other ranks so far.
    pub fn messages_sent(&self) -> u64 {
        self.counted.sent().1
    }

    /// Nonblocking ops started on this rank and not finished yet.
    ///
    /// ```
    /// fogkit::run(2, |bf| {
    ///     let h = bf.allreduce_nonblocking(&[1.0f64], fogkit::ops::ReduceOp::Sum)?;
    ///     bf.synchronize()?;
    ///     assert_eq!(bf.pending(), 0);
    ///     h.wait()
    /// })
    /// .unwrap();
    /// ```
    pub fn pending(&self) -> usize {
        self.queue.borrow().as_ref().map_or(0, Queue::pending)
    }

    /// Waits until this rank's nonblocking ops have finished (BlueFog's `synchronize`);
    /// their results stay with their handles.
    pub fn synchronize(&self) -> Result<()> {
        if let Some(q) = self.queue.borrow().as_ref() {
            let _s = tracing::trace_span!("wait_pending").entered();
            q.drain();
        }
        Ok(())
    }

    pub(crate) fn machine(&self) -> Machine {
        self.transport.machine()
    }

    /// The transport for a blocking call of `op`, inside the op's span: waits first for
    /// this rank's pending nonblocking ops, so that every rank issues its calls to the
    /// transport in program order.
    pub(super) fn blocking(&self, op: Op) -> Result<(tracing::span::EnteredSpan, &Wire)> {
        self.synchronize()?;
        Ok((op.span().entered(), &*self.transport))
    }

    pub(super) fn replace_topology(&self, topo: Topology) {
        *self.topology.borrow_mut() = Arc::new(topo);
    }

    pub(super) fn machine_topology_now(&self) -> Arc<Topology> {
        Arc::clone(&self.machine_topology.borrow())
    }

    pub(super) fn replace_machine_topology(&self, topo: Topology) {
        *self.machine_topology.borrow_mut() = Arc::new(topo);
    }

    /// Queues `work` on this rank's communication thread (started on first use).
    pub(super) fn submit(&self, work: Work) -> Result<Ticket> {
        let mut q = self.queue.borrow_mut();
        if q.is_none() {
            *q = Some(Queue::start(Arc::clone(&self.transport))?);
        }
        match q.as_ref() {
            Some(q) => q.submit(work),
            None => unreachable!("started above"),
        }
    }

    /// Finishes nonblocking work and stops the communication thread.
    pub(crate) fn shutdown(&self) -> Result<()> {
        match self.queue.borrow_mut().take() {
            Some(q) => q.shutdown(),
            None => Ok(()),
        }
    }
}
