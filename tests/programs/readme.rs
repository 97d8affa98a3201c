//! The README's "Ten lines" example as a program. The lines between the markers are the
//! README's code block, verbatim (`tests/programs.rs` checks that, and runs this program
//! in-process and under mpirun with the same printed answer).

// Kept as the README aligns it.
#[rustfmt::skip]
fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    // README begin
    use fogkit::prelude::*;

    let xs = fogkit::run(8, |bf| {
        bf.set_topology(topology::exponential_two(bf.size()))?;
        let (b, gamma, mut x) = (bf.rank() as f64, 0.1, vec![0.0]); // f_i(x) = (x - b_i)^2 / 2
        for _ in 0..400 {
            let grad = x[0] - b;                    // local gradient
            let y = vec![x[0] - gamma * grad];      // local update
            x = bf.neighbor_allreduce(&y)?;         // partial averaging
        }
        Ok(x[0])
    })?;
    for (rank, x) in xs.iter() {
        println!("rank {rank}: x = {x:.6}");        // near 3.5, the mean of b, up to DGD's bias
    }
    // README end
    Ok(())
}
