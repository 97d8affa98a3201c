//! The `local` transport: ranks are threads of this process and read each other's
//! buffers in place (no copies, no serialisation, no per-element locking).
//!
//! One call is a rendezvous: each rank posts a description of its call and pointers to
//! what it sends; the last rank to arrive checks all posts against each other and opens
//! the round; each rank then reads its sources directly and, before returning, waits
//! until every rank reading *its* buffers has finished. A rank that times out, panics or
//! returns early makes the others' calls fail with a message instead of hanging.
//!
//! Windows (one-sided access) are in `window`: each rank's region behind its own lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod one_sided;
mod window;

use super::window::OneSided;
use super::{check_consistent, CallInfo, Exit, Machine, OpId, Posted, Transport, Visit};
use crate::{Error, Result};

/// A rank's post for the current call.
struct Post<O> {
    call: u64,
    info: CallInfo<O>,
    /// (destination, pointer, byte length); valid until the owner's readers are done.
    sends: Vec<(usize, *const u8, usize)>,
    recv_from: Vec<usize>,
}

// SAFETY: the pointers are only dereferenced by readers while the owning rank is blocked
// in `exchange` holding the shared borrow they came from (it waits for `readers_left`).
unsafe impl<O: Send> Send for Post<O> {}

enum Failure {
    /// Every rank gets this error.
    Shared(Error),
    /// Every rank gets `PeerLost` with this reason.
    Lost(String),
}

struct State<O> {
    /// Ranks posted for the open call.
    arrived: usize,
    posts: Vec<Option<Post<O>>>,
    /// Per rank: readers still reading its sends in the current round.
    readers_left: Vec<usize>,
    /// Per rank: why it left `run`'s closure, once it has.
    exited: Vec<Option<String>>,
    /// Per rank: calls it has finished (for timeout messages).
    finished: Vec<u64>,
    failure: Option<Failure>,
}

/// The shared meeting place of `n` in-process ranks.
pub struct LocalWorld<O> {
    n: usize,
    local_size: usize,
    timeout: Duration,
    state: Mutex<State<O>>,
    cv: Condvar,
    windows: window::Windows,
}

impl<O: OpId> LocalWorld<O> {
    /// A world of `n` ranks whose calls give up after `timeout` of waiting for peers, on
    /// emulated machines of `local_size` consecutive ranks (which must divide `n`; `None`:
    /// one machine).
    pub fn new(n: usize, timeout: Duration, local_size: Option<usize>) -> Result<Arc<Self>> {
        let local_size = local_size.unwrap_or(n);
        Machine::grouped(0, n, local_size)?;
        Ok(Arc::new(LocalWorld {
            n,
            local_size,
            timeout,
            state: Mutex::new(State {
                arrived: 0,
                posts: (0..n).map(|_| None).collect(),
                readers_left: vec![0; n],
                exited: vec![None; n],
                finished: vec![0; n],
                failure: None,
            }),
            cv: Condvar::new(),
            windows: window::Windows::default(),
        }))
    }

