//! Windows on in-process ranks: every op against hand-computed values for n = 2..8 over
//! ring, exponential-2 and a one-way ring; a stress loop with random delays checking
//! conservation every round; asynchronous push-sum reaching the average with one rank 5x
//! slower; and the errors a user can meet (the same cases under mpirun are in mpirun.rs);
//! the window optimizers against DSGD, and training with a slow rank.

use std::time::Duration;

use fogkit_tests::windows::{async_push_sum, window_cases, window_stress};

#[test]
fn window_ops_equal_hand_computed_values_for_2_to_8_ranks() {
    for n in 2..=8 {
        let out = fogkit::run(n, window_cases).unwrap_or_else(|e| panic!("n = {n}: {e}"));
        let counts: Vec<usize> = out.iter().map(|(_, b)| b.len()).collect();
        assert!(
            counts.iter().all(|&c| c == counts[0] && c > 0),
            "{counts:?}"
        );
    }
}

#[test]
fn stress_with_random_delays_conserves_the_total_every_round() {
    for (n, seed) in [(2, 1), (5, 2), (8, 3)] {
        let worst = fogkit::run(n, |bf| window_stress(bf, 20, 30, seed))
            .unwrap_or_else(|e| panic!("n = {n}: {e}"));
        for (r, w) in worst.iter() {
            assert!(*w <= 1e-12, "rank {r}: drift {w:e}");
        }
    }
}

#[test]
fn asynchronous_push_sum_reaches_the_average_with_one_rank_5x_slower() {
    let out = fogkit::run(6, |bf| {
        async_push_sum(bf, Duration::from_secs(2), Duration::from_micros(500), 2, 5)
    })
    .unwrap();
    let slow = &out[2];
    let fast = &out[0];
    assert!(
        2 * fast.iterations > 3 * slow.iterations,
        "the fast rank waited for the slow one: {} iterations against {}",
        fast.iterations,
        slow.iterations
    );
    for (r, run) in out.iter() {
        assert!(
            run.error < 1e-8,
            "rank {r}: error {:e} after {} iterations",
            run.error,
            run.iterations
        );
    }
}

#[test]
fn window_errors_say_what_was_expected() {
    let err = fogkit::run(3, |bf| {
        bf.set_topology(fogkit::topology::ring(3))?;
        let win = bf.win_create("w", &[1.0f64, 2.0], true)?;
        let dup = bf
            .win_create("w", &[1.0f64, 2.0], true)
            .err()
            .map(|e| e.to_string());
        let short = win.neighbor_win_put(&[1.0f64]).err().map(|e| e.to_string());
        let stray = win
            .neighbor_win_put_with(&[1.0f64, 2.0], 1.0, &[(bf.rank(), 1.0)])
            .err()
            .map(|e| e.to_string());
        let bad_src = win
            .win_update_with(1.0, &[(bf.rank(), 1.0)], false)
            .err()
            .map(|e| e.to_string());
        bf.barrier()?;
        win.win_free()?;
        Ok((dup, short, stray, bad_src))
    })
    .unwrap();
    let (dup, short, stray, bad_src) = &err[0];
    assert!(
        dup.as_deref().unwrap().contains("`w` open already"),
        "{dup:?}"
    );
    assert!(
        short.as_deref().unwrap().contains("expected 2 elements"),
        "{short:?}"
    );
    assert!(
        stray.as_deref().unwrap().contains("out-neighbours [1, 2]"),
        "{stray:?}"
    );
    assert!(
        bad_src.as_deref().unwrap().contains("in-neighbours [1, 2]"),
        "{bad_src:?}"
    );
}

#[test]
fn a_held_mutex_is_held_by_one_rank_at_a_time() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // In-process ranks share this counter: a rank inside rank 0's mutex finds nobody else
    // inside, 30 times each while all 4 ranks try at once.
    let inside = AtomicUsize::new(0);
    let overlaps = AtomicUsize::new(0);
    fogkit::run(4, |bf| {
        let win = bf.win_create("m", &[0.0f64], true)?;
        for _ in 0..30 {
            let _held = win.win_mutex(&[0, bf.rank()])?;
            if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                overlaps.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
            inside.fetch_sub(1, Ordering::SeqCst);
        }
        bf.barrier()?;
        win.win_free()
    })
    .unwrap();
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
}

// The window optimizers (fogkit::optim::WindowOptimizer).

