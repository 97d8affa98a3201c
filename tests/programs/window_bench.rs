//! Windows against their synchronous peers, one table per question, peers in the same run:
//! 1. time to consensus 1e-6 with one rank 5x slower (it sleeps 5 ms per iteration, the
//!    others 1 ms): asynchronous push-sum over windows (nobody waits) against synchronous
//!    averaging (`neighbor_allreduce`, everyone waits for the slow rank every iteration),
//!    over the exponential-2 graph and over the ring;
//! 2. one `neighbor_win_put` of 2.55e7 f32 to 2 neighbours (a ring of 3) against the raw
//!    exchange of the same bytes (`neighbor_allgather`, which only copies).
//!
//! ```text
//! window_bench [--ranks 8] [--rounds 3]          # in-process ranks
//! fogrun -np 8 window_bench                      # MPI, one rank per process
//! ```
//! A rank's consensus time is when its error `max_k |x_k - mean_k|` (push-sum: `x / p`)
//! fell below 1e-6 for good; the job's is the largest over ranks. Means over `--rounds`,
//! with min and max.

use std::time::{Duration, Instant};

use clap::{Arg, Command as Cli};
use fogkit::prelude::*;

const TOL: f64 = 1e-6;
const FAST: Duration = Duration::from_millis(1);
const SLOW: Duration = Duration::from_millis(5);

fn x_of(r: usize) -> Vec<f64> {
    (0..16).map(|k| fogkit_tests::value(r, k)).collect()
}

fn error(v: &[f64], p: f64, mean: &[f64]) -> f64 {
    v.iter()
        .zip(mean)
        .map(|(a, m)| (a / p - m).abs())
        .fold(0.0, f64::max)
}

/// When every rank's error fell below [`TOL`] for good, from all ranks' records
/// `(seconds, error)`; `None` if some rank never got there.
fn consensus_time(bf: &Fog, record: &[(f64, f64)]) -> fogkit::Result<Option<f64>> {
    let flat: Vec<f64> = record.iter().flat_map(|&(t, e)| [t, e]).collect();
    let all = bf.allgather(&flat)?;
    let mut worst: f64 = 0.0;
    for r in all {
        let pairs: Vec<(f64, f64)> = r.chunks(2).map(|c| (c[0], c[1])).collect();
        match pairs.iter().rposition(|&(_, e)| e >= TOL) {
            Some(i) if i + 1 == pairs.len() => return Ok(None),
            Some(i) => worst = worst.max(pairs[i + 1].0),
            None => worst = worst.max(pairs.first().map_or(0.0, |p| p.0)),
        }
    }
    Ok(Some(worst))
}

fn pace(bf: &Fog) -> Duration {
    if bf.rank() == 1 {
        SLOW
    } else {
        FAST
    }
}

fn synchronous(bf: &Fog, topo: &Topology, iterations: usize) -> fogkit::Result<Option<f64>> {
    bf.set_topology(topo.clone())?;
    let mut x = x_of(bf.rank());
    let mean: Vec<f64> = bf.allreduce(&x)?;
    let mut record = Vec::with_capacity(iterations);
    bf.barrier()?;
    let start = Instant::now();
    for _ in 0..iterations {
        std::thread::sleep(pace(bf));
        x = bf.neighbor_allreduce(&x)?;
        record.push((start.elapsed().as_secs_f64(), error(&x, 1.0, &mean)));
    }
    consensus_time(bf, &record)
}

fn asynchronous(bf: &Fog, topo: &Topology, run_for: Duration) -> fogkit::Result<Option<f64>> {
    bf.set_topology(topo.clone())?;
    let mut x = x_of(bf.rank());
    let mean: Vec<f64> = bf.allreduce(&x)?;
    let win = bf.win_create("bench_push_sum", &x, true)?;
    let dsts = topo.out_neighbors(bf.rank());
    let w = 1.0 / (dsts.len() + 1) as f64;
    let d: Vec<(usize, f64)> = dsts.iter().map(|&j| (j, w)).collect();
    let mut record = Vec::new();
    bf.barrier()?;
    let start = Instant::now();
    while start.elapsed() < run_for {
        std::thread::sleep(pace(bf));
        // Take in what arrived, then push shares of the result: what leaves is fresh.
        x = win.win_update_then_collect()?;
        let p = win.associated_p()?;
        win.neighbor_win_accumulate_with(&x, w, &d)?;
        record.push((start.elapsed().as_secs_f64(), error(&x, p, &mean)));
    }
    bf.barrier()?;
    win.win_free()?;
    consensus_time(bf, &record)
}