    /// The transport endpoint of `rank`.
    pub fn endpoint(self: &Arc<Self>, rank: usize) -> LocalTransport<O> {
        LocalTransport {
            world: Arc::clone(self),
            rank,
            calls: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<O>> {
        // A panic never happens while the lock is held (no user code runs under it), but
        // recover the guard anyway rather than propagate poisoning.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `rank` has left its closure (`why`: "returned", "panicked: ...").
    /// With `poison`, every current and later call of the other ranks fails at once.
    fn leave(&self, rank: usize, why: String, poison: bool) {
        let mut st = self.lock();
        if poison && st.failure.is_none() {
            st.failure = Some(Failure::Lost(format!("rank {rank} {why}")));
        }
        st.exited[rank] = Some(why);
        self.cv.notify_all();
    }

    /// Lets the shared state change: the first [`SPINS`] times by yielding the core (peers
    /// usually arrive within microseconds, and yielding to them is cheaper than sleeping on
    /// the condition variable and being woken), then by `sleep`.
    fn pause<'a>(
        &'a self,
        st: MutexGuard<'a, State<O>>,
        spins: &mut u32,
        sleep: impl FnOnce(MutexGuard<'a, State<O>>) -> MutexGuard<'a, State<O>>,
    ) -> MutexGuard<'a, State<O>> {
        if *spins < SPINS {
            *spins += 1;
            drop(st);
            std::thread::yield_now();
            return self.lock();
        }
        sleep(st)
    }

    fn failure_error(f: &Failure, rank: usize, info: &CallInfo<O>) -> Error {
        match f {
            Failure::Shared(e) => e.share(),
            Failure::Lost(reason) => Error::PeerLost {
                rank,
                op: info.op.to_string(),
                reason: reason.clone(),
            },
        }
    }
}

/// One rank's endpoint into a [`LocalWorld`].
pub struct LocalTransport<O> {
    world: Arc<LocalWorld<O>>,
    rank: usize,
    calls: AtomicU64,
}

/// Decrements the readers of each source when reading ends, even by unwinding.
struct ReadGuard<'a, O: OpId> {
    world: &'a LocalWorld<O>,
    sources: &'a [usize],
}

impl<O: OpId> Drop for ReadGuard<'_, O> {
    fn drop(&mut self) {
        let mut st = self.world.lock();
        for &j in self.sources {
            st.readers_left[j] -= 1;
        }
        self.world.cv.notify_all();
    }
}

