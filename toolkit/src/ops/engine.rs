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
    /// Names of this rank's open windows, and the id the next window gets.
    windows: RefCell<(std::collections::BTreeSet<String>, u64)>,
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
            windows: RefCell::new(Default::default()),
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

    /// One-sided access, or an error naming the transport that has none.
    pub(super) fn one_sided(&self) -> Result<&dyn crate::transport::OneSided> {
        self.transport.one_sided().ok_or_else(|| {
            crate::Error::InvalidArgument(format!(
                "windows expected a transport with one-sided access, found `{}` without it",
                self.transport.name()
            ))
        })
    }

    /// Counts bytes a window op wrote into other ranks' regions.
    pub(super) fn count_sent(&self, bytes: usize, messages: usize) {
        self.counted.add_sent(bytes, messages);
    }

    /// Reserves window `name` on this rank: its id, or an error if it is open already.
    pub(super) fn reserve_window(&self, name: &str) -> Result<u64> {
        let mut w = self.windows.borrow_mut();
        if w.0.contains(name) {
            return Err(crate::Error::InvalidArgument(format!(
                "win_create expected a new window name, found `{name}` open already (win_free it first)"
            )));
        }
        w.0.insert(name.to_string());
        w.1 += 1;
        Ok(w.1)
    }

    /// Forgets window `name` on this rank.
    pub(super) fn release_window(&self, name: &str) {
        self.windows.borrow_mut().0.remove(name);
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
