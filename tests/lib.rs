//! Shared scenarios for the cross-cutting tests: a program that exercises every
//! collective and reports the exact bits of every result, so that runs in another
//! process (and, with the MPI transport, under mpirun) can be compared bit for bit.

use fogkit::prelude::*;

pub mod forms;
pub mod hosts;
pub mod process;
pub mod window_training;
pub mod windows;

/// `(mean, min, max)` from a benchmark's `samples/s MEAN [MIN MAX]` line in `stdout` (a
/// single figure is its own min and max), or `None` where there is no such line.
pub fn samples_line(stdout: &str) -> Option<(f64, f64, f64)> {
    let line = stdout.lines().find(|l| l.starts_with("samples/s "))?;
    let vals: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    match vals.as_slice() {
        [m, lo, hi] => Some((*m, *lo, *hi)),
        [m] => Some((*m, *m, *m)),
        _ => None,
    }
}

/// A deterministic, irregular value for rank `r`, element `k`.
pub fn value(r: usize, k: usize) -> f64 {
    ((r * 13 + k * 5) as f64 * 0.731).sin() * 7.0 + (r as f64) * 0.1
}

fn bits64(v: &[f64]) -> impl Iterator<Item = u64> + '_ {
    v.iter().map(|x| x.to_bits())
}

fn bits32(v: &[f32]) -> impl Iterator<Item = u64> + '_ {
    v.iter().map(|x| x.to_bits() as u64)
}

/// Every collective on f64 and f32, static and dynamic topologies; returns the bits of
/// every result on this rank, in a fixed order.
pub fn scenario(bf: &Fog) -> fogkit::Result<Vec<u64>> {
    bf.barrier()?;
    let (n, r) = (bf.size(), bf.rank());
    let len = 37;
    let x: Vec<f64> = (0..len).map(|k| value(r, k)).collect();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let mut out = Vec::new();

    for op in [ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Min, ReduceOp::Max] {
        out.extend(bits64(&bf.allreduce_op(&x, op)?));
        out.extend(bits32(&bf.allreduce_op(&x32, op)?));
    }
    out.extend(bits64(&bf.broadcast(&x, n - 1)?));
    out.extend(bits32(&bf.broadcast(&x32, 0)?));
    for v in bf.allgather(&x[..r + 1])? {
        out.extend(bits64(&v));
    }
    let topologies = [
        topology::exponential_two(n),
        topology::ring(n),
        topology::mesh_grid_2d(n),
        topology::star(n),
        topology::symmetric_exponential(n),
    ];
    for topo in topologies {
        bf.set_topology(topo)?;
        let mut y = x.clone();
        let mut y32 = x32.clone();
        for _ in 0..5 {
            y = bf.neighbor_allreduce(&y)?;
            y32 = bf.neighbor_allreduce(&y32)?;
        }
        out.extend(bits64(&y));
        out.extend(bits32(&y32));
        for v in bf.neighbor_allgather(&x32)? {
            out.extend(bits32(&v));
        }
    }
    // Dynamic one-peer exponential graph, and push-sum style scaled sends.
    let mut y = x.clone();
    let mut y32 = x32.clone();
    for k in 0..6 {
        let w = NeighborWeights::from_one_peer(&topology::one_peer_exponential_two(n, r, k));
        y = bf.neighbor_allreduce_with(&y, &w)?;
        y32 = bf.neighbor_allreduce_with(&y32, &w)?;
    }
    out.extend(bits64(&y));
    out.extend(bits32(&y32));
    if n > 1 {
        let w = NeighborWeights::new(0.5)
            .src((r + n - 1) % n, 1.0)
            .dst_weighted((r + 1) % n, 0.5);
        out.extend(bits64(&bf.neighbor_allreduce_with(&x, &w)?));
        if n % 2 == 0 {
            out.extend(bits64(&bf.pair_gossip(&x, r ^ 1)?));
        }
    }
    // Large enough for allreduce's reduce-scatter + allgather path and for pieces.
    let big: Vec<f32> = (0..300_001)
        .map(|k| value(r, k % 1000) as f32 + k as f32)
        .collect();
    out.extend(bits32(&bf.allreduce(&big)?[..1000]));
    out.extend(bits32(&bf.neighbor_allreduce(&big)?[299_000..]));
    // Machine-level averaging (machines emulated with FOGKIT_LOCAL_SIZE, or the hosts).
    out.extend(bits64(&bf.hierarchical_neighbor_allreduce(&x)?));
    let h = bf.neighbor_allreduce_nonblocking(&x32)?;
    out.extend(bits32(&h.wait()?));
    bf.barrier()?;
    Ok(out)
}

