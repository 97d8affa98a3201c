//! Window scenarios shared by the in-process and mpirun tests: every op's result against
//! values computed here by hand from the topology's weights (not by the window code), the
//! exact bits of every result (to compare transports), a stress loop with random delays
//! that checks conservation at every round, and asynchronous push-sum with a slow rank.

use std::time::{Duration, Instant};

use fogkit::prelude::*;

use crate::{digest, value};

/// The topologies every window case runs over: undirected ring, exponential-2 (directed)
/// and a one-way ring (directed, one in- and one out-neighbour).
pub fn window_topologies(n: usize) -> Vec<(&'static str, Topology)> {
    vec![
        ("ring", topology::ring(n)),
        ("exp2", topology::exponential_two(n)),
        (
            "ring-right",
            topology::ring_directed(n, topology::RingStyle::Right),
        ),
    ]
}

fn fail(what: &str, rank: usize, expected: &[f64], found: &[f64]) -> fogkit::Error {
    fogkit::Error::InvalidArgument(format!(
        "rank {rank}: {what}: expected {expected:?}, found {found:?}"
    ))
}

/// `found` equals `expected` to 1e-12 relative, or an error naming `what`.
fn check(what: &str, rank: usize, expected: &[f64], found: &[f64]) -> fogkit::Result<()> {
    let close = expected.len() == found.len()
        && expected
            .iter()
            .zip(found)
            .all(|(e, f)| (e - f).abs() <= 1e-12 * (1.0 + e.abs()));
    if close {
        Ok(())
    } else {
        Err(fail(what, rank, expected, found))
    }
}

fn x_of(r: usize, len: usize) -> Vec<f64> {
    (0..len).map(|k| value(r, k)).collect()
}

