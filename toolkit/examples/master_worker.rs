//! Lock-free master-worker over windows (BlueFog's tutorial, section 6): an asynchronous
//! parameter server for least squares, against the synchronous one.
//!
//! Rank 0, the master, holds the parameters `x` in its window over the star graph; every
//! other rank, a worker, loops at its own pace: read `x` from the master
//! (`neighbor_win_get`), compute its gradient on its own data, add `-gamma g` into its
//! slot at the master (`neighbor_win_accumulate_with`). The master folds whatever has
//! arrived into `x` (`win_update_then_collect`) when it likes. Nobody waits for anybody and
//! no lock is held from one op to the next: a worker's gradient may be computed at an `x`
//! some updates old, yet no update is lost, because each worker adds only into its own slot
//! and the master takes each slot whole (every op is one exclusive access per region).
//! A count rides as the last entry of every update, so the master knows exactly how many
//! it folded in; the example asserts that it equals the workers' steps.
//!
//! The data are consistent (`b_i = A_i x*` on every worker), so stale gradients still lead
//! to `x*` itself. Worker 1 sleeps 5 ms per step and the others 1 ms: the synchronous
//! server (`allreduce` of the gradients every step) goes at worker 1's pace, the
//! asynchronous one at everyone's own. The asynchronous run lasts 800 ms and at least
//! [`MIN_STEPS`] steps of every worker (so a loaded machine makes it longer, not less
//! accurate). Times are measured, so they differ between runs; the counts and the
//! distances are asserted.
//!
//! Run: `cargo run --release -p fogkit --example master_worker` (4 in-process ranks,
//! `FOGKIT_RANKS` for more), or over MPI (a build with `--features mpi`):
//! `fogrun -np 4 target/release/examples/master_worker`.

use std::time::{Duration, Instant};

use fogkit::data::{LeastSquares, Rng};
use fogkit::prelude::*;

const DIM: usize = 5;
const ROWS: usize = 200;
/// The step of one worker's update is `STEP / workers`: a synchronous step (the sum of
/// every worker's gradient) is then `STEP` times their mean.
const STEP: f64 = 0.2;
const TOL: f64 = 1e-6;
const RUN_FOR: Duration = Duration::from_millis(800);
/// The fewest steps each worker takes, however long they take: enough for 1e-8 (about 90
/// would do, at three worker updates to one synchronous step).
const MIN_STEPS: f64 = 150.0;
const SYNC_STEPS: usize = 150;

/// The solution every worker's data agree on.
fn x_star() -> Vec<f64> {
    Rng::new(11).normals(DIM)
}

/// Worker `rank`'s `A_i` (standard normal, `ROWS x DIM`) and `b_i = A_i x*`.
fn data(rank: usize) -> fogkit::Result<LeastSquares> {
    let a = Rng::for_rank(12, rank).normals(ROWS * DIM);
    let xs = x_star();
    let b = a
        .chunks(DIM)
        .map(|row| row.iter().zip(&xs).map(|(a, x)| a * x).sum())
        .collect();
    LeastSquares::new(a, b, DIM)
}

fn distance(x: &[f64]) -> f64 {
    x.iter()
        .zip(x_star())
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt()
}

/// (seconds since the start, distance to x*) at each look.
type Record = Vec<(f64, f64)>;

fn pace(rank: usize) -> Duration {
    Duration::from_millis(if rank == 1 { 5 } else { 1 })
}

/// The first time in `record` after which the distance stayed below [`TOL`].
fn time_to_tol(record: &[(f64, f64)]) -> Option<f64> {
    match record.iter().rposition(|&(_, e)| e >= TOL) {
        Some(i) => record.get(i + 1).map(|r| r.0),
        None => record.first().map(|r| r.0),
    }
}

fn ms(t: Option<f64>) -> String {
    t.map_or("never".into(), |t| format!("{:.0} ms", t * 1e3))
}

