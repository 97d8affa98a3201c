//! Where a rank runs: its machine (a host, or a group the local transport emulates).

use crate::{Error, Result};

/// Where a rank runs: ranks sharing a machine (a host, or a group the local transport
/// emulates) and the machines of the job. Machines hold equally many ranks, numbered
/// consecutively: rank = machine_rank * local_size + local_rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Rank among the ranks of this machine.
    pub local_rank: usize,
    /// Ranks on this machine.
    pub local_size: usize,
    /// Index of this machine.
    pub machine_rank: usize,
    /// Number of machines.
    pub machine_size: usize,
}

impl Machine {
    /// All ranks on one machine.
    pub fn single(rank: usize, size: usize) -> Self {
        Machine {
            local_rank: rank,
            local_size: size,
            machine_rank: 0,
            machine_size: 1,
        }
    }

    /// `size` ranks grouped into machines of `local_size` consecutive ranks; errors when
    /// `local_size` does not divide `size`.
    ///
    /// ```
    /// use fogkit::transport::Machine;
    /// let m = Machine::grouped(5, 6, 2).unwrap();
    /// assert_eq!((m.machine_rank, m.local_rank, m.machine_size), (2, 1, 3));
    /// assert!(Machine::grouped(0, 6, 4).is_err());
    /// ```
    pub fn grouped(rank: usize, size: usize, local_size: usize) -> Result<Self> {
        if local_size == 0 || size % local_size != 0 {
            return Err(Error::InvalidArgument(format!(
                "ranks per machine must divide the {size} ranks, found {local_size}"
            )));
        }
        Ok(Machine {
            local_rank: rank % local_size,
            local_size,
            machine_rank: rank / local_size,
            machine_size: size / local_size,
        })
    }
}
