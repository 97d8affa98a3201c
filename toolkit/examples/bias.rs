//! The talk's limiting-bias table: full-batch linear regression on heterogeneous data,
//! 8 ranks on a ring; steady-state mean-square deviation of DSGD, DmSGD, DecentLaM and
//! PmSGD for three momenta, beside their exact values at the methods' fixed points
//! (`fixed_point_msd`: one linear solve). Asserts the talk's claims: DmSGD's bias is about
//! 1/(1-beta)^2 times DSGD's, DecentLaM's is DSGD's; and that every run has reached its
//! fixed point to 1e-9 (on 3 ranks or fewer the ring is complete and every method is exact).
//!
//! Run: `cargo run --release -p fogkit --example bias` (8 in-process ranks; `FOGKIT_RANKS`
//! for another number), or `fogrun -np 8 target/release/examples/bias`.

use fogkit::experiments::{bias_row, fixed_point_msd, msd_with};
use fogkit::optim::{Communication, Dynamic, Method, Optimizer};
use fogkit::prelude::*;

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let n = fogkit::launch::ranks_or(8);
    // Every rank holds the same row; one process prints it.
    let say = fogkit::launch::process_rank() == 0;
    if say {
        println!("Limiting bias on ring({n}):");
    }
    let print = |s: String| {
        if say {
            println!("{s}");
        }
    };
    print("| beta | gamma | DSGD | exact | DmSGD | exact | DecentLaM | PmSGD | DmSGD/DSGD | exact | 1/(1-beta)^2 | DecentLaM/DSGD |".into());
    print("|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    let mut gap: f64 = 0.0;
    for (beta, gamma, steps) in [
        (0.5, 0.01, 20_000),
        (0.8, 0.005, 40_000),
        (0.9, 0.002, 60_000),
    ] {
        let r = bias_row(n, &topology::ring(n), beta, gamma, steps)?;
        let bound = 1.0 / (1.0f64 - beta).powi(2);
        print(format!(
            "| {beta} | {gamma} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.1e} | {:.1} | {:.2} | {:.0} | {:.3} |",
            r.msd[0],
            r.exact[0],
            r.msd[1],
            r.exact[1],
            r.msd[2],
            r.msd[3],
            r.dmsgd_ratio(),
            r.exact_dmsgd_ratio(),
            bound,
            r.decentlam_ratio()
        ));
        if n <= 3 {
            // ring(n) is complete: the ranks average exactly, so no method has a bias.
            assert!(r.msd.iter().all(|&m| m < 1e-12), "{r:?}");
        } else {
            let (dm, dl) = (r.dmsgd_ratio(), r.decentlam_ratio());
            assert!(
                dm > 0.5 * bound && dm < 1.5 * bound,
                "DmSGD/DSGD {dm} against {bound}"
            );
            assert!((dl - 1.0).abs() < 0.05, "DecentLaM/DSGD {dl}");
            gap = gap.max(r.largest_gap());
            assert!(r.largest_gap() < 1e-9, "{r:?}");
        }
    }
    if n > 3 {
        print(String::new());
        print(format!(
            "Exact: at the fixed point (DecentLaM's is DSGD's). Largest gap between a run and \
             its fixed point, relative: {gap:.0e}."
        ));
        topologies(n, &print)?;
    }
    Ok(())
}

/// The bias against the topology, at the exact fixed points (beta 0.9, gamma 0.002): the
/// worse the mixing (the smaller the spectral gap 1 - rho), the larger the bias, roughly as
/// rho^2 / (1 - rho)^2 (the last column stays within a factor of about 1.5 on 8 ranks).
fn topologies(n: usize, print: &dyn Fn(String)) -> fogkit::Result<()> {
    let (beta, gamma) = (0.9, 0.002);
    print(String::new());
    print(format!(
        "Exact bias by topology on {n} ranks, beta {beta}, gamma {gamma}:"
    ));
    print("| topology | rho | 1 - rho | DSGD | DmSGD | DSGD x (1 - rho)^2 / rho^2 |".into());
    print("|---|---|---|---|---|---|".into());
    for (name, w) in [
        ("ring", topology::ring(n)),
        ("lazy ring", topology::ring(n).lazy()),
        ("symmetric exponential", topology::symmetric_exponential(n)),
        ("exponential-2", topology::exponential_two(n)),
    ] {
        let rho = w.mixing_rate();
        let gap = 1.0 - rho;
        let dsgd = fixed_point_msd(&w, Method::Dsgd, beta, gamma)?;
        let dmsgd = fixed_point_msd(&w, Method::DmSgd, beta, gamma)?;
        print(format!(
            "| {name} | {rho:.3} | {gap:.3} | {dsgd:.3e} | {dmsgd:.3e} | {:.3e} |",
            dsgd * gap * gap / (rho * rho)
        ));
    }
    // The one-peer exponential graph changes W every step (no fixed point to solve for):
    // its runs, the steady state averaged over the last 3,000 of 40,000 steps (a whole
    // number of its periods; DSGD's transient, the slowest, has then shrunk by e^-18). On a power of two of ranks any log2(n) consecutive W's multiply to
    // the exact average, though each alone mixes as slowly as a ring of 2.
    if n.is_power_of_two() {
        let one_peer = Communication::Dynamic(Dynamic::OnePeerExponential);
        let msd = fogkit::run(n, |bf: &Fog| -> fogkit::Result<[f64; 2]> {
            let run = |m: Method| {
                let opt = Optimizer::new(m)
                    .lr(gamma)
                    .momentum(beta)
                    .communication(one_peer.clone());
                msd_with(bf, opt, None, 40_000, 3_000)
            };
            Ok([run(Method::Dsgd)?, run(Method::DmSgd)?])
        })?;
        if let Some((_, [dsgd, dmsgd])) = msd.into_here().into_iter().next() {
            print(format!(
                "| one-peer exponential-2 (runs) | - | - | {dsgd:.3e} | {dmsgd:.3e} | - |"
            ));
        }
    }
    Ok(())
}
