//! Generators against hand-computed matrices; analysis against closed forms.

use fogkit::topology::{self, OnePeerSchedule, RingStyle, Topology, Weighting};

fn assert_matrix(t: &Topology, expected: &[Vec<f64>], tol: f64) {
    let m = t.matrix();
    assert_eq!(m.len(), expected.len(), "size");
    for (i, (row, er)) in m.iter().zip(expected).enumerate() {
        for (j, (a, b)) in row.iter().zip(er).enumerate() {
            assert!(
                (a - b).abs() <= tol,
                "W[{i}][{j}] = {a}, expected {b}\n{t:?}"
            );
        }
    }
}

/// Row i of a circulant matrix where rank i receives from i - d with weight c[d].
fn circulant(c: &[f64]) -> Vec<Vec<f64>> {
    let n = c.len();
    (0..n)
        .map(|i| (0..n).map(|j| c[(i + n - j) % n]).collect())
        .collect()
}

#[test]
fn ring_5_by_hand() {
    let t = 1.0 / 3.0;
    let expected = vec![
        vec![t, t, 0.0, 0.0, t],
        vec![t, t, t, 0.0, 0.0],
        vec![0.0, t, t, t, 0.0],
        vec![0.0, 0.0, t, t, t],
        vec![t, 0.0, 0.0, t, t],
    ];
    assert_matrix(&topology::ring(5), &expected, 0.0);
    assert_eq!(
        topology::ring(2).matrix(),
        vec![vec![0.5, 0.5], vec![0.5, 0.5]]
    );
    assert_eq!(topology::ring(1).matrix(), vec![vec![1.0]]);
}

#[test]
fn directed_rings_by_hand() {
    // Right: i sends to i + 1, so i receives from i - 1.
    let r = topology::ring_directed(4, RingStyle::Right);
    assert_matrix(&r, &circulant(&[0.5, 0.5, 0.0, 0.0]), 0.0);
    let l = topology::ring_directed(4, RingStyle::Left);
    assert_matrix(&l, &circulant(&[0.5, 0.0, 0.0, 0.5]), 0.0);
}

#[test]
fn exponential_two_8_by_hand() {
    // Rank i receives from i - 1, i - 2, i - 4 (it sends to i + 1, i + 2, i + 4).
    let q = 0.25;
    let expected = vec![
        vec![q, 0.0, 0.0, 0.0, q, 0.0, q, q],
        vec![q, q, 0.0, 0.0, 0.0, q, 0.0, q],
        vec![q, q, q, 0.0, 0.0, 0.0, q, 0.0],
        vec![0.0, q, q, q, 0.0, 0.0, 0.0, q],
        vec![q, 0.0, q, q, q, 0.0, 0.0, 0.0],
        vec![0.0, q, 0.0, q, q, q, 0.0, 0.0],
        vec![0.0, 0.0, q, 0.0, q, q, q, 0.0],
        vec![0.0, 0.0, 0.0, q, 0.0, q, q, q],
    ];
    let t = topology::exponential_two(8);
    assert_matrix(&t, &expected, 0.0);
    assert_eq!(t.in_neighbors(0), vec![4, 6, 7]);
    assert_eq!(t.out_neighbors(0), vec![1, 2, 4]);
    assert!(t.is_doubly_stochastic(1e-15) && !t.is_symmetric(0.0));
}

#[test]
fn exponential_base_3_by_hand() {
    // n = 10, base 3: distances 1, 3, 9 plus self, 1/4 each.
    let mut c = vec![0.0; 10];
    for d in [0, 1, 3, 9] {
        c[d] = 0.25;
    }
    assert_matrix(&topology::exponential(10, 3).unwrap(), &circulant(&c), 0.0);
}

#[test]
fn mesh_3x3_by_hand() {
    // Metropolis-Hastings with degree + 1 counting self: corner 3, edge 4, centre 5.
    let (h, q, f) = (0.5, 0.25, 0.2);
    let e = 1.0 - 0.25 - 0.25 - 0.2; // edge self weight = 3/10
    let expected = vec![
        vec![h, q, 0.0, q, 0.0, 0.0, 0.0, 0.0, 0.0],
        vec![q, e, q, 0.0, f, 0.0, 0.0, 0.0, 0.0],
        vec![0.0, q, h, 0.0, 0.0, q, 0.0, 0.0, 0.0],
        vec![q, 0.0, 0.0, e, f, 0.0, q, 0.0, 0.0],
        vec![0.0, f, 0.0, f, f, f, 0.0, f, 0.0],
        vec![0.0, 0.0, q, 0.0, f, e, 0.0, 0.0, q],
        vec![0.0, 0.0, 0.0, q, 0.0, 0.0, h, q, 0.0],
        vec![0.0, 0.0, 0.0, 0.0, f, 0.0, q, e, q],
        vec![0.0, 0.0, 0.0, 0.0, 0.0, q, 0.0, q, h],
    ];
    let t = topology::mesh_grid_2d(9);
    assert_matrix(&t, &expected, 1e-15);
    assert!(t.is_symmetric(0.0) && t.is_doubly_stochastic(1e-15));
    // Shape choice: 12 -> 3 x 4 (rank 0 links with 1 and 4), 7 (prime) -> a line.
    assert_eq!(topology::mesh_grid_2d(12).in_neighbors(0), vec![1, 4]);
    assert_eq!(topology::mesh_grid_2d(7).in_neighbors(3), vec![2, 4]);
    assert_eq!(
        topology::mesh_grid_2d_shape(2, 3).in_neighbors(4),
        vec![1, 3, 5]
    );
}