impl<O: OpId> Transport<O> for LocalTransport<O> {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.world.n
    }

    fn name(&self) -> &'static str {
        "local"
    }

    fn describe(&self) -> String {
        format!(
            "local ({} ranks as threads of process {}; neighbours read each other's buffers in place)",
            self.world.n,
            std::process::id()
        )
    }

    fn machine(&self) -> Machine {
        Machine::grouped(self.rank, self.world.n, self.world.local_size)
            .unwrap_or_else(|_| Machine::single(self.rank, self.world.n))
    }

    fn one_sided(&self) -> Option<&dyn OneSided> {
        Some(self)
    }

    fn leave(&self, exit: &Exit) {
        let (why, poison) = match exit {
            Exit::Returned => ("returned from its closure".to_string(), false),
            Exit::Failed(_) => ("returned an error from its closure".to_string(), false),
            Exit::Panicked(m) => (format!("panicked: {m}"), true),
        };
        self.world.leave(self.rank, why, poison);
    }

    fn exchange(
        &self,
        info: &CallInfo<O>,
        sends: &[(usize, &[u8])],
        recv_from: &[usize],
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        let w = &*self.world;
        let me = self.rank;
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let check = tracing::trace_span!("check").entered();
        let mut st = w.lock();
        if let Some(f) = &st.failure {
            return Err(LocalWorld::failure_error(f, me, info));
        }
        st.posts[me] = Some(Post {
            call,
            info: info.clone(),
            sends: sends
                .iter()
                .map(|(d, b)| (*d, b.as_ptr(), b.len()))
                .collect(),
            recv_from: recv_from.to_vec(),
        });
        st.arrived += 1;
        if st.arrived == w.n {
            // Last to arrive: check everyone's call and open the round.
            let checked = {
                let posts: Vec<Posted<'_, O>> = st
                    .posts
                    .iter()
                    .map(|p| {
                        let p = p.as_ref().expect("all ranks posted");
                        Posted {
                            info: &p.info,
                            send_to: p.sends.iter().map(|s| s.0).collect(),
                            recv_from: &p.recv_from,
                        }
                    })
                    .collect();
                check_consistent(call, &posts)
            };
            if let Err(e) = checked {
                st.failure = Some(Failure::Shared(e.share()));
                st.posts[me] = None;
                w.cv.notify_all();
                return Err(e);
            }
            st.arrived = 0;
            let mut readers = vec![0usize; w.n];
            for p in st.posts.iter().flatten() {
                for &j in &p.recv_from {
                    readers[j] += 1;
                }
            }
            st.readers_left = readers;
            // Marks the round open: every post now has `call` and arrived is reset.
            for p in st.posts.iter_mut().flatten() {
                p.call = call | OPEN;
            }
            w.cv.notify_all();
            drop(check);
        } else {
            drop(check);
            let _wait = tracing::trace_span!("wait_peers").entered();
            let start = Instant::now();
            let deadline = start + w.timeout;
            let mut spins = 0;
            loop {
                if st.posts[me].as_ref().is_some_and(|p| p.call & OPEN != 0) {
                    break;
                }
                if let Some(f) = &st.failure {
                    let e = LocalWorld::failure_error(f, me, info);
                    st.posts[me] = None;
                    return Err(e);
                }
                let posted =
                    |st: &State<O>, r: usize| st.posts[r].as_ref().is_some_and(|p| p.call == call);
                if let Some(e) = (0..w.n).find(|&r| st.exited[r].is_some() && !posted(&st, r)) {
                    let why = st.exited[e].clone().unwrap_or_default();
                    let reason = format!("rank {e} {why} and will not join call #{call}");
                    st.failure = Some(Failure::Lost(reason));
                    continue;
                }
                let now = Instant::now();
                if now >= deadline {
                    let missing: Vec<usize> = (0..w.n).filter(|&r| !posted(&st, r)).collect();
                    let detail = missing
                        .iter()
                        .map(|&r| {
                            format!(
                                "; rank {r} has finished {} call(s) and is busy elsewhere",
                                st.finished[r]
                            )
                        })
                        .collect::<String>();
                    let e = Error::Timeout {
                        rank: me,
                        op: info.to_string(),
                        call,
                        waited: now - start,
                        missing,
                        detail,
                    };
                    st.failure = Some(Failure::Shared(e.share()));
                    st.posts[me] = None;
                    w.cv.notify_all();
                    return Err(e);
                }
                st = w.pause(st, &mut spins, |st| {
                    w.cv.wait_timeout(st, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                });
            }
        }

        // The round is open: read the sources in place.
        let transfer = tracing::trace_span!("transfer").entered();
        let slices: Vec<(*const u8, usize)> = recv_from
            .iter()
            .map(|&j| {
                let p = st.posts[j].as_ref().expect("source posted");
                let &(_, ptr, len) = p
                    .sends
                    .iter()
                    .find(|s| s.0 == me)
                    .expect("checked: source sends to me");
                (ptr, len)
            })
            .collect();
        drop(st);
        let result = {
            let _guard = ReadGuard {
                world: w,
                sources: recv_from,
            };
            // SAFETY: each source is blocked below (waiting for its readers_left to reach
            // zero) while holding the `&[u8]` these pointers came from, so the memory is
            // live and unaliased by writers until our guard drops.
            let bufs: Vec<&[u8]> = slices
                .iter()
                .map(|&(p, l)| unsafe { std::slice::from_raw_parts(p, l) })
                .collect();
            tracing::trace_span!("reduce").in_scope(|| visit(0, &bufs))
        };
        // Keep our sends alive until everyone reading them is done. Readers only run
        // fogkit's kernels over the buffers, so this wait is bounded.
        drop(transfer);
        let _readers = tracing::trace_span!("wait_readers").entered();
        let mut st = w.lock();
        let mut spins = 0;
        while st.readers_left[me] > 0 {
            st = w.pause(st, &mut spins, |st| {
                w.cv.wait(st).unwrap_or_else(|e| e.into_inner())
            });
        }
        st.posts[me] = None;
        st.finished[me] = call + 1;
        result
    }
}

/// Times a waiting rank yields its core before it sleeps on the condition variable.
const SPINS: u32 = 64;

/// Bit set on a post's call number when its round is open.
const OPEN: u64 = 1 << 63;
