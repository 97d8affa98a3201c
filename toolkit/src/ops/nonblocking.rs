//! Nonblocking collectives. Each rank has a communication thread (started on first use,
//! like BlueFog's background thread) that runs its nonblocking ops in the order they were
//! started; a blocking op first waits for them, so all ranks see the same call order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::{
    allgather_core, allreduce_core, broadcast_core, neighbor_mix, Mix, NeighborWeights, ReduceOp,
};
use crate::fog::Fog;
use crate::tensor::Communicable;
use crate::transport::{Op, Transport};
use crate::{Error, Result};

type Job = Box<dyn FnOnce(&dyn Transport) + Send>;

pub(crate) struct CommThread {
    tx: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Jobs started and not yet finished.
    pending: Arc<(Mutex<usize>, Condvar)>,
}

impl CommThread {
    fn start(t: Arc<dyn Transport>) -> Result<CommThread> {
        let (tx, rx) = channel::<Job>();
        let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
        let p = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name(format!("fogkit-comm-{}", t.rank()))
            .spawn(move || {
                for job in rx {
                    job(&*t);
                    let (m, cv) = &*p;
                    *m.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                    cv.notify_all();
                }
            })
            .map_err(|e| {
                Error::InvalidArgument(format!("could not start the communication thread: {e}"))
            })?;
        Ok(CommThread {
            tx: Some(tx),
            thread: Some(thread),
            pending,
        })
    }

    fn drain(&self) {
        let (m, cv) = &*self.pending;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        while *g > 0 {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A nonblocking op in flight. [`wait`](Handle::wait) gives its result; it borrows the
/// input, so the input outlives the op. Dropping a handle does not cancel the op (all
/// ranks have started it); its result is discarded.
#[must_use = "a nonblocking op's result is only available through wait()"]
pub struct Handle<'a, Out> {
    done: Arc<AtomicBool>,
    finish: Box<dyn FnOnce() -> Result<Out> + 'a>,
}

impl<Out> Handle<'_, Out> {
    /// True once the op has finished (BlueFog's `poll`); `wait` then returns at once.
    pub fn poll(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until the op finishes and returns its result.
    pub fn wait(self) -> Result<Out> {
        (self.finish)()
    }
}

impl Fog {
    /// Waits for this rank's nonblocking ops to finish.
    pub(crate) fn drain(&self) -> Result<()> {
        if let Some(c) = self.comm.borrow().as_ref() {
            c.drain();
        }
        Ok(())
    }

    /// Finishes nonblocking work and stops the communication thread.
    pub(crate) fn shutdown(&self) -> Result<()> {
        let Some(mut c) = self.comm.borrow_mut().take() else {
            return Ok(());
        };
        c.tx.take();
        match c.thread.take().map(|t| t.join()) {
            Some(Err(_)) => Err(Error::InvalidArgument(
                "the communication thread panicked".into(),
            )),
            _ => Ok(()),
        }
    }

    fn submit<V: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn Transport) -> Result<V> + Send + 'static,
    ) -> Result<(Arc<AtomicBool>, Receiver<Result<V>>)> {
        let mut comm = self.comm.borrow_mut();
        if comm.is_none() {
            *comm = Some(CommThread::start(Arc::clone(&self.transport))?);
        }
        let c = comm.as_ref().expect("started above");
        let (tx, rx) = channel();
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        *c.pending.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let boxed: Job = Box::new(move |t| {
            let r = job(t);
            d.store(true, Ordering::Release);
            let _ = tx.send(r);
        });
        c.tx.as_ref()
            .expect("sender lives until shutdown")
            .send(boxed)
            .map_err(|_| Error::InvalidArgument("the communication thread has stopped".into()))?;
        Ok((done, rx))
    }

    fn handle<'a, T, V, Out>(
        &self,
        x: &'a T,
        job: impl FnOnce(&dyn Transport, Vec<T::Elem>) -> Result<V> + Send + 'static,
        finish: impl FnOnce(&'a T, V) -> Result<Out> + 'a,
    ) -> Result<Handle<'a, Out>>
    where
        T: Communicable + ?Sized,
        V: Send + 'static,
    {
        let data = x.flat().into_owned();
        let (done, rx) = self.submit(move |t| job(t, data))?;
        Ok(Handle {
            done,
            finish: Box::new(move || {
                let v = rx.recv().map_err(|_| {
                    Error::InvalidArgument(
                        "the communication thread stopped before the op finished".into(),
                    )
                })??;
                finish(x, v)
            }),
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
        let mix = Mix::static_topology(&self.topology.borrow(), self.rank());
        self.mix_nonblocking(x, Op::NeighborAllreduce, mix)
    }

    /// Nonblocking [`neighbor_allreduce_with`](Self::neighbor_allreduce_with).
    pub fn neighbor_allreduce_with_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
        weights: &NeighborWeights,
    ) -> Result<Handle<'a, T::Output>> {
        let mix = Mix::resolve(weights, &self.topology.borrow(), self.rank(), 0)?;
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
        self.handle(
            x,
            move |t, data: Vec<T::Elem>| {
                let mut out = vec![T::Elem::default(); data.len()];
                neighbor_mix(t, op, &data, &mut out, &mix)?;
                Ok(out)
            },
            |x, out| x.rebuild(out),
        )
    }

    /// Nonblocking [`allreduce_op`](Self::allreduce_op).
    pub fn allreduce_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
        op: ReduceOp,
    ) -> Result<Handle<'a, T::Output>> {
        self.handle(
            x,
            move |t, data: Vec<T::Elem>| {
                let mut out = vec![T::Elem::default(); data.len()];
                allreduce_core(t, &data, &mut out, op)?;
                Ok(out)
            },
            |x, out| x.rebuild(out),
        )
    }

    /// Nonblocking [`broadcast`](Self::broadcast).
    pub fn broadcast_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
        root: usize,
    ) -> Result<Handle<'a, T::Output>> {
        self.handle(
            x,
            move |t, data: Vec<T::Elem>| broadcast_core(t, &data, root),
            |x, out| x.rebuild(out),
        )
    }

    /// Nonblocking [`allgather`](Self::allgather).
    pub fn allgather_nonblocking<'a, T: Communicable + ?Sized>(
        &self,
        x: &'a T,
    ) -> Result<Handle<'a, Vec<T::Output>>> {
        self.handle(
            x,
            move |t, data: Vec<T::Elem>| allgather_core(t, &data),
            |x, parts| parts.into_iter().map(|p| x.rebuild(p)).collect(),
        )
    }
}
