//! The queue of nonblocking work, as data: each item says which op, on which buffer,
//! with which weights ([`Work`]), so it can be shown, traced and (later) merged. A
//! communication thread per rank (BlueFog's background thread, started on first use)
//! runs the items in the order they were started, each inside its op's span.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::core::{allgather_core, allreduce_core, broadcast_core, neighbor_mix};
use super::hierarchical::hierarchical_core;
use super::kernel::ReduceOp;
use super::weights::Mix;
use super::window::Plan;
use super::{Op, Wire};
use crate::tensor::{Dtype, Element};
use crate::{Error, Result};

/// A flat buffer of either element type.
pub(crate) enum Flat {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Flat {
    pub(crate) fn from_vec<E: Element>(v: Vec<E>) -> Flat {
        let any: Box<dyn Any> = Box::new(v);
        match any.downcast::<Vec<f32>>() {
            Ok(v) => Flat::F32(*v),
            Err(any) => match any.downcast::<Vec<f64>>() {
                Ok(v) => Flat::F64(*v),
                Err(_) => unreachable!("Element is sealed to f32 and f64"),
            },
        }
    }

    pub(crate) fn into_vec<E: Element>(self) -> Result<Vec<E>> {
        let found = self.dtype();
        let any: Box<dyn Any> = match self {
            Flat::F32(v) => Box::new(v),
            Flat::F64(v) => Box::new(v),
        };
        any.downcast::<Vec<E>>()
            .map(|v| *v)
            .map_err(|_| Error::Tensor(format!("expected a {} result, found {found}", E::DTYPE)))
    }

    fn dtype(&self) -> Dtype {
        match self {
            Flat::F32(_) => Dtype::F32,
            Flat::F64(_) => Dtype::F64,
        }
    }

    fn len(&self) -> usize {
        match self {
            Flat::F32(v) => v.len(),
            Flat::F64(v) => v.len(),
        }
    }
}

/// Runs `$body` with `$v` bound to the typed vector inside a [`Flat`], rewrapping a
/// `Vec` result.
macro_rules! typed {
    ($flat:expr, |$v:ident| $body:expr) => {
        match $flat {
            Flat::F32($v) => $body.map(|o| o.map_one(Flat::F32)),
            Flat::F64($v) => $body.map(|o| o.map_one(Flat::F64)),
        }
    };
}

/// One nonblocking op as data.
pub(crate) enum Work {
    /// `neighbor_allreduce` or `pair_gossip` with a resolved mix.
    Mix { op: Op, x: Flat, mix: Mix },
    /// `allreduce` with a reduction.
    Allreduce { x: Flat, reduce: ReduceOp },
    /// `broadcast` from `root`.
    Broadcast { x: Flat, root: usize },
    /// `allgather`.
    Allgather { x: Flat },
    /// `hierarchical_neighbor_allreduce` with a resolved machine mix.
    Hierarchical { x: Flat, mix: Mix },
    /// A one-sided window op (put, accumulate or get) with its resolved plan.
    Window { op: Op, plan: Plan, x: Flat },
}

/// What a finished item gives back.
pub(crate) enum Done {
    One(Flat),
    Many(Vec<Flat>),
}

/// Results of one element type, before rewrapping.
enum Typed<E> {
    One(Vec<E>),
    Many(Vec<Vec<E>>),
}

impl<E> Typed<E> {
    fn map_one(self, f: impl Fn(Vec<E>) -> Flat) -> Done {
        match self {
            Typed::One(v) => Done::One(f(v)),
            Typed::Many(v) => Done::Many(v.into_iter().map(f).collect()),
        }
    }
}

fn mixed<E: Element>(t: &Wire, op: Op, x: &[E], mix: &Mix) -> Result<Typed<E>> {
    let mut out = vec![E::default(); x.len()];
    neighbor_mix(t, op, x, &mut out, mix)?;
    Ok(Typed::One(out))
}

fn hierarchical<E: Element>(t: &Wire, x: &[E], mix: &Mix) -> Result<Typed<E>> {
    let mut out = vec![E::default(); x.len()];
    hierarchical_core(t, x, &mut out, mix)?;
    Ok(Typed::One(out))
}

fn reduced<E: Element>(t: &Wire, x: &[E], reduce: ReduceOp) -> Result<Typed<E>> {
    let mut out = vec![E::default(); x.len()];
    allreduce_core(t, x, &mut out, reduce)?;
    Ok(Typed::One(out))
}

fn windowed<E: Element>(t: &Wire, x: &[E], plan: &Plan) -> Result<Typed<E>> {
    let one_sided = t
        .one_sided()
        .ok_or_else(|| Error::InvalidArgument("this transport has no windows".into()))?;
    match plan {
        Plan::Deposit(d) => d.run(one_sided, x)?,
        Plan::Fetch(f) => f.run::<E>(one_sided)?,
    }
    Ok(Typed::Many(Vec::new()))
}

impl Work {
    /// The op this item runs.
    pub(crate) fn op(&self) -> Op {
        match self {
            Work::Mix { op, .. } => *op,
            Work::Allreduce { .. } => Op::Allreduce,
            Work::Broadcast { .. } => Op::Broadcast,
            Work::Allgather { .. } => Op::Allgather,
            Work::Hierarchical { .. } => Op::HierarchicalNeighborAllreduce,
            Work::Window { op, .. } => *op,
        }
    }

