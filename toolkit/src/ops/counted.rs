//! The bytes and messages this rank has sent: the engine's transport, wrapped so that every
//! exchange (blocking or from the nonblocking queue) is counted where it happens. It
//! forwards everything else untouched and never changes what is sent.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Op, Wire};
use crate::transport::{CallInfo, Exit, Machine, OneSided, Transport, Visit};
use crate::Result;

/// A transport that counts what it sends.
pub(crate) struct Counted {
    inner: Arc<Wire>,
    bytes: AtomicU64,
    messages: AtomicU64,
}

impl Counted {
    pub(crate) fn new(inner: Arc<Wire>) -> Self {
        Counted {
            inner,
            bytes: AtomicU64::new(0),
            messages: AtomicU64::new(0),
        }
    }

    /// Counts what a window op wrote into other ranks' memory.
    pub(crate) fn add_sent(&self, bytes: usize, messages: usize) {
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.messages.fetch_add(messages as u64, Ordering::Relaxed);
    }

    /// `(bytes, messages)` sent so far.
    pub(crate) fn sent(&self) -> (u64, u64) {
        (
            self.bytes.load(Ordering::Relaxed),
            self.messages.load(Ordering::Relaxed),
        )
    }
}

impl Transport<Op> for Counted {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn exchange(
        &self,
        info: &CallInfo<Op>,
        sends: &[(usize, &[u8])],
        recv_from: &[usize],
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        let bytes: usize = sends.iter().map(|s| s.1.len()).sum();
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.messages
            .fetch_add(sends.len() as u64, Ordering::Relaxed);
        self.inner.exchange(info, sends, recv_from, visit)
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn machine(&self) -> Machine {
        self.inner.machine()
    }
    fn one_sided(&self) -> Option<&dyn OneSided> {
        self.inner.one_sided()
    }
    fn leave(&self, exit: &Exit) {
        self.inner.leave(exit)
    }
}