/// Every window op over every topology of [`window_topologies`], each result checked
/// against its hand-computed value; returns the bits of every result.
pub fn window_cases(bf: &Fog) -> fogkit::Result<Vec<u64>> {
    let (n, me) = (bf.size(), bf.rank());
    let len = 5;
    let mut bits = Vec::new();
    for (name, topo) in window_topologies(n) {
        bf.set_topology(topo.clone())?;
        let srcs = topo.in_neighbors(me);
        let x: Vec<Vec<f64>> = (0..n).map(|r| x_of(r, len)).collect();
        let win = bf.win_create(name, &x[me], true)?;
        let what = |op: &str| format!("{name}, n = {n}: {op}");

        // put: each slot holds its in-neighbour's x, version 1.
        win.neighbor_win_put(&x[me])?;
        bf.barrier()?;
        for (j, got) in win.neighbor_values()? {
            check(&what(&format!("put, slot of {j}")), me, &x[j], &got)?;
        }
        if win.get_win_version()?.iter().any(|&(_, v)| v != 1) {
            return Err(fogkit::Error::InvalidArgument(format!(
                "rank {me}: {}: expected every version 1, found {:?}",
                what("put"),
                win.get_win_version()?
            )));
        }

        // update with the topology's weights: sum_j w_ij x_j (self included).
        let mut expect = vec![0.0; len];
        for (j, xj) in x.iter().enumerate() {
            for (e, &v) in expect.iter_mut().zip(xj) {
                *e += topo.weight(me, j) * v;
            }
        }
        let u = win.win_update()?;
        check(&what("win_update"), me, &expect, &u)?;
        check(&what("value after win_update"), me, &expect, &win.value()?)?;
        bits.extend(u.iter().map(|v| v.to_bits()));
        if win.get_win_version()?.iter().any(|&(_, v)| v != 0) {
            return Err(fogkit::Error::InvalidArgument(format!(
                "rank {me}: {}: expected versions 0 after win_update",
                what("win_update")
            )));
        }
        bf.barrier()?;

        // accumulate twice (self weight 1/2, destinations 1/4) onto the put slots.
        let dsts: Vec<(usize, f64)> = topo.out_neighbors(me).iter().map(|&j| (j, 0.25)).collect();
        win.neighbor_win_accumulate_with(&x[me], 0.5, &dsts)?;
        win.neighbor_win_accumulate_with(&x[me], 0.5, &dsts)?;
        bf.barrier()?;
        for (j, got) in win.neighbor_values()? {
            let e: Vec<f64> = x[j].iter().map(|v| 1.5 * v).collect();
            check(&what(&format!("accumulate, slot of {j}")), me, &e, &got)?;
        }
        // collect: own 1/2 x plus every slot; p = 1/4 + 1.375 per slot.
        let mut e = x[me].iter().map(|v| 0.5 * v).collect::<Vec<_>>();
        for &j in &srcs {
            for (a, &v) in e.iter_mut().zip(&x[j]) {
                *a += 1.5 * v;
            }
        }
        let c = win.win_update_then_collect()?;
        check(&what("win_update_then_collect"), me, &e, &c)?;
        let p = win.associated_p()?;
        let ep = 0.25 + 1.375 * srcs.len() as f64;
        check(&what("associated p"), me, &[ep], &[p])?;
        for (j, got) in win.neighbor_values()? {
            check(
                &what(&format!("slot of {j} after collect")),
                me,
                &[0.0; 5],
                &got,
            )?;
        }
        bits.extend(c.iter().map(|v| v.to_bits()));
        bits.push(p.to_bits());
        bf.barrier()?;

        // get with weight 1/2: each slot holds half its in-neighbour's collected tensor.
        let collected: Vec<Vec<f64>> = (0..n)
            .map(|r| {
                let s = topo.in_neighbors(r);
                let mut e: Vec<f64> = x[r].iter().map(|v| 0.5 * v).collect();
                for &j in &s {
                    for (a, &v) in e.iter_mut().zip(&x[j]) {
                        *a += 1.5 * v;
                    }
                }
                e
            })
            .collect();
        let half: Vec<(usize, f64)> = srcs.iter().map(|&j| (j, 0.5)).collect();
        win.neighbor_win_get_with(&half)?;
        for (j, got) in win.neighbor_values()? {
            let e: Vec<f64> = collected[j].iter().map(|v| 0.5 * v).collect();
            check(&what(&format!("get, slot of {j}")), me, &e, &got)?;
        }
        // Every rank has read its neighbours' tensors before any changes its own.
        bf.barrier()?;
        let ones: Vec<(usize, f64)> = srcs.iter().map(|&j| (j, 1.0)).collect();
        let g = win.win_update_with(0.0, &ones, false)?;
        let mut e = vec![0.0; len];
        for &j in &srcs {
            for (a, &v) in e.iter_mut().zip(&collected[j]) {
                *a += 0.5 * v;
            }
        }
        check(&what("win_update after get"), me, &e, &g)?;
        bits.extend(g.iter().map(|v| v.to_bits()));
        bf.barrier()?;
        win.win_free()?;

        // Nonblocking forms: put, accumulate and get on the communication thread.
        let nb = bf.win_create("nb", &x[me], true)?;
        let half: Vec<(usize, f64)> = topo.out_neighbors(me).iter().map(|&j| (j, 0.5)).collect();
        nb.neighbor_win_put_nonblocking_with(&x[me], 1.0, &half)?
            .wait()?;
        bf.barrier()?;
        for (j, got) in nb.neighbor_values()? {
            let e: Vec<f64> = x[j].iter().map(|v| 0.5 * v).collect();
            check(
                &what(&format!("put_nonblocking, slot of {j}")),
                me,
                &e,
                &got,
            )?;
        }
        bf.barrier()?;
        let h = nb.neighbor_win_accumulate_nonblocking_with(&x[me], 1.0, &half)?;
        while !h.poll() {
            std::thread::yield_now();
        }
        h.wait()?;
        bf.barrier()?;
        for (j, got) in nb.neighbor_values()? {
            check(
                &what(&format!("accumulate_nonblocking, slot of {j}")),
                me,
                &x[j],
                &got,
            )?;
            bits.extend(got.iter().map(|v| v.to_bits()));
        }
        let twice: Vec<(usize, f64)> = srcs.iter().map(|&j| (j, 2.0)).collect();
        nb.neighbor_win_get_nonblocking_with(&twice)?.wait()?;
        for (j, got) in nb.neighbor_values()? {
            let e: Vec<f64> = x[j].iter().map(|v| 2.0 * v).collect();
            check(
                &what(&format!("get_nonblocking, slot of {j}")),
                me,
                &e,
                &got,
            )?;
        }
        if nb.get_win_version()?.iter().any(|&(_, v)| v != 3) {
            return Err(fogkit::Error::InvalidArgument(format!(
                "rank {me}: {}: expected versions 3 after put, accumulate and get, found {:?}",
                what("nonblocking"),
                nb.get_win_version()?
            )));
        }
        bf.barrier()?;
        nb.win_free()?;

        // f32, slots starting as copies of x: an update with the default weights keeps x.
        let x32: Vec<f32> = x[me].iter().map(|&v| v as f32).collect();
        let w32 = bf.win_create(name, &x32, false)?;
        let u32 = w32.win_update()?;
        let sum: f64 = topo.row(me).iter().sum();
        let e: Vec<f64> = x32.iter().map(|&v| v as f64 * sum).collect();
        let got: Vec<f64> = u32.iter().map(|&v| v as f64).collect();
        let close = e
            .iter()
            .zip(&got)
            .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + a.abs()));
        if !close {
            return Err(fail(&what("f32 update of copies"), me, &e, &got));
        }
        bits.extend(u32.iter().map(|v| v.to_bits() as u64));
        bf.barrier()?;
        w32.win_free()?;
    }
    Ok(bits)
}