/// The asynchronous server: returns the workers' steps (on rank 0) with the master's
/// final `x` and its record of (seconds, distance).
fn asynchronous(bf: &Fog) -> fogkit::Result<(Vec<f64>, Vec<f64>, Record)> {
    let me = bf.rank();
    // x, then the count of updates folded in.
    let win = bf.win_create("master_worker", &vec![0.0; DIM + 1], true)?;
    let gamma = STEP / (bf.size() - 1) as f64;
    let problem = data(me)?;
    let mut steps = 0.0;
    let mut record = Vec::new();
    // The master looks until every worker could have finished its minimum; what lands
    // after its last look is folded in after the barrier below.
    let workers = (bf.size() - 1) as f64;
    let mut folded = 0.0;
    bf.barrier()?;
    let start = Instant::now();
    while start.elapsed() < RUN_FOR || (if me == 0 { folded / workers } else { steps }) < MIN_STEPS
    {
        if me == 0 {
            std::thread::sleep(Duration::from_millis(1));
            let x = win.win_update_then_collect()?;
            folded = x[DIM];
            record.push((start.elapsed().as_secs_f64(), distance(&x[..DIM])));
        } else {
            std::thread::sleep(pace(me));
            win.neighbor_win_get()?;
            let x = win.neighbor_values()?.remove(0).1;
            let g = problem.grad_of(&x[..DIM])?;
            let mut update: Vec<f64> = g.iter().map(|g| -gamma * g).collect();
            update.push(1.0);
            win.neighbor_win_accumulate_with(&update, 1.0, &[(0, 1.0)])?;
            steps += 1.0;
        }
    }
    bf.barrier()?; // every worker's last update has landed
    let x = if me == 0 {
        let x = win.win_update_then_collect()?;
        record.push((start.elapsed().as_secs_f64(), distance(&x[..DIM])));
        x
    } else {
        Vec::new()
    };
    win.win_free()?;
    let all = bf.allgather(&[steps])?;
    let per_worker: Vec<f64> = all.iter().skip(1).map(|s| s[0]).collect();
    Ok((per_worker, x, record))
}

/// The synchronous server: every rank holds `x`; each step sums the workers' gradients.
fn synchronous(bf: &Fog) -> fogkit::Result<(Vec<f64>, Record)> {
    let me = bf.rank();
    let problem = data(me)?;
    let mut x = vec![0.0; DIM];
    let gamma = STEP / (bf.size() - 1) as f64;
    let mut record = Vec::new();
    bf.barrier()?;
    let start = Instant::now();
    for _ in 0..SYNC_STEPS {
        let g = if me == 0 {
            vec![0.0; DIM] // the master computes nothing
        } else {
            std::thread::sleep(pace(me));
            problem.grad_of(&x)?
        };
        let sum = bf.allreduce_op(&g, ReduceOp::Sum)?;
        for (x, g) in x.iter_mut().zip(&sum) {
            *x -= gamma * g;
        }
        record.push((start.elapsed().as_secs_f64(), distance(&x)));
    }
    Ok((x, record))
}

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let ranks = fogkit::launch::ranks_or(4);
    if ranks < 2 {
        return Err(Error::InvalidArgument(format!(
            "master_worker needs at least 2 ranks (a master and a worker), found {ranks}"
        )));
    }
    fogkit::run(ranks, |bf: &Fog| -> fogkit::Result<()> {
        bf.set_topology(topology::star(bf.size()))?;
        let (steps, x, record) = asynchronous(bf)?;
        let (x_sync, record_sync) = synchronous(bf)?;
        if bf.rank() != 0 {
            return Ok(());
        }
        let total: f64 = steps.iter().sum();
        let folded = x[DIM];
        let (d_async, d_sync) = (distance(&x[..DIM]), distance(&x_sync));
        println!(
            "Master-worker least squares on {} ranks ({} transport): rank 0 holds x, {} worker(s); \
             worker 1 sleeps 5 ms per step, any others 1 ms.",
            bf.size(),
            bf.transport_name(),
            bf.size() - 1
        );
        let per: Vec<String> = steps.iter().map(|s| format!("{s}")).collect();
        println!(
            "  asynchronous (windows, lock-free): worker steps [{}]; updates folded in: {folded} of {total}",
            per.join(", ")
        );
        println!(
            "    |x - x*| after {:.0} ms (at least {MIN_STEPS} steps per worker): {d_async:.1e}, below {TOL:.0e} after {}",
            1e3 * record.last().map_or(0.0, |r| r.0),
            ms(time_to_tol(&record))
        );
        println!(
            "  synchronous (allreduce of gradients): {SYNC_STEPS} steps each; |x - x*|: {d_sync:.1e}, \
             below {TOL:.0e} after {}",
            ms(time_to_tol(&record_sync))
        );
        if folded != total {
            return Err(Error::InvalidArgument(format!(
                "expected the master to fold in all {total} updates, found {folded}"
            )));
        }
        if d_async >= 1e-8 || d_sync >= TOL {
            return Err(Error::InvalidArgument(format!(
                "expected |x - x*| below 1e-8 (asynchronous) and {TOL:.0e} (synchronous), \
                 found {d_async:.1e} and {d_sync:.1e}"
            )));
        }
        Ok(())
    })?;
    Ok(())
}
