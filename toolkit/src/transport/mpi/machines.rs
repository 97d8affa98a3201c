//! Machine discovery at start-up: which ranks share a host (`MPI_COMM_TYPE_SHARED`), and
//! whether they can read each other's memory in place (the `cma` probe). Collective.

use super::cma;
use super::raw::Comm;
use crate::transport::Machine;
use crate::Result;

/// This rank's machine and every rank's machine leader (its lowest rank). Machines are
/// numbered by their lowest rank.
pub(super) fn find_machines(comm: &Comm, rank: usize, size: usize) -> Result<(Machine, Vec<u64>)> {
    let local = comm.split_shared(rank)?;
    let (lr, ls) = (local.rank(), local.size());
    let leader = local.min(rank as u64)?;
    drop(local);
    let leaders = comm.allgather(&[leader])?;
    let mut distinct = leaders.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let machine = Machine {
        local_rank: lr,
        local_size: ls,
        machine_rank: distinct.iter().position(|&l| l == leader).unwrap_or(0),
        machine_size: distinct.len(),
    };
    // fogkit's machine-level ops expect equal machines of consecutive ranks (mpirun's
    // default mapping by slot); otherwise treat the job as one machine.
    let consecutive = size % machine.local_size == 0
        && leaders
            .iter()
            .enumerate()
            .all(|(r, &l)| l as usize == r / machine.local_size * machine.local_size);
    if consecutive {
        Ok((machine, leaders))
    } else {
        tracing::warn!(
            "ranks are not laid out as equal machines of consecutive ranks; \
             treating the job as one machine"
        );
        Ok((Machine::single(rank, size), leaders))
    }
}

/// Whether every rank can read every other rank's memory (all must agree).
pub(super) fn probe_cma(comm: &Comm, rank: usize, size: usize) -> Result<bool> {
    let mine = [std::process::id() as u64, &cma::PROBE as *const u64 as u64];
    let all = comm.allgather(&mine)?;
    let peers: Vec<(u64, u64)> = (0..size)
        .filter(|&r| r != rank)
        .map(|r| (all[2 * r], all[2 * r + 1]))
        .collect();
    let vote = (!cma::disabled_by_env() && cma::can_read(&peers)) as u64;
    Ok(comm.min(vote)? == 1)
}
