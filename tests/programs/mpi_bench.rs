//! The MPI transport's benchmark: one `neighbor_allreduce` step next to, in the same run,
//! the same exchange done with plain MPI nonblocking send/receive and no arithmetic (the
//! raw cost of the traffic), next to allreduce of the same vector (fogkit's, bit-exact;
//! and MPI's own `MPI_Allreduce` for reference). f32 vectors; median of repetitions.
//!
//! Run: `target/release/fogrun -np 4 target/release/mpi_bench` (and `-np 8`), after
//! `cargo build --release -p fogkit --bin fogrun` and
//! `cargo build --release -p fogkit-tests --features mpi --bin mpi_bench`.
//!
//! With `--ops LEN` it prints instead one row per op on LEN f32 (`neighbor_allreduce` on
//! static exp2 and on the one-peer dynamic exponential graph, the hierarchical op, and
//! allreduce), each next to the raw exchange of the same messages between the same ranks
//! (plain MPI, no arithmetic): the several-hosts benchmark (`hosts_bench`) runs that.

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

/// Plain MPI: every `(peer, data)` of `sends` goes out, every `(peer, buffer)` of `recvs`
/// comes in; returns once all have completed.
fn exchange(
    world: &SimpleCommunicator,
    sends: &[(usize, &[f32])],
    recvs: &mut [(usize, Vec<f32>)],
) -> fogkit::Result<()> {
    mpi::request::scope(|scope| {
        let mut reqs = Vec::new();
        for (s, b) in recvs.iter_mut() {
            reqs.push(
                world
                    .process_at_rank(*s as i32)
                    .immediate_receive_into(scope, &mut b[..]),
            );
        }
        let sent: Vec<_> = sends
            .iter()
            .map(|&(d, x)| world.process_at_rank(d as i32).immediate_send(scope, x))
            .collect();
        for r in reqs {
            r.wait();
        }
        for s in sent {
            s.wait();
        }
    });
    Ok(())
}

/// Receive buffers of `len` for each of `peers`.
fn buffers(peers: &[usize], len: usize) -> Vec<(usize, Vec<f32>)> {
    peers.iter().map(|&p| (p, vec![0.0f32; len])).collect()
}

