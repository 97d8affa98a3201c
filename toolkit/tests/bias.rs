//! The talk's limiting-bias result on full-batch linear regression (8 ranks, ring):
//! momentum amplifies DmSGD's inconsistency bias by about 1/(1-beta)^2; DecentLaM's bias is
//! DSGD's; PmSGD (exact averaging) has none. Every run ends at its method's exact fixed point.

use fogkit::experiments::bias_row;
use fogkit::topology;

#[test]
fn dmsgd_bias_grows_like_one_over_one_minus_beta_squared_and_decentlam_removes_it() {
    for (beta, gamma, steps) in [(0.5, 0.01, 20_000), (0.8, 0.005, 40_000)] {
        let row = bias_row(8, &topology::ring(8), beta, gamma, steps).unwrap();
        let theory = 1.0 / (1.0f64 - beta).powi(2);
        let (dm, dl) = (row.dmsgd_ratio(), row.decentlam_ratio());
        assert!(
            dm > 0.5 * theory && dm < 2.0 * theory,
            "beta {beta}: DmSGD/DSGD = {dm}, theory {theory}"
        );
        assert!(dl > 0.9 && dl < 1.1, "beta {beta}: DecentLaM/DSGD = {dl}");
        assert!(row.msd[0] > 1e-5, "DSGD has a visible bias: {:?}", row.msd);
        assert!(row.msd[3] < 1e-20, "PmSGD is exact: {:?}", row.msd);
        // The runs end at the methods' fixed points, computed by one linear solve.
        assert!(row.largest_gap() < 1e-9, "{row:?}");
        assert_eq!(row.exact[3], 0.0);
        assert_eq!(
            row.exact[0], row.exact[2],
            "DecentLaM's fixed point is DSGD's"
        );
        // Below 1/(1-beta)^2 at the fixed points too: not an unfinished run.
        let exact = row.exact_dmsgd_ratio();
        assert!(
            exact < theory && exact > 0.8 * theory,
            "exact {exact}, theory {theory}"
        );
        assert!((exact - dm).abs() < 1e-6 * exact, "run {dm}, exact {exact}");
    }
}

#[test]
fn with_stochastic_gradients_the_dmsgd_over_decentlam_ratio_grows_with_the_batch() {
    use fogkit::experiments::stochastic_msd;
    use fogkit::optim::Method;
    use fogkit::prelude::*;
    // A smaller case of examples/batch_sweep.rs: beta 0.9, B = 1, 16 and full.
    let ratios = fogkit::run(8, |bf: &Fog| -> fogkit::Result<Vec<f64>> {
        bf.set_topology(topology::ring(8))?;
        [Some(1), Some(16), None]
            .iter()
            .map(|&b| {
                let dm = stochastic_msd(bf, Method::DmSgd, 0.9, 0.002, b, 20_000, 10_000)?;
                let dl = stochastic_msd(bf, Method::DecentLam, 0.9, 0.002, b, 20_000, 10_000)?;
                Ok(dm / dl)
            })
            .collect()
    })
    .unwrap();
    let r = &ratios[0];
    assert!(r[0] < r[1] && r[1] < r[2], "{r:?}");
    assert!(r[0] < 2.0 && r[2] > 5.0, "{r:?}");
    // Bad input is an error, not a panic.
    let err = fogkit::run(1, |bf: &Fog| {
        stochastic_msd(bf, Method::Dsgd, 0.0, 0.01, Some(0), 10, 5)
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a batch of at least 1 row"),
        "{err}"
    );
}

#[test]
fn the_exact_bias_scales_like_rho_squared_over_the_spectral_gap_squared() {
    use fogkit::experiments::fixed_point_msd;
    use fogkit::optim::Method;
    let scaled: Vec<(f64, f64)> = [
        topology::ring(8),
        topology::ring(8).lazy(),
        topology::symmetric_exponential(8),
        topology::exponential_two(8),
    ]
    .iter()
    .map(|w| {
        let rho = w.mixing_rate();
        let msd = fixed_point_msd(w, Method::Dsgd, 0.9, 0.002).unwrap();
        (msd, msd * (1.0 - rho).powi(2) / (rho * rho))
    })
    .collect();
    // Worse mixing, larger bias: lazy ring > ring > symmetric exponential.
    assert!(
        scaled[1].0 > scaled[0].0 && scaled[0].0 > scaled[2].0,
        "{scaled:?}"
    );
    let (lo, hi) = scaled.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), s| {
        (lo.min(s.1), hi.max(s.1))
    });
    assert!(
        hi < 2.0 * lo,
        "rho^2/(1-rho)^2 does not explain the bias: {scaled:?}"
    );
}