    fn input(&self) -> &Flat {
        match self {
            Work::Mix { x, .. }
            | Work::Allreduce { x, .. }
            | Work::Broadcast { x, .. }
            | Work::Allgather { x }
            | Work::Hierarchical { x, .. }
            | Work::Window { x, .. } => x,
        }
    }

    fn run(self, t: &Wire) -> Result<Done> {
        let _span = self.op().span().entered();
        match self {
            Work::Mix { op, x, mix } => typed!(x, |v| mixed(t, op, &v, &mix)),
            Work::Allreduce { x, reduce } => typed!(x, |v| reduced(t, &v, reduce)),
            Work::Broadcast { x, root } => {
                typed!(x, |v| broadcast_core(t, &v, root).map(Typed::One))
            }
            Work::Allgather { x } => typed!(x, |v| allgather_core(t, &v).map(Typed::Many)),
            Work::Hierarchical { x, mix } => typed!(x, |v| hierarchical(t, &v, &mix)),
            Work::Window { plan, x, .. } => typed!(x, |v| windowed(t, &v, &plan)),
        }
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.input();
        write!(f, "{}({} x {})", self.op(), x.dtype(), x.len())
    }
}

type Item = (Work, Sender<Result<Done>>, Arc<AtomicBool>);

/// A started item: its result arrives on `rx`; `done` is set once it has.
pub(crate) struct Ticket {
    pub(crate) done: Arc<AtomicBool>,
    pub(crate) rx: Receiver<Result<Done>>,
}

/// The communication thread of one rank.
pub(crate) struct Queue {
    tx: Option<Sender<Item>>,
    thread: Option<JoinHandle<()>>,
    /// Items started and not yet finished.
    pending: Arc<(Mutex<usize>, Condvar)>,
}

impl Queue {
    /// Starts the thread; it records into the starting thread's `tracing` dispatcher, so
    /// its spans land in the same rank's timeline.
    pub(crate) fn start(t: Arc<Wire>) -> Result<Queue> {
        let (tx, rx) = channel::<Item>();
        let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
        let p = Arc::clone(&pending);
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let thread = std::thread::Builder::new()
            .name(format!("fogkit-comm-{}", t.rank()))
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for (work, reply, done) in rx {
                        // A panic inside an op is an error for its handle, not a rank whose
                        // pending count never drops (every later blocking call would hang).
                        let what = work.to_string();
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            work.run(&*t)
                        }))
                        .unwrap_or_else(|_| {
                            Err(Error::InvalidArgument(format!(
                                "the communication thread panicked running {what}"
                            )))
                        });
                        done.store(true, Ordering::Release);
                        let _ = reply.send(r);
                        let (m, cv) = &*p;
                        *m.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
                        cv.notify_all();
                    }
                })
            })
            .map_err(|e| {
                Error::InvalidArgument(format!("could not start the communication thread: {e}"))
            })?;
        Ok(Queue {
            tx: Some(tx),
            thread: Some(thread),
            pending,
        })
    }

    pub(crate) fn submit(&self, work: Work) -> Result<Ticket> {
        let (reply, rx) = channel();
        let done = Arc::new(AtomicBool::new(false));
        *self.pending.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let sent = match &self.tx {
            Some(tx) => tx.send((work, reply, Arc::clone(&done))).is_ok(),
            None => false,
        };
        if !sent {
            *self.pending.0.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
            return Err(Error::InvalidArgument(
                "the communication thread has stopped".into(),
            ));
        }
        Ok(Ticket { done, rx })
    }

    pub(crate) fn pending(&self) -> usize {
        *self.pending.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until every started item has finished.
    pub(crate) fn drain(&self) {
        let (m, cv) = &*self.pending;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        while *g > 0 {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Finishes the queued items and joins the thread.
    pub(crate) fn shutdown(mut self) -> Result<()> {
        self.tx.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(Error::InvalidArgument(
                "the communication thread panicked".into(),
            )),
            _ => Ok(()),
        }
    }
}
