//! The talk's limiting-bias result on full-batch linear regression (8 ranks, ring):
//! momentum amplifies DmSGD's inconsistency bias by about 1/(1-beta)^2; DecentLaM's bias is
//! DSGD's; PmSGD (exact averaging) has none.

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
    }
}
