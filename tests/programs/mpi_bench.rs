//! The MPI transport's benchmark: one `neighbor_allreduce` step next to, in the same run,
//! the same exchange done with plain MPI nonblocking send/receive and no arithmetic (the
//! raw cost of the traffic), next to allreduce of the same vector (fogkit's, bit-exact;
//! and MPI's own `MPI_Allreduce` for reference). f32 vectors; median of repetitions.
//!
//! Run: `target/release/fogrun -np 4 target/release/mpi_bench` (and `-np 8`), after
//! `cargo build --release -p fogkit --bin fogrun` and
//! `cargo build --release -p fogkit-tests --features mpi --bin mpi_bench`.

use std::time::{Duration, Instant};

use fogkit::prelude::*;
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

fn median(
    bf: &Fog,
    reps: usize,
    mut step: impl FnMut() -> fogkit::Result<()>,
) -> fogkit::Result<Duration> {
    step()?; // warm up
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        bf.barrier()?;
        let t0 = Instant::now();
        step()?;
        bf.barrier()?;
        t.push(t0.elapsed());
    }
    t.sort();
    Ok(t[t.len() / 2])
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn main() {
    fogkit::timeline::init_logging();
    let Some(n) = fogkit::launched_size() else {
        eprintln!("mpi_bench: expected to be started by mpirun, e.g. `fogrun -np 4 mpi_bench`");
        std::process::exit(2);
    };
    let quick = std::env::args().any(|a| a == "--quick");
    let res = fogkit::run(n, |bf| -> fogkit::Result<()> {
        let world = SimpleCommunicator::world();
        let (me, topo) = (bf.rank(), topology::exponential_two(n));
        bf.set_topology(topo.clone())?;
        let (ins, outs) = (topo.in_neighbors(me), topo.out_neighbors(me));
        if me == 0 {
            println!(
                "{}, {n} processes on one machine, f32, times in ms (median)",
                bf.transport_description()
            );
            println!(
                "{:>10} {:>9} {:>9} {:>7} {:>10} {:>10} {:>10}",
                "elements",
                "raw exp2",
                "nar exp2",
                "ratio",
                "nar 1-peer",
                "allreduce",
                "MPI_Allred"
            );
        }
        for len in [1_000usize, 1_000_000, 25_500_000] {
            let reps = match (len, quick) {
                (1_000, _) => 500,
                (1_000_000, _) => 30,
                (_, false) => 7,
                (_, true) => 3,
            };
            let x: Vec<f32> = (0..len).map(|i| (i % 977) as f32 + me as f32).collect();
            let mut out = vec![0.0f32; len];
            let mut bufs: Vec<Vec<f32>> = ins.iter().map(|_| vec![0.0f32; len]).collect();

            let raw = median(bf, reps, || {
                mpi::request::scope(|scope| {
                    let mut reqs = Vec::new();
                    for (b, &s) in bufs.iter_mut().zip(&ins) {
                        reqs.push(
                            world
                                .process_at_rank(s as i32)
                                .immediate_receive_into(scope, &mut b[..]),
                        );
                    }
                    let sends: Vec<_> = outs
                        .iter()
                        .map(|&d| {
                            world
                                .process_at_rank(d as i32)
                                .immediate_send(scope, &x[..])
                        })
                        .collect();
                    for r in reqs {
                        r.wait();
                    }
                    for s in sends {
                        s.wait();
                    }
                });
                Ok(())
            })?;
            let nar = median(bf, reps, || bf.neighbor_allreduce_into(&x, &mut out))?;
            let mut k = 0;
            let one_peer = median(bf, reps, || {
                k += 1;
                let p = topology::one_peer_exponential_two(n, me, k);
                bf.neighbor_allreduce_with_into(&x, &mut out, &NeighborWeights::from_one_peer(&p))
            })?;
            let ar = median(bf, reps, || bf.allreduce_into(&x, &mut out, ReduceOp::Sum))?;
            let mpi_ar = median(bf, reps, || {
                world.all_reduce_into(&x[..], &mut out[..], SystemOperation::sum());
                Ok(())
            })?;
            if me == 0 {
                println!(
                    "{:>10} {:>9} {:>9} {:>7.3} {:>10} {:>10} {:>10}",
                    len,
                    ms(raw),
                    ms(nar),
                    raw.as_secs_f64() / nar.as_secs_f64(),
                    ms(one_peer),
                    ms(ar),
                    ms(mpi_ar)
                );
            }
        }
        if me == 0 {
            println!(
                "ratio = raw exchange time / neighbor_allreduce time (1 = arithmetic for free)"
            );
        }
        Ok(())
    });
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
