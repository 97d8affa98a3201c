//! The talk's central claim on linear regression: momentum's inconsistency bias dominates
//! as the batch grows. The limiting-bias problem (8 ranks on a ring, heterogeneous data,
//! as in the bias table) with stochastic gradients of B rows per rank per step: the
//! steady-state mean-square deviation of DSGD, DmSGD and DecentLaM, averaged over the last
//! half of the run. At small B gradient noise dominates and the methods are close; as B
//! grows DmSGD keeps its momentum-incurred bias while DecentLaM's falls to DSGD's, so the
//! ratio DmSGD / DecentLaM grows. Three momenta, each with the bias table's step size
//! (beta 0.5, 0.8, 0.9 with gamma 0.01, 0.005, 0.002); the last row of each table is the
//! exact fixed point (`fixed_point_msd`), beside the full-batch run. Asserts that the ratio
//! grows with B at every momentum and exceeds 5 at the full batch with beta 0.9.
//!
//! Run: `cargo run --release -p fogkit --example batch_sweep` (8 in-process ranks;
//! `FOGKIT_RANKS` for another number), or `fogrun -np 8 target/release/examples/batch_sweep`.

use fogkit::experiments::{fixed_point_msd, stochastic_msd};
use fogkit::optim::Method;
use fogkit::prelude::*;

/// (beta, gamma, steps): the bias table's settings.
const SETTINGS: [(f64, f64, usize); 3] = [
    (0.5, 0.01, 20_000),
    (0.8, 0.005, 40_000),
    (0.9, 0.002, 60_000),
];

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let n = fogkit::launch::ranks_or(8);
    if n < 4 {
        return Err(Error::InvalidArgument(format!(
            "batch_sweep needs at least 4 ranks (on 3 or fewer the ring is complete and no \
             method has an inconsistency bias), found {n}"
        )));
    }
    let batches = [Some(1), Some(4), Some(16), Some(50), None];
    let methods = [Method::Dsgd, Method::DmSgd, Method::DecentLam];
    let say = fogkit::launch::process_rank() == 0;
    for (beta, gamma, steps) in SETTINGS {
        let rows = fogkit::run(n, |bf: &Fog| -> fogkit::Result<Vec<[f64; 3]>> {
            bf.set_topology(topology::ring(n))?;
            batches
                .iter()
                .map(|&b| {
                    let mut row = [0.0; 3];
                    for (r, &m) in row.iter_mut().zip(&methods) {
                        *r = stochastic_msd(bf, m, beta, gamma, b, steps, steps / 2)?;
                    }
                    Ok(row)
                })
                .collect()
        })?;
        // Every rank holds the same averaged values; one process prints them.
        let Some((_, rows)) = rows.into_here().into_iter().next() else {
            continue;
        };
        let ring = topology::ring(n);
        let mut exact = [0.0; 3];
        for (e, &m) in exact.iter_mut().zip(&methods) {
            *e = fixed_point_msd(&ring, m, beta, gamma)?;
        }
        if say {
            println!(
                "Steady-state MSD on ring({n}), beta {beta}, gamma {gamma}, B rows per rank per \
                 step ({steps} steps, the last half averaged):"
            );
            println!("| B | DSGD | DmSGD | DecentLaM | DmSGD/DecentLaM |");
            println!("|---|---|---|---|---|");
            let named = batches
                .iter()
                .map(|b| b.map_or("full (50)".to_string(), |b| b.to_string()))
                .chain(["full, exact".to_string()]);
            for (b, r) in named.zip(rows.iter().chain([&exact])) {
                println!(
                    "| {b} | {:.3e} | {:.3e} | {:.3e} | {:.1} |",
                    r[0],
                    r[1],
                    r[2],
                    r[1] / r[2]
                );
            }
            println!();
        }
        let ratios: Vec<f64> = rows.iter().map(|r| r[1] / r[2]).collect();
        assert!(
            ratios.windows(2).all(|w| w[1] > w[0]),
            "expected DmSGD/DecentLaM to grow with the batch, found {ratios:?} with beta {beta}"
        );
        assert!(
            beta != 0.9 || ratios[ratios.len() - 1] > 5.0,
            "expected DmSGD/DecentLaM above 5 at the full batch with beta 0.9, found {ratios:?}"
        );
        // The full-batch run has reached its exact fixed point (to the printed digits).
        for (run, fixed) in rows[rows.len() - 1].iter().zip(&exact) {
            assert!((run - fixed).abs() <= 1e-4 * fixed, "{run} against {fixed}");
        }
    }
    Ok(())
}
