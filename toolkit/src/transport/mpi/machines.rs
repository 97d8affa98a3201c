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

/// This process's host, for messages that name a rank's host: its name and, under Open
/// MPI, the address its daemon listens on (hosts can share a name: containers, network
/// namespaces).
pub(super) fn host_label() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown host".into());
    // "1912668160.1;tcp://198.18.7.11:54373": the daemon of this host.
    let addr = std::env::var("OMPI_MCA_orte_local_daemon_uri")
        .ok()
        .and_then(|uri| {
            let tcp = uri
                .split([';', ','])
                .find_map(|u| u.split("tcp://").nth(1))?;
            let host = tcp.rsplit_once(':').map_or(tcp, |(h, _)| h);
            Some(host.to_string())
        })
        .filter(|a| !a.is_empty() && !a.starts_with("127."));
    match addr {
        Some(a) => format!("{name} ({a})"),
        None => name,
    }
}

/// Every rank's [`host_label`], in rank order (collective, blocking: start-up only).
pub(super) fn gather_hosts(comm: &Comm) -> Result<Vec<String>> {
    const WORDS: usize = 8;
    let mut bytes = host_label().into_bytes();
    bytes.truncate(WORDS * 8);
    bytes.resize(WORDS * 8, 0);
    let mine: Vec<u64> = bytes
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let all = comm.allgather(&mine)?;
    Ok(all
        .chunks(WORDS)
        .map(|w| {
            let b: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        })
        .collect())
}

/// `ranks` with their hosts, for messages: "rank 3 on node7 (10.0.0.7)".
pub(super) fn named(ranks: &[usize], hosts: &[String]) -> String {
    ranks
        .iter()
        .map(|&r| match hosts.get(r) {
            Some(h) => format!("rank {r} on {h}"),
            None => format!("rank {r}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
