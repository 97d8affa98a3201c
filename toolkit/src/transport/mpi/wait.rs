//! Waiting without hanging: a backoff for polling loops, and the deadline of a call's
//! data stage.

use std::time::{Duration, Instant};

use super::machines::named;
use super::raw::abort_job;

/// Backs off while nothing progresses: spin, then yield, then short sleeps (many ranks
/// may share few cores, and transfers progress only while their owners call MPI). The
/// yields stop after a few hundred rounds: a rank waiting for a neighbour still computing
/// (an exchange started before the gradient) would otherwise take, yield after yield, the
/// CPU that neighbour needs when they share a core (measured: 4 ranks on 2 cores training
/// LeNet-5 with the exchange overlapped ran slower than with it blocking).
#[derive(Default)]
pub(super) struct Backoff(u32);

impl Backoff {
    /// Nothing progressed this round.
    pub(super) fn idle(&mut self) {
        self.0 += 1;
        if self.0 > YIELDS {
            std::thread::sleep(Duration::from_micros(20));
        } else if self.0 > SPINS {
            std::thread::yield_now();
        }
    }

    /// Something progressed: spin again.
    pub(super) fn reset(&mut self) {
        self.0 = 0;
    }
}

/// Rounds of polling before yielding, and before sleeping.
const SPINS: u32 = 64;
const YIELDS: u32 = 256;

/// What the data stage of one call needs to know.
#[derive(Clone, Copy)]
pub(super) struct Stage<'a> {
    /// This rank.
    pub me: usize,
    /// The call, for messages.
    pub what: &'a str,
    /// Its number.
    pub call: u64,
    /// When it started.
    pub start: Instant,
    /// When it must be done.
    pub deadline: Instant,
    /// The MPI tag its messages carry.
    pub tag: i32,
    /// Every rank's host, for messages.
    pub hosts: &'a [String],
}

impl Stage<'_> {
    /// Every rank is inside this call (the descriptors matched), so a data stage that
    /// does not finish means a process is gone or stuck: end the job rather than hang,
    /// naming the peers `waiting_for` says have not finished their part.
    pub(super) fn check_deadline(&self, waiting_for: impl FnOnce() -> Vec<usize>) {
        if Instant::now() >= self.deadline {
            let mut peers = waiting_for();
            peers.sort_unstable();
            peers.dedup();
            abort_job(
                &format!(
                    "fogkit: rank {} on {} timed out after {:?} moving data in {} (call #{}), \
                     waiting for {}; ending the MPI job",
                    self.me,
                    self.hosts.get(self.me).map_or("this host", String::as_str),
                    self.start.elapsed(),
                    self.what,
                    self.call,
                    named(&peers, self.hosts)
                ),
                1,
            );
        }
    }
}