/// The line a rank reports for [`window_cases`]: `rank R digest HEX count C`.
pub fn window_line(bf: &Fog) -> fogkit::Result<String> {
    let bits = window_cases(bf)?;
    Ok(format!(
        "rank {} digest {:016x} count {}",
        bf.rank(),
        digest(&bits),
        bits.len()
    ))
}

/// A small deterministic generator (splitmix64) for delays and choices.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Stress: `rounds` rounds in which every rank, at its own pace (random delays of up to
/// 200 µs), pushes shares of its tensor into its out-neighbours' slots and collects its
/// own, many times, all ranks at once; after each round every rank checks that the total
/// (tensors plus slots, and p) over all ranks is what it was at the start, to rounding.
/// Returns the largest relative drift seen.
pub fn window_stress(bf: &Fog, rounds: usize, ops: usize, seed: u64) -> fogkit::Result<f64> {
    let (n, me) = (bf.size(), bf.rank());
    let topo = topology::exponential_two(n);
    bf.set_topology(topo.clone())?;
    let x = x_of(me, 64);
    let total: Vec<f64> = bf.allreduce_op(&x, ReduceOp::Sum)?;
    let win = bf.win_create("stress", &x, true)?;
    let dsts = topo.out_neighbors(me);
    let mut rng = seed ^ (me as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1);
    let mut worst: f64 = 0.0;
    for round in 0..rounds {
        for _ in 0..ops {
            let pause = next(&mut rng) % 200;
            std::thread::sleep(Duration::from_micros(pause));
            if next(&mut rng).is_multiple_of(3) {
                win.win_update_then_collect()?;
            } else {
                let w = 1.0 / (dsts.len() + 1) as f64;
                let d: Vec<(usize, f64)> = dsts.iter().map(|&j| (j, w)).collect();
                let v = win.value()?;
                win.neighbor_win_accumulate_with(&v, w, &d)?;
            }
        }
        bf.barrier()?;
        // Quiet: every op of the round has finished; a collect gathers all of this
        // rank's share (tensor and slots, and their p) into the tensor, conserving both.
        let mine = win.win_update_then_collect()?;
        let p = win.associated_p()?;
        let sum = bf.allreduce_op(&mine, ReduceOp::Sum)?;
        let psum = bf.allreduce_op(&[p], ReduceOp::Sum)?[0];
        for (a, b) in sum.iter().zip(&total) {
            worst = worst.max((a - b).abs() / b.abs().max(1.0));
        }
        worst = worst.max((psum - n as f64).abs() / n as f64);
        if worst > 1e-12 {
            return Err(fogkit::Error::InvalidArgument(format!(
                "rank {me}: after stress round {round}, the total over ranks drifted by {worst:e} \
                 (tensor sum {:?} against {:?}, p sum {psum} against {n})",
                &sum[..2],
                &total[..2]
            )));
        }
        bf.barrier()?;
    }
    win.win_free()?;
    Ok(worst)
}

