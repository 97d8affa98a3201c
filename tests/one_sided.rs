//! Windows on in-process ranks: every op against hand-computed values for n = 2..8 over
//! ring, exponential-2 and a one-way ring; a stress loop with random delays checking
//! conservation every round; asynchronous push-sum reaching the average with one rank 5x
//! slower; and the errors a user can meet. (The same cases under mpirun are in mpirun.rs.)

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
