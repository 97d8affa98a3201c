//! The local transport's one-sided access: the window core (`window`) reached through the
//! seam's trait. Nothing here but the connection.

use super::LocalTransport;
use crate::transport::window::{Accessor, OneSided};
use crate::transport::OpId;
use crate::Result;

impl<O: OpId> OneSided for LocalTransport<O> {
    fn win_open(&self, id: u64, bytes: usize) -> Result<()> {
        self.world.windows.open(self.world.n, id, self.rank, bytes)
    }

    fn win_close(&self, id: u64) -> Result<()> {
        self.world.windows.close(id, self.rank)
    }

    fn patience(&self) -> std::time::Duration {
        self.world.timeout
    }

    fn access(&self, id: u64, target: usize, f: &mut Accessor<'_>) -> Result<()> {
        self.world.windows.access(self.world.n, id, target, f)
    }
}
