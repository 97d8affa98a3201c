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

/// Trains an MLP for 8 steps on 4 in-process ranks with `method`, writing timelines under
/// `prefix`, and returns each rank's spans.
fn training_spans(
    method: fogkit::optim::Method,
    prefix: &std::path::Path,
) -> Vec<Vec<fogkit::timeline::Span>> {
    use fogkit::data::{mnist, partition_iid};
    use fogkit::nn::MlpNet;
    use fogkit::optim::Optimizer;
    use fogkit::train::{build, train, Training};
    let data = mnist().unwrap().standardized();
    fogkit::run_with(
        Config::default().timeline(prefix),
        4,
        |bf| -> fogkit::Result<()> {
            bf.set_topology(fogkit::topology::ring(4))?;
            let share = partition_iid(data.train.len(), 4, 1)[bf.rank()].clone();
            let mut model: MlpNet = build(bf, 3)?;
            let mut opt = Optimizer::new(method).lr(0.05);
            let cfg = Training {
                epochs: 1,
                batch: 64,
                seed: 1,
                steps_per_epoch: Some(8),
            };
            let test = data.test.subset(&(0..100).collect::<Vec<_>>());
            train(
                bf,
                &mut model,
                &mut opt,
                &data.train.subset(&share),
                &test,
                &cfg,
                |_| {},
            )?;
            Ok(())
        },
    )
    .unwrap();
    (0..4)
        .map(|r| fogkit::timeline::Span::read(&fogkit::timeline::file_for(prefix, r), r).unwrap())
        .collect()
}

#[test]
fn adapt_while_combine_training_overlaps_its_exchange_with_the_gradient() {
    use fogkit::optim::Method;
    let dir = tempfile::tempdir().expect("temp dir");
    // AWC-DmSGD: W x runs on the communication thread during forward and backward.
    let mut overlapped = 0;
    for (r, spans) in training_spans(Method::AwcDmSgd, &dir.path().join("awc-"))
        .iter()
        .enumerate()
    {
        let comm = format!("fogkit-comm-{r}");
        let exchanges: Vec<_> = spans
            .iter()
            .filter(|s| s.name == "neighbor_allreduce" && s.thread == comm && s.depth == 0)
            .collect();
        assert_eq!(
            exchanges.len(),
            8,
            "rank {r}: one exchange per step on {comm}"
        );
        // The rank waits for each exchange inside its step, after the gradient.
        let waits = spans
            .iter()
            .filter(|s| s.name == "wait" && s.thread != comm)
            .count();
        assert!(waits >= 8, "rank {r}: {waits} waits for 8 exchanges");
        let (forward, backward): (Vec<_>, Vec<_>) = (
            spans
                .iter()
                .filter(|s| s.name == "forward" && s.thread != comm)
                .collect(),
            spans
                .iter()
                .filter(|s| s.name == "backward" && s.thread != comm)
                .collect(),
        );
        assert_eq!((forward.len(), backward.len()), (8, 8), "rank {r}");
        // How much runs at once depends on free cores (4 ranks and their 4 communication
        // threads share 2 here), so the overlap is counted over all ranks.
        overlapped += exchanges
            .iter()
            .filter(|e| forward.iter().chain(&backward).any(|c| e.overlaps(c)))
            .count();
    }
    assert!(
        overlapped >= 1,
        "no exchange overlaps a forward or backward pass"
    );
    // DmSGD (adapt then combine) needs its gradient first: its exchanges are blocking, on
    // the rank's thread inside its step.
    for (r, spans) in training_spans(Method::DmSgd, &dir.path().join("atc-"))
        .iter()
        .enumerate()
    {
        let comm = format!("fogkit-comm-{r}");
        assert!(
            !spans
                .iter()
                .any(|s| s.name == "neighbor_allreduce" && s.thread == comm),
            "rank {r}: DmSGD exchanged on the communication thread"
        );
        assert_eq!(
            spans
                .iter()
                .filter(|s| s.name == "neighbor_allreduce")
                .count(),
            8,
            "rank {r}"
        );
    }
}