use fogkit::optim::{Method, Optimizer, WindowOptimizer};
use fogkit::topology;
use fogkit_tests::window_training::{push_sum_with_a_slow_rank, train_ring, x_star, WindowKind};

/// Every rank's parameters after `steps` steps of `kind` on 4 ranks of a ring.
fn ring_of_4(steps: usize, kind: WindowKind) -> Vec<Vec<f64>> {
    fogkit::run(4, |bf| train_ring(bf, steps, kind))
        .unwrap()
        .into_vec()
        .unwrap()
}

#[test]
fn window_optimizers_in_lockstep_are_dsgd() {
    // Over a ring (regular, weights 1/3) with every rank stepping in turn, both window
    // optimizers are x = W(x - gamma g): DSGD (ATC), to rounding.
    let dsgd = ring_of_4(60, WindowKind::Dsgd);
    for kind in [WindowKind::WinPut, WindowKind::PushSum] {
        let got = ring_of_4(60, kind);
        for (a, b) in got.iter().zip(&dsgd) {
            for (u, v) in a.iter().zip(b) {
                assert!((u - v).abs() < 1e-12, "{u} against DSGD's {v}");
            }
        }
    }
    // And they moved: the test would pass on parameters left at zero otherwise.
    assert!(dsgd[0].iter().any(|v| v.abs() > 0.1), "{:?}", dsgd[0]);
}

#[test]
fn push_sum_optimizer_trains_with_a_rank_five_times_slower() {
    // Identically distributed data (spread 0): the ranks share one optimum, and push-sum
    // gets there with no rank waiting for the slow one.
    let n = 4;
    let x_star = x_star(n, 0.0);
    let out = fogkit::run(n, |bf| {
        push_sum_with_a_slow_rank(bf, std::time::Duration::from_millis(700))
    })
    .unwrap()
    .into_vec()
    .unwrap();
    let start = x_star.iter().map(|v| v * v).sum::<f64>().sqrt();
    for (r, (x, steps)) in out.iter().enumerate() {
        let d = x
            .iter()
            .zip(&x_star)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        assert!(
            d < 0.05 * start,
            "rank {r} after {steps} steps: {d} from x*, started {start}"
        );
    }
    assert!(
        out[0].1 > out[1].1,
        "the slow rank took fewer steps: {out:?}"
    );
}

#[test]
fn window_optimizers_refuse_rules_that_need_a_synchronous_w() {
    let e = fogkit::run(2, |bf| {
        let local = Optimizer::new(Method::DecentLam).lr(0.1);
        WindowOptimizer::win_put(bf, local, &[0.0f64]).map(|_| ())
    })
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        e.contains("expected an adapt-then-combine rule") && e.contains("found DecentLaM"),
        "{e}"
    );
}

#[test]
fn push_sum_left_alone_in_f32_fails_before_its_numbers_underflow() {
    // Rank 1 never steps: rank 0 gives half its mass away each step and nothing comes
    // back, so p halves; in f32 that must be an error long before 0/0.
    let out = fogkit::run(2, |bf| {
        bf.set_topology(topology::ring(2))?;
        let mut x = vec![1.0f32; 3];
        let local = Optimizer::new(Method::Dsgd).lr(0.1);
        let mut opt = WindowOptimizer::push_sum(bf, local, &x)?;
        let mut seen = None;
        if bf.rank() == 0 {
            for k in 0..200 {
                if let Err(e) = opt.step(&mut x, &[0.5f32; 3]) {
                    seen = Some((k, e.to_string()));
                    break;
                }
                assert!(x.iter().all(|v| v.is_finite()), "step {k}: {x:?}");
            }
        }
        let wrong = opt
            .step(&mut [0.0f32; 2], &[0.0; 2])
            .err()
            .map(|e| e.to_string());
        opt.free()?;
        Ok((seen, wrong))
    })
    .unwrap()
    .into_vec()
    .unwrap();
    let (k, e) = out[0].0.clone().expect("rank 0 was stopped");
    assert!((40..100).contains(&k), "stopped at step {k}");
    assert!(
        e.contains("rank 0 cannot finish a push-sum step: its weight p fell to"),
        "{e}"
    );
    let wrong = out[1].1.clone().unwrap_or_default();
    assert!(
        wrong.contains("expected 3 parameters (as at its creation), found 2"),
        "{wrong}"
    );
}
