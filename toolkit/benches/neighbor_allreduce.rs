//! One `neighbor_allreduce` step of 4 ranks next to, in the same run, 4 plain memcpys of
//! the same vector (one per rank, concurrently). Each rank reads 3 vectors and writes 1
//! on exp2(4) and ring(4) (2 in-neighbours + itself): twice a memcpy's traffic, so
//! memcpy-time / neighbor_allreduce-time = 0.5 is the memory-bound limit.
//!
//! Run: `cargo bench -p fogkit --bench neighbor_allreduce`
//! (`-- --quick` for fewer repetitions.)

use std::time::{Duration, Instant};

use fogkit::prelude::*;

const RANKS: usize = 4;

/// Median over `reps` of the time from a barrier to the next barrier around `step`,
/// as seen by rank 0.
fn time_step(
    topo: &Topology,
    len: usize,
    reps: usize,
    step: impl Fn(&Fog, &[f32], &mut [f32]) -> fogkit::Result<()> + Sync,
) -> Duration {
    let times = fogkit::run(RANKS, |bf| -> fogkit::Result<Vec<Duration>> {
        bf.set_topology(topo.clone())?;
        let x: Vec<f32> = (0..len)
            .map(|i| (i % 1000) as f32 + bf.rank() as f32)
            .collect();
        let mut out = vec![0.0f32; len];
        // Warm up (page faults, caches).
        for _ in 0..2 {
            step(bf, &x, &mut out)?;
        }
        let mut t = Vec::with_capacity(reps);
        for _ in 0..reps {
            bf.barrier()?;
            let t0 = Instant::now();
            step(bf, &x, &mut out)?;
            bf.barrier()?;
            t.push(t0.elapsed());
        }
        std::hint::black_box(&out);
        Ok(t)
    })
    .expect("benchmark run");
    let mut t = times.take(0).unwrap_or_default();
    t.sort();
    t[t.len() / 2]
}

fn fmt(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    println!(
        "neighbor_allreduce, {RANKS} in-process ranks (local transport), f32; median of repetitions"
    );
    println!(
        "{:>10}  {:>6}  {:>12}  {:>12}  {:>12}  {:>9}  {:>10}",
        "elements", "graph", "barrier", "memcpy x4", "n_allreduce", "ratio", "GB/s"
    );
    for &len in &[1_000usize, 1_000_000, 25_500_000] {
        let reps = match (len, quick) {
            (1_000, _) => 2000,
            (1_000_000, false) => 100,
            (_, false) => 15,
            (_, true) => 5,
        };
        for (name, topo) in [
            ("exp2", topology::exponential_two(RANKS)),
            ("ring", topology::ring(RANKS)),
        ] {
            let barrier = time_step(&topo, 0, reps, |_, _, _| Ok(()));
            let memcpy = time_step(&topo, len, reps, |_, x, out| {
                out.copy_from_slice(x);
                Ok(())
            });
            let nar = time_step(&topo, len, reps, |bf, x, out| {
                bf.neighbor_allreduce_into(x, out)
            });
            // Bytes moved by all ranks together: 3 reads + 1 write of 4 bytes per element.
            let gbs = (RANKS * len * 4 * 4) as f64 / nar.as_secs_f64() / 1e9;
            println!(
                "{:>10}  {:>6}  {:>12}  {:>12}  {:>12}  {:>9.3}  {:>10.1}",
                len,
                name,
                fmt(barrier),
                fmt(memcpy),
                fmt(nar),
                memcpy.as_secs_f64() / nar.as_secs_f64(),
                gbs
            );
        }
    }
    println!("ratio = memcpy-time / neighbor_allreduce-time (0.5 = memory-bound limit)");
}
