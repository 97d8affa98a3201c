//! Waiting without hanging: a backoff for polling loops, and the deadline of a call's
//! data stage.

use std::time::{Duration, Instant};

use super::machines::named;
use super::raw::abort_job;

/// Backs off while nothing progresses: spin, then yield, then short sleeps (many ranks
/// may share few cores, and transfers progress only while their owners call MPI).
#[derive(Default)]
pub(super) struct Backoff(u32);

impl Backoff {
    /// Nothing progressed this round.
    pub(super) fn idle(&mut self) {
        self.0 += 1;
        if self.0 > 20_000 {
            std::thread::sleep(Duration::from_micros(20));
        } else if self.0 > 64 {
            std::thread::yield_now();
        }
    }

    /// Something progressed: spin again.
    pub(super) fn reset(&mut self) {
        self.0 = 0;
    }
}

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
