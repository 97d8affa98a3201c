//! The talk's limiting-bias table: full-batch linear regression on heterogeneous data,
//! 8 in-process ranks on a ring; steady-state mean-square deviation of DSGD, DmSGD,
//! DecentLaM and PmSGD for three momenta.
//!
//! Run: `cargo run --release -p fogkit --example bias`

use fogkit::experiments::bias_row;
use fogkit::topology;

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    println!("| beta | gamma | DSGD | DmSGD | DecentLaM | PmSGD | DmSGD/DSGD | 1/(1-beta)^2 | DecentLaM/DSGD |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (beta, gamma, steps) in [
        (0.5, 0.01, 20_000),
        (0.8, 0.005, 40_000),
        (0.9, 0.002, 60_000),
    ] {
        let r = bias_row(8, &topology::ring(8), beta, gamma, steps)?;
        println!(
            "| {beta} | {gamma} | {:.3e} | {:.3e} | {:.3e} | {:.1e} | {:.1} | {:.0} | {:.3} |",
            r.msd[0],
            r.msd[1],
            r.msd[2],
            r.msd[3],
            r.dmsgd_ratio(),
            1.0 / (1.0f64 - beta).powi(2),
            r.decentlam_ratio()
        );
    }
    Ok(())
}