fn put_against_exchange(bf: &Fog, len: usize) -> fogkit::Result<(f64, f64)> {
    bf.set_topology(topology::ring(bf.size()))?;
    let x: Vec<f32> = (0..len).map(|k| (k % 977) as f32).collect();
    let win = bf.win_create("bench_put", &x, true)?;
    win.neighbor_win_put(&x)?; // warm: the region's pages are mapped
    bf.barrier()?;
    let t = Instant::now();
    win.neighbor_win_put(&x)?;
    let put = t.elapsed().as_secs_f64();
    bf.barrier()?;
    win.win_free()?;
    bf.barrier()?;
    drop(bf.neighbor_allgather(&x)?); // warm alike
    bf.barrier()?;
    let t = Instant::now();
    let got = bf.neighbor_allgather(&x)?;
    let exchange = t.elapsed().as_secs_f64();
    drop(got);
    // The slowest rank's time is the op's.
    let put = bf.allreduce_op(&[put], ReduceOp::Max)?[0];
    let exchange = bf.allreduce_op(&[exchange], ReduceOp::Max)?[0];
    Ok((put, exchange))
}

fn stats(v: &[f64]) -> String {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(0.0, f64::max);
    format!(
        "{:>9.1} ms  ({:.1}..{:.1})",
        mean * 1e3,
        min * 1e3,
        max * 1e3
    )
}

fn main() {
    let m = Cli::new("window_bench")
        .about("Windows against synchronous peers: asynchronous push-sum with a slow rank, and a large put")
        .arg(Arg::new("ranks").long("ranks").value_parser(clap::value_parser!(u64).range(3..)).help("Ranks [default: 8, or under fogrun the processes]"))
        .arg(Arg::new("rounds").long("rounds").value_parser(clap::value_parser!(u64).range(1..)).default_value("3"))
        .get_matches();
    let n = m
        .get_one::<u64>("ranks")
        .map(|&v| v as usize)
        .or_else(fogkit::launched_size)
        .unwrap_or(8);
    let rounds = m.get_one::<u64>("rounds").copied().unwrap_or(3) as usize;
    let res = fogkit::run(n, |bf| -> fogkit::Result<Option<String>> {
        let graphs = [
            ("exponential-2", topology::exponential_two(n), 120, 600),
            ("ring", topology::ring(n), 400, 1500),
        ];
        let mut rows = String::new();
        for (name, topo, iterations, ms) in graphs {
            let (mut s, mut a) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                let missing = || {
                    fogkit::Error::InvalidArgument(format!(
                        "consensus 1e-6 not reached over the {name} graph: run longer"
                    ))
                };
                s.push(synchronous(bf, &topo, iterations)?.ok_or_else(missing)?);
                a.push(asynchronous(bf, &topo, Duration::from_millis(ms))?.ok_or_else(missing)?);
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            rows += &format!(
                "| {name:<13} | {} | {} | {:>5.2}x |\n",
                stats(&s),
                stats(&a),
                mean(&s) / mean(&a)
            );
        }
        let (mut put, mut ex) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (p, e) = put_against_exchange(bf, 25_500_000)?;
            put.push(p);
            ex.push(e);
        }
        if bf.rank() != 0 {
            return Ok(None);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        Ok(Some(format!(
            "window_bench: {n} ranks, transport {}, {rounds} rounds\n\n\
             Time to consensus 1e-6; rank 1 sleeps 5 ms per iteration, the others 1 ms\n\
             | graph         | synchronous (neighbor_allreduce) | asynchronous push-sum (windows) | speed-up |\n\
             |---------------|----------------------------------|---------------------------------|----------|\n\
             {rows}\n\
             One put of 2.55e7 f32 (102 MB) to 2 neighbours (ring of {n}), after one warm-up each\n\
             | op                                      | time                       |\n\
             |-----------------------------------------|----------------------------|\n\
             | neighbor_win_put                        | {} |\n\
             | neighbor_allgather (same bytes, copies) | {} |\n\
             | put / exchange                          | {:.2}                      |",
            bf.transport_name(),
            stats(&put),
            stats(&ex),
            mean(&put) / mean(&ex),
        )))
    });
    match res {
        Ok(out) => {
            for (_, line) in out.iter() {
                if let Some(l) = line {
                    println!("{l}");
                }
            }
        }
        Err(e) => {
            eprintln!("window_bench: {e}");
            std::process::exit(1);
        }
    }
}