#[test]
fn star_4_by_hand() {
    let expected = vec![
        vec![0.25, 0.25, 0.25, 0.25],
        vec![0.25, 0.75, 0.0, 0.0],
        vec![0.25, 0.0, 0.75, 0.0],
        vec![0.25, 0.0, 0.0, 0.75],
    ];
    assert_matrix(&topology::star(4), &expected, 0.0);
    let c2 = topology::star_with_center(4, 2).unwrap();
    assert_eq!(c2.row(2), &[0.25, 0.25, 0.25, 0.25]);
    assert_eq!(c2.row(0), &[0.75, 0.0, 0.25, 0.0]);
    assert!(topology::star_with_center(4, 4).is_err());
}

#[test]
fn symmetric_exponential_8_by_hand() {
    // Base 4: distances +-1 and 4 (= -4 mod 8), plus self: 1/4 each.
    let t = topology::symmetric_exponential(8);
    assert_matrix(
        &t,
        &circulant(&[0.25, 0.25, 0.0, 0.0, 0.25, 0.0, 0.0, 0.25]),
        0.0,
    );
    assert!(t.is_symmetric(0.0));
    // n = 12: distances 1, 4, 8, 11 and self -> 1/5.
    let t12 = topology::symmetric_exponential(12);
    assert_eq!(t12.in_neighbors(0), vec![1, 4, 8, 11]);
    assert_eq!(t12.weight(0, 4), 0.2);
}

#[test]
fn fully_connected_by_hand() {
    assert_matrix(
        &topology::fully_connected(3),
        &vec![vec![1.0 / 3.0; 3]; 3],
        0.0,
    );
}

#[test]
fn ring_mixing_rate_matches_closed_form() {
    for n in 3..=24 {
        let expected = (1..n)
            .map(|k| {
                (1.0 / 3.0 + 2.0 / 3.0 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos())
                    .abs()
            })
            .fold(0.0, f64::max);
        let rho = topology::ring(n).mixing_rate();
        assert!(
            (rho - expected).abs() < 1e-12,
            "ring({n}): rho {rho}, closed form {expected}"
        );
    }
}

#[test]
fn mixing_rates_of_special_graphs() {
    assert!(topology::fully_connected(7).mixing_rate() < 1e-12);
    // Star: W - J has the leaves' 1 - 1/n - ... ; known rho = 1 - 1/n.
    for n in 3..8 {
        let rho = topology::star(n).mixing_rate();
        assert!(
            (rho - (1.0 - 1.0 / n as f64)).abs() < 1e-12,
            "star({n}) rho {rho}"
        );
    }
    // exp2(4) = circulant (1/3)(I + P + P^2): eigenvalues (1 + w^k + w^2k)/3, |.| = 1/3 for k = 1, 3.
    let rho = topology::exponential_two(4).mixing_rate();
    assert!((rho - 1.0 / 3.0).abs() < 1e-12, "exp2(4) rho {rho}");
    let r = topology::ring(6);
    assert!((r.spectral_gap() - (1.0 - r.mixing_rate())).abs() < 1e-15);
}

#[test]
fn stochasticity_symmetry_definiteness() {
    for n in 1..=9 {
        for t in [
            topology::exponential_two(n),
            topology::symmetric_exponential(n),
            topology::ring(n),
            topology::star(n),
            topology::mesh_grid_2d(n),
            topology::fully_connected(n),
        ] {
            assert!(t.is_doubly_stochastic(1e-12), "{t:?}");
            assert!(t.is_connected(), "{t:?}");
        }
    }
    let ring4 = topology::ring(4);
    assert!(ring4.is_symmetric(0.0));
    // Eigenvalues of ring(4): 1, 1/3, 1/3, -1/3: not positive definite; (I + W)/2 is.
    let ev = ring4.eigenvalues().unwrap();
    let want = [-1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 1.0];
    assert!(
        ev.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
        "{ev:?}"
    );
    assert!(!ring4.is_positive_definite());
    assert!(ring4.lazy().is_positive_definite());
    assert!(topology::exponential_two(4).eigenvalues().is_none());
    // A directed ring with push-sum weights is column- but not row-stochastic.
    let adj: Vec<Vec<bool>> = (0..4)
        .map(|i| (0..4).map(|j| j == (i + 3) % 4).collect())
        .collect();
    let push = Topology::from_adjacency(&adj, Weighting::UniformSend).unwrap();
    assert!(push.is_column_stochastic(1e-15));
    let recv = Topology::from_adjacency(&adj, Weighting::UniformRecv).unwrap();
    assert!(recv.is_row_stochastic(1e-15));
}