/// What an asynchronous push-sum run reports on each rank.
#[derive(Clone, Debug)]
pub struct AsyncRun {
    /// `max_k |x_k / p - mean_k|` at the end.
    pub error: f64,
    /// Iterations this rank ran.
    pub iterations: usize,
    /// Seconds this rank ran, final collect included.
    pub seconds: f64,
}

/// Asynchronous push-sum over the window of the exponential-2 graph: every rank, at its
/// own pace (`compute` per iteration, `slow_factor` times longer on `slow_rank`), collects
/// what arrived in its slots and adds shares of the result into its out-neighbours'; no
/// rank waits for another. Each rank iterates for `duration`; then, all ranks quiet, one
/// last collect, and the error of `x / p` against the mean.
pub fn async_push_sum(
    bf: &Fog,
    duration: Duration,
    compute: Duration,
    slow_rank: usize,
    slow_factor: u32,
) -> fogkit::Result<AsyncRun> {
    let (n, me) = (bf.size(), bf.rank());
    let topo = topology::exponential_two(n);
    bf.set_topology(topo.clone())?;
    let x = x_of(me, 8);
    let mean: Vec<f64> = bf
        .allreduce_op(&x, ReduceOp::Sum)?
        .iter()
        .map(|v| v / n as f64)
        .collect();
    let win = bf.win_create("push_sum", &x, true)?;
    let dsts = topo.out_neighbors(me);
    let w = 1.0 / (dsts.len() + 1) as f64;
    let d: Vec<(usize, f64)> = dsts.iter().map(|&j| (j, w)).collect();
    let pace = if me == slow_rank {
        compute * slow_factor
    } else {
        compute
    };
    bf.barrier()?;
    let start = Instant::now();
    let mut iterations = 0;
    while start.elapsed() < duration {
        std::thread::sleep(pace);
        let v = win.win_update_then_collect()?;
        win.neighbor_win_accumulate_with(&v, w, &d)?;
        iterations += 1;
    }
    bf.barrier()?;
    let v = win.win_update_then_collect()?;
    let p = win.associated_p()?;
    let error = v
        .iter()
        .zip(&mean)
        .map(|(a, m)| (a / p - m).abs())
        .fold(0.0, f64::max);
    bf.barrier()?;
    win.win_free()?;
    Ok(AsyncRun {
        error,
        iterations,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// One large window (BlueFog's windows deadlocked or crashed on large tensors): `len`
/// f32 per rank over the ring, a put to both neighbours and an update, every element
/// checked. Returns the seconds the put took.
pub fn window_large(bf: &Fog, len: usize) -> fogkit::Result<f64> {
    let (n, me) = (bf.size(), bf.rank());
    let topo = topology::ring(n);
    bf.set_topology(topo.clone())?;
    let x: Vec<f32> = (0..len).map(|k| (me * 7 + k % 1000) as f32).collect();
    let win = bf.win_create("large", &x, true)?;
    bf.barrier()?;
    let start = Instant::now();
    win.neighbor_win_put(&x)?;
    let put = start.elapsed().as_secs_f64();
    bf.barrier()?;
    let y = win.win_update_with(
        1.0,
        &win.in_neighbor_ranks()
            .iter()
            .map(|&j| (j, 1.0))
            .collect::<Vec<_>>(),
        true,
    )?;
    for (k, &v) in y.iter().enumerate() {
        let e: f32 = (0..n)
            .filter(|&j| j == me || topo.weight(me, j) != 0.0)
            .map(|j| (j * 7 + k % 1000) as f32)
            .sum();
        if v != e {
            return Err(fogkit::Error::InvalidArgument(format!(
                "rank {me}: large window, element {k}: expected {e}, found {v}"
            )));
        }
    }
    bf.barrier()?;
    win.win_free()?;
    Ok(put)
}