/// FNV-1a over the bits: one number per rank to compare.
pub fn digest(bits: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bits {
        for byte in b.to_le_bytes() {
            h ^= byte as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The line a rank reports for the scenario: `rank R digest HEX count C`.
pub fn scenario_line(bf: &Fog) -> fogkit::Result<String> {
    let bits = scenario(bf)?;
    Ok(format!(
        "rank {} digest {:016x} count {}",
        bf.rank(),
        digest(&bits),
        bits.len()
    ))
}

/// One step of the timeline scenario: blocking ops, then a nonblocking
/// `neighbor_allreduce` of 1M f32 with `compute` (a busy loop of 200 ms, marked as a
/// span of the caller's) before waiting for it. Returns the averaged first element.
pub fn timeline_step(bf: &Fog) -> fogkit::Result<f32> {
    bf.allreduce(&[1.0f64])?;
    bf.barrier()?;
    bf.neighbor_allreduce(&[bf.rank() as f64])?;
    let x = vec![bf.rank() as f32; 1 << 20];
    let h = bf.neighbor_allreduce_nonblocking(&x)?;
    {
        let _compute = fogkit::tracing::info_span!("compute").entered();
        let start = std::time::Instant::now();
        let mut acc = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(200) {
            acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(7));
        }
    }
    Ok(h.wait()?[0])
}

/// Reads the `n` timeline files written under `prefix` and checks them: each parses as
/// trace-event JSON, holds a span for every op of [`timeline_step`] and the transport's
/// phases, and its nonblocking transfer (on the communication thread) overlaps its
/// `compute` span (on the rank's thread). Panics with what is missing.
pub fn check_timeline(prefix: &std::path::Path, n: usize) {
    use fogkit::timeline::{file_for, Span};
    for r in 0..n {
        let file = file_for(prefix, r);
        let spans = Span::read(&file, r).unwrap_or_else(|e| panic!("rank {r}: {e}"));
        let names: std::collections::BTreeSet<&str> =
            spans.iter().map(|s| s.name.as_str()).collect();
        for want in [
            "allreduce",
            "barrier",
            "neighbor_allreduce",
            "check",
            "wait_peers",
            "transfer",
            "reduce",
            "compute",
            "wait",
        ] {
            assert!(
                names.contains(want),
                "rank {r}: no {want} span in {names:?}"
            );
        }
        let comm = format!("fogkit-comm-{r}");
        let compute = spans
            .iter()
            .find(|s| s.name == "compute" && s.thread == format!("fogkit-rank-{r}"))
            .unwrap_or_else(|| panic!("rank {r}: no compute span on its thread"));
        let transfer = spans
            .iter()
            .find(|s| s.name == "transfer" && s.thread == comm)
            .unwrap_or_else(|| panic!("rank {r}: no transfer span on {comm}"));
        let op = spans
            .iter()
            .find(|s| s.name == "neighbor_allreduce" && s.thread == comm && s.depth == 0)
            .unwrap_or_else(|| panic!("rank {r}: no neighbor_allreduce span on {comm}"));
        assert!(
            op.start_us <= transfer.start_us && transfer.end_us <= op.end_us,
            "rank {r}: the transfer {transfer:?} is not inside its op {op:?}"
        );
        assert!(
            transfer.overlaps(compute),
            "rank {r}: transfer {transfer:?} and compute {compute:?} do not overlap"
        );
    }
}

/// One optimizer case on one rank: its trajectory, or why it was refused.
pub type Outcome = Result<Vec<Vec<f64>>, String>;

/// Every optimizer case of [`forms`] on this rank, in order: the bits of each trajectory,
/// or of the refused case's message. All ranks refuse the same cases at the same step
/// (before any exchange), so one run holds them all.
pub fn optim_cases(bf: &Fog) -> fogkit::Result<Vec<Outcome>> {
    Ok(forms::cases()
        .iter()
        .map(|c| forms::run_case(bf, c).map_err(|e| e.to_string()))
        .collect())
}

/// The line a rank reports for [`optim_cases`]: `rank R optim HEX count C`.
pub fn optim_line(bf: &Fog) -> fogkit::Result<String> {
    let mut bits = Vec::new();
    for case in optim_cases(bf)? {
        match case {
            Ok(traj) => traj.iter().for_each(|x| bits.extend(bits64(x))),
            Err(e) => bits.extend(e.bytes().map(u64::from)),
        }
    }
    Ok(format!(
        "rank {} optim {:016x} count {}",
        bf.rank(),
        digest(&bits),
        bits.len()
    ))
}