#[test]
fn recv_and_send_weights() {
    let t = topology::exponential_two(8);
    assert_eq!(
        t.recv_weights(0),
        (0.25, vec![(4, 0.25), (6, 0.25), (7, 0.25)])
    );
    assert_eq!(
        t.send_weights(0),
        (0.25, vec![(1, 0.25), (2, 0.25), (4, 0.25)])
    );
}

#[test]
fn validation_says_what_is_wrong() {
    let e = topology::ring(5).validate_for(6).unwrap_err().to_string();
    assert!(
        e.contains("expected a topology of 6 ranks") && e.contains("found one of 5"),
        "{e}"
    );
    let half = Topology::from_weights(vec![vec![0.5, 0.0], vec![0.5, 0.5]]).unwrap();
    let e = half.validate_for(2).unwrap_err().to_string();
    assert!(
        e.contains("rank 0") && e.contains("sum to 1, found 0.5"),
        "{e}"
    );
    let split = Topology::from_weights(vec![
        vec![0.5, 0.5, 0.0, 0.0],
        vec![0.5, 0.5, 0.0, 0.0],
        vec![0.0, 0.0, 0.5, 0.5],
        vec![0.0, 0.0, 0.5, 0.5],
    ])
    .unwrap();
    assert!(!split.is_connected());
    let e = split.validate_for(4).unwrap_err().to_string();
    assert!(e.contains("connected") && e.contains("rank 2"), "{e}");
    assert!(Topology::from_weights(vec![vec![f64::NAN]]).is_err());
    assert!(topology::exponential(8, 1).is_err());
    let directed = Topology::from_adjacency(
        &[vec![false, true], vec![false, false]],
        Weighting::MetropolisHastings,
    );
    assert!(directed.unwrap_err().to_string().contains("undirected"));
}

#[test]
fn iterations_predicted_by_rho() {
    let t = topology::exponential_two(8);
    let k = t.iterations_to(1e-12).unwrap();
    assert!(t.mixing_rate().powi(k as i32) <= 1e-12);
    assert!(t.mixing_rate().powi(k as i32 - 1) > 1e-12);
    assert_eq!(topology::fully_connected(4).iterations_to(1e-12), Some(1));
}

#[test]
fn one_peer_schedules_agree_and_average_exactly() {
    for n in [2usize, 4, 8, 16] {
        let s = OnePeerSchedule::new(&topology::exponential_two(n));
        for k in 0..12 {
            for r in 0..n {
                assert_eq!(
                    s.at(r, k),
                    topology::one_peer_exponential_two(n, r, k),
                    "n {n} r {r} k {k}"
                );
            }
        }
        // log2(n) rounds of (I + P^(2^t))/2 give exactly 11^T/n.
        let mut x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let rounds = n.trailing_zeros() as usize;
        for k in 0..rounds {
            let prev = x.clone();
            for (r, xr) in x.iter_mut().enumerate() {
                let p = topology::one_peer_exponential_two(n, r, k);
                *xr = 0.5 * prev[r] + 0.5 * prev[p.recv_from[0]];
            }
        }
        let avg = (n - 1) as f64 / 2.0;
        assert!(x.iter().all(|&v| v == avg), "n {n}: {x:?}");
    }
    // n not a power of two: each rank still sends to one and receives from one.
    let p = topology::one_peer_exponential_two(6, 5, 2);
    assert_eq!((p.send_to, p.recv_from), (vec![3], vec![1]));
}

#[test]
fn serde_and_fingerprint() {
    let a = topology::ring(5);
    assert_eq!(a.fingerprint(), topology::ring(5).fingerprint());
    assert_ne!(a.fingerprint(), topology::exponential_two(5).fingerprint());
    assert_eq!(
        a.apply(&[3.0, 0.0, 0.0, 0.0, 0.0]),
        vec![1.0, 1.0, 0.0, 0.0, 1.0]
    );
}

/// `Topology` as serde data: a round trip keeps every bit, and a bad matrix is refused
/// with what was expected and what was found.
#[cfg(feature = "serde")]
#[test]
fn a_deserialized_topology_is_checked_like_from_weights() {
    let t = topology::exponential_two(8);
    let json = serde_json::to_string(&t).unwrap();
    let back: Topology = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    for (bad, says) in [
        (
            r#"{"n": 2, "w": [0.5, 0.5, 0.5]}"#,
            "expects 2 x 2 weights, found 3",
        ),
        (r#"{"n": 3, "w": [1.0]}"#, "expects 3 x 3 weights, found 1"),
        (
            r#"{"n": 18446744073709551615, "w": []}"#,
            "weights, found 0",
        ),
        (
            r#"{"n": 1, "w": [1.0], "extra": 2}"#,
            "unknown field `extra`",
        ),
    ] {
        let err = serde_json::from_str::<Topology>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
    let empty: Topology = serde_json::from_str(r#"{"n": 0, "w": []}"#).unwrap();
    assert_eq!(empty.size(), 0);
}
