//! Average consensus converges as the mixing rate predicts; averaging keeps the mean.

mod common;

use common::{all_generators, value, within};
use fogkit::prelude::*;
use proptest::prelude::*;

fn dist_to_mean(xs: &[f64]) -> (f64, f64) {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let l2 = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>().sqrt();
    let linf = xs.iter().map(|x| (x - mean).abs()).fold(0.0, f64::max);
    (l2, linf)
}

#[test]
fn exp2_8_reaches_the_exact_average_within_rho_iterations() {
    within(60, || {
        let n = 8;
        let topo = topology::exponential_two(n);
        let x0: Vec<f64> = (0..n).map(|r| value(r, 0)).collect();
        let (e0, _) = dist_to_mean(&x0);
        // ||x_k - mean||_2 <= rho^k ||x_0 - mean||_2, so this many iterations bring it to 1e-12.
        let k = topo.iterations_to(1e-12 / e0).unwrap();
        let mean = x0.iter().sum::<f64>() / n as f64;
        let xs = fogkit::run(n, |bf| -> fogkit::Result<_> {
            bf.set_topology(topology::exponential_two(bf.size()))?;
            let mut x = vec![value(bf.rank(), 0)];
            for _ in 0..k {
                x = bf.neighbor_allreduce(&x)?;
            }
            Ok(x[0])
        })
        .unwrap();
        for (r, x) in xs.iter() {
            assert!(
                (x - mean).abs() <= 1e-12,
                "rank {r}: {x} vs mean {mean} after {k} iterations"
            );
        }
        assert!(
            k < 60,
            "exp2(8) should need few iterations, rho predicted {k}"
        );
    });
}

#[test]
fn consensus_error_shrinks_at_least_like_rho_k_on_every_graph() {
    within(120, || {
        let n = 9;
        for (name, topo) in all_generators(n) {
            let rho = topo.mixing_rate();
            let errs = fogkit::run(n, |bf| -> fogkit::Result<_> {
                bf.set_topology(topo.clone())?;
                let mut x = vec![value(bf.rank(), 1)];
                let mut all = vec![bf.allgather(&x)?.iter().map(|v| v[0]).collect::<Vec<_>>()];
                for _ in 0..30 {
                    x = bf.neighbor_allreduce(&x)?;
                    all.push(bf.allgather(&x)?.iter().map(|v| v[0]).collect());
                }
                Ok(all)
            })
            .unwrap()
            .into_vec()
            .unwrap()
            .remove(0);
            let e0 = dist_to_mean(&errs[0]).0;
            for (k, xs) in errs.iter().enumerate() {
                let ek = dist_to_mean(xs).0;
                let bound = rho.powi(k as i32) * e0 + 1e-12;
                assert!(
                    ek <= bound * (1.0 + 1e-9),
                    "{name} k={k}: error {ek} above rho^k bound {bound}"
                );
            }
        }
    });
}

/// A doubly-stochastic matrix as a convex combination of permutation matrices (Birkhoff).
fn doubly_stochastic(n: usize, perms: &[(Vec<usize>, f64)]) -> Topology {
    let total: f64 = perms.iter().map(|p| p.1).sum();
    let mut w = vec![vec![0.0; n]; n];
    for (perm, c) in perms {
        for (i, &j) in perm.iter().enumerate() {
            w[i][j] += c / total;
        }
    }
    Topology::from_weights(w).unwrap()
}

fn perm_strategy(n: usize) -> impl Strategy<Value = Vec<usize>> {
    Just((0..n).collect::<Vec<usize>>()).prop_shuffle()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn averaging_with_any_doubly_stochastic_w_preserves_the_mean(
        (n, perms, xs) in (1usize..=8).prop_flat_map(|n| (
            Just(n),
            prop::collection::vec((perm_strategy(n), 0.05f64..1.0), 1..4),
            prop::collection::vec(-1e3f64..1e3, n),
        ))
    ) {
        let topo = doubly_stochastic(n, &perms);
        prop_assert!(topo.is_doubly_stochastic(1e-12));
        let out = fogkit::run(n, |bf| -> fogkit::Result<_> {
            let w = NeighborWeights::from_topology(&topo, bf.rank());
            let mut x = vec![xs[bf.rank()]];
            for _ in 0..5 {
                x = bf.neighbor_allreduce_with(&x, &w)?;
            }
            Ok(x[0])
        }).unwrap();
        let before = xs.iter().sum::<f64>() / n as f64;
        let after = out.iter().map(|(_, v)| v).sum::<f64>() / n as f64;
        prop_assert!((before - after).abs() <= 1e-12 * (1.0 + xs.iter().map(|v| v.abs()).fold(0.0, f64::max)),
            "mean {} became {}", before, after);
    }
}
