#![allow(dead_code)]
//! Test helpers.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use fogkit::topology::{self, Topology};

/// Runs `f` and fails the test if it has not finished within `secs` seconds, so that no
/// test can hang.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => resume_unwind(p),
        Err(_) => panic!("did not finish within {secs} s: a hang"),
    }
}

/// Every generator at size `n`, with its name.
pub fn all_generators(n: usize) -> Vec<(&'static str, Topology)> {
    vec![
        ("exponential_two", topology::exponential_two(n)),
        ("exponential(3)", topology::exponential(n, 3).unwrap()),
        ("symmetric_exponential", topology::symmetric_exponential(n)),
        ("ring", topology::ring(n)),
        (
            "ring_left",
            topology::ring_directed(n, topology::RingStyle::Left),
        ),
        (
            "ring_right",
            topology::ring_directed(n, topology::RingStyle::Right),
        ),
        ("star", topology::star(n)),
        ("mesh_grid_2d", topology::mesh_grid_2d(n)),
        ("fully_connected", topology::fully_connected(n)),
    ]
}

/// A deterministic, irregular value for rank `r`, component `k`.
pub fn value(r: usize, k: usize) -> f64 {
    ((r * 7 + k * 3) as f64 * 1.37).sin() * 10.0 + r as f64
}