/// The `--ops LEN` table: each op against the raw exchange of its messages.
fn ops_table(bf: &Fog, world: &SimpleCommunicator, len: usize, reps: usize) -> fogkit::Result<()> {
    let (n, me) = (bf.size(), bf.rank());
    let x: Vec<f32> = (0..len).map(|i| (i % 977) as f32 + me as f32).collect();
    let mut out = vec![0.0f32; len];
    let mut rows: Vec<(String, Duration, Duration)> = Vec::new();

    let topo = topology::exponential_two(n);
    bf.set_topology(topo.clone())?;
    let (ins, outs) = (topo.in_neighbors(me), topo.out_neighbors(me));
    let mut bufs = buffers(&ins, len);
    let sends: Vec<(usize, &[f32])> = outs.iter().map(|&d| (d, &x[..])).collect();
    let raw = median(bf, reps, || exchange(world, &sends, &mut bufs))?;
    let op = median(bf, reps, || bf.neighbor_allreduce_into(&x, &mut out))?;
    rows.push(("neighbor_allreduce, static exp2".into(), raw, op));

    let (mut k, mut kr) = (0, 0);
    // Receive buffers made once, as fogkit's pool does: the timing is of the traffic.
    let mut spare: Vec<Vec<f32>> = Vec::new();
    let raw = median(bf, reps, || {
        kr += 1;
        let p = topology::one_peer_exponential_two(n, me, kr);
        let sends: Vec<(usize, &[f32])> = p.send_to.iter().map(|&d| (d, &x[..])).collect();
        while spare.len() < p.recv_from.len() {
            spare.push(vec![0.0f32; len]);
        }
        let mut bufs: Vec<(usize, Vec<f32>)> = p
            .recv_from
            .iter()
            .map(|&s| (s, spare.pop().unwrap_or_default()))
            .collect();
        let done = exchange(world, &sends, &mut bufs);
        spare.extend(bufs.into_iter().map(|(_, b)| b));
        done
    })?;
    let op = median(bf, reps, || {
        k += 1;
        let p = topology::one_peer_exponential_two(n, me, k);
        bf.neighbor_allreduce_with_into(&x, &mut out, &NeighborWeights::from_one_peer(&p))
    })?;
    rows.push(("neighbor_allreduce, one-peer dynamic exp2".into(), raw, op));

    let (ls, ms_, m) = (bf.local_size(), bf.machine_size(), bf.machine_rank());
    if ms_ > 1 {
        // Within the machine every rank sends its vector to every other; then local rank
        // k of each machine exchanges with local rank k of the neighbour machines.
        let local: Vec<usize> = (m * ls..(m + 1) * ls).filter(|&r| r != me).collect();
        let mt = bf.machine_topology();
        let to_rank = |mach: usize| mach * ls + bf.local_rank();
        let m_in: Vec<usize> = mt.in_neighbors(m).into_iter().map(to_rank).collect();
        let m_out: Vec<usize> = mt.out_neighbors(m).into_iter().map(to_rank).collect();
        let l_sends: Vec<(usize, &[f32])> = local.iter().map(|&d| (d, &x[..])).collect();
        let m_sends: Vec<(usize, &[f32])> = m_out.iter().map(|&d| (d, &x[..])).collect();
        let (mut lb, mut mb) = (buffers(&local, len), buffers(&m_in, len));
        let raw = median(bf, reps, || {
            exchange(world, &l_sends, &mut lb)?;
            exchange(world, &m_sends, &mut mb)
        })?;
        let op = median(bf, reps, || {
            bf.hierarchical_neighbor_allreduce(&x).map(|_| ())
        })?;
        rows.push((
            format!("hierarchical_neighbor_allreduce, {ms_} x {ls}"),
            raw,
            op,
        ));
    }

    // fogkit's allreduce: chunk r of every vector to rank r, then rank r's reduced chunk
    // to every rank.
    let peers: Vec<usize> = (0..n).filter(|&r| r != me).collect();
    let chunk = len / n;
    let sends: Vec<(usize, &[f32])> = peers
        .iter()
        .map(|&p| (p, &x[p * chunk..(p + 1) * chunk]))
        .collect();
    let mine: Vec<(usize, &[f32])> = peers
        .iter()
        .map(|&p| (p, &x[me * chunk..(me + 1) * chunk]))
        .collect();
    let mut bufs = buffers(&peers, chunk);
    let raw = median(bf, reps, || {
        exchange(world, &sends, &mut bufs)?;
        exchange(world, &mine, &mut bufs)
    })?;
    let op = median(bf, reps, || bf.allreduce_into(&x, &mut out, ReduceOp::Sum))?;
    rows.push(("allreduce".into(), raw, op));

    if me == 0 {
        println!(
            "{}; {n} ranks on {} machine(s) of {ls}; {len} f32; median of {reps}, ms",
            bf.transport_description(),
            ms_
        );
        println!("| op | raw exchange | fogkit | raw / fogkit |");
        println!("|---|---:|---:|---:|");
        for (name, raw, op) in rows {
            println!(
                "| {name} | {} | {} | {:.2} |",
                ms(raw),
                ms(op),
                raw.as_secs_f64() / op.as_secs_f64()
            );
        }
    }
    Ok(())
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
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let ops = args
        .iter()
        .position(|a| a == "--ops")
        .map(|i| args.get(i + 1).and_then(|v| v.parse::<usize>().ok()));
    if ops == Some(None) {
        eprintln!("mpi_bench: --ops expects a vector length, e.g. --ops 25500000");
        std::process::exit(2);
    }
    let res = fogkit::run(n, |bf| -> fogkit::Result<()> {
        let world = SimpleCommunicator::world();
        if let Some(Some(len)) = ops {
            return ops_table(bf, &world, len, if quick { 3 } else { 7 });
        }
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
            let mut bufs = buffers(&ins, len);

            let sends: Vec<(usize, &[f32])> = outs.iter().map(|&d| (d, &x[..])).collect();
            let raw = median(bf, reps, || exchange(&world, &sends, &mut bufs))?;
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
