//! The timeline on the local transport: 4 in-process ranks write 4 Chrome trace files
//! with a span per op and its phases, the nonblocking transfer overlaps the caller's
//! compute, and the per-rank files merge into one trace with a track per rank.

use fogkit::Config;
use fogkit_tests::{check_timeline, timeline_step};

#[test]
fn four_ranks_write_four_timelines_with_overlapping_transfer_and_compute() {
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = dir.path().join("tl-");
    let out = fogkit::run_with(Config::default().timeline(&prefix), 4, timeline_step)
        .unwrap()
        .into_vec()
        .unwrap();
    // exp2(4): rank i averages itself with ranks i-1 and i-2, weights 1/3.
    let want = [5.0 / 3.0, 4.0 / 3.0, 1.0, 2.0];
    for (r, (x, w)) in out.iter().zip(want).enumerate() {
        assert!((x - w).abs() < 1e-6, "rank {r}: {x} against {w}");
    }
    check_timeline(&prefix, 4);

    let files: Vec<_> = (0..4)
        .map(|r| fogkit::timeline::file_for(&prefix, r))
        .collect();
    let merged = dir.path().join("all.json");
    let events = fogkit::timeline::merge(&files, &merged).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    let all = v.as_array().expect("an array");
    assert_eq!(all.len(), events);
    let pids: std::collections::BTreeSet<u64> =
        all.iter().filter_map(|e| e["pid"].as_u64()).collect();
    assert_eq!(pids.into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
}

#[test]
fn a_timeline_that_cannot_be_written_is_an_error_naming_the_file() {
    let r = fogkit::run_with(
        Config::default().timeline("/proc/no-such-dir/tl-"),
        2,
        |bf| bf.barrier(),
    );
    let e = r.expect_err("expected an error").to_string();
    assert!(
        e.contains("timeline") && e.contains("/proc/no-such-dir"),
        "{e}"
    );
}
