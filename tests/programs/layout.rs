//! Prints where each rank runs (its host, its local and machine ranks) and checks the
//! hierarchical op against its definition computed densely: with the machine topology,
//! and over the one-peer dynamic exponential schedule of machines. One line per rank:
//! `rank R on HOST: local L of LS, machine M of MS; hierarchical ok`.
//!
//! With `--loop`, each rank then prints `rank R looping` and runs collectives until the
//! job ends (for the tests that cut a host off mid-run).
//!
//! Usage: fogkit-layout [N] [--loop] (N: mpirun's process count, or FOGKIT_RANKS, or 4).

use fogkit::prelude::*;
use fogkit::topology::OnePeerSchedule;
use fogkit_tests::value;

const LEN: usize = 29;

/// Every machine's average of every rank's vector.
fn machine_averages(x: &[Vec<f64>], local_size: usize) -> Vec<Vec<f64>> {
    x.chunks(local_size)
        .map(|ranks| {
            (0..LEN)
                .map(|k| ranks.iter().map(|v| v[k]).sum::<f64>() / local_size as f64)
                .collect()
        })
        .collect()
}

fn largest_gap(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let mut n = fogkit::launch::ranks_or(4);
    let mut forever = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--loop" => forever = true,
            _ => {
                n = a.parse().map_err(|_| {
                    Error::InvalidArgument(format!("expected a rank count or --loop, found {a:?}"))
                })?
            }
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let lines = fogkit::run(n, |bf| -> fogkit::Result<String> {
        let (r, ls, ms, m) = (
            bf.rank(),
            bf.local_size(),
            bf.machine_size(),
            bf.machine_rank(),
        );
        // Every rank's vector, known to all: the dense definition needs them.
        let x: Vec<Vec<f64>> = (0..n)
            .map(|s| (0..LEN).map(|k| value(s, k)).collect())
            .collect();

        // Static: average within the machine, then mix machines with W's row of this one.
        let w = bf.machine_topology().matrix();
        let avg = machine_averages(&x, ls);
        let want: Vec<f64> = (0..LEN)
            .map(|k| (0..ms).map(|s| w[m][s] * avg[s][k]).sum())
            .collect();
        let got = bf.hierarchical_neighbor_allreduce(&x[r])?;
        let gap = largest_gap(&got, &want);
        assert!(gap < 1e-12, "rank {r}: static hierarchical op off by {gap}");

        // Dynamic: machines follow the one-peer schedule of exponential-two over machines.
        let schedule = OnePeerSchedule::new(&topology::exponential_two(ms));
        let mut mine = x[r].clone();
        let mut dense = avg;
        for step in 0..3 {
            let peers = schedule.at(m, step);
            mine = bf.hierarchical_neighbor_allreduce_with(
                &mine,
                &NeighborWeights::from_one_peer(&peers),
            )?;
            dense = (0..ms)
                .map(|t| {
                    let (self_w, srcs) = schedule.at(t, step).uniform_weights();
                    (0..LEN)
                        .map(|k| {
                            self_w * dense[t][k]
                                + srcs.iter().map(|&(s, w)| w * dense[s][k]).sum::<f64>()
                        })
                        .collect()
                })
                .collect();
        }
        let gap = largest_gap(&mine, &dense[m]);
        assert!(
            gap < 1e-12,
            "rank {r}: dynamic hierarchical op off by {gap}"
        );
        if forever {
            use std::io::Write;
            println!("rank {r} looping");
            let _ = std::io::stdout().flush();
            bf.set_topology(topology::exponential_two(n))?;
            let mut y = vec![1.0f32; 1 << 16];
            loop {
                y = bf.neighbor_allreduce(&y)?;
                bf.allreduce(&y[..8])?;
            }
        }
        Ok(format!(
            "rank {r} on {host}: local {} of {ls}, machine {m} of {ms}; hierarchical ok",
            bf.local_rank()
        ))
    })?;
    for (_, line) in lines.iter() {
        println!("{line}");
    }
    Ok(())
}
