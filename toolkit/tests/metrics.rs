//! Metrics frames, files and figures.

mod common;

use std::time::Duration;

use common::within;
use fogkit::metrics::{self, Metrics};
use fogkit::plot::{self, Convergence, NodeLayout};
use fogkit::polars::prelude::*;
use fogkit::prelude::*;

fn value(rank: usize, step: u64, m: usize) -> f64 {
    rank as f64 * 100.0 + step as f64 + m as f64 * 0.5
}

/// 4 ranks x 10 steps x 2 metrics, gathered on rank 0.
fn gathered(run: &str) -> DataFrame {
    let frames = fogkit::run(4, |bf| -> fogkit::Result<_> {
        let mut m = Metrics::new(run, bf.rank());
        for k in 0..10u64 {
            m.record(k, "loss", value(bf.rank(), k, 0))?;
            m.record_all(k, &[("accuracy", value(bf.rank(), k, 1))])?;
        }
        m.gather(bf)
    })
    .unwrap()
    .into_vec()
    .unwrap();
    assert!(frames[1..].iter().all(|f| f.is_none()));
    frames
        .into_iter()
        .next()
        .flatten()
        .expect("rank 0 has the frame")
}

#[test]
fn gather_brings_every_record_to_rank_0() {
    within(60, || {
        let df = gathered("dsgd");
        assert_eq!(df.height(), 4 * 10 * 2);
        assert_eq!(df.get_column_names(), metrics::COLUMNS.to_vec());
        let ranks = df.column("rank").unwrap().u32().unwrap().clone();
        let steps = df.column("step").unwrap().u64().unwrap().clone();
        let names = df.column("metric").unwrap().str().unwrap().clone();
        let values = df.column("value").unwrap().f64().unwrap().clone();
        let runs = df.column("run").unwrap().str().unwrap().clone();
        for i in 0..df.height() {
            let m = if names.get(i) == Some("loss") { 0 } else { 1 };
            let want = value(ranks.get(i).unwrap() as usize, steps.get(i).unwrap(), m);
            assert_eq!(values.get(i), Some(want), "row {i}");
            assert_eq!(runs.get(i), Some("dsgd"));
        }
        for r in 0..4u32 {
            assert_eq!(ranks.iter().filter(|&x| x == Some(r)).count(), 20);
        }
    });
}

#[test]
fn parquet_and_csv_round_trip() {
    within(60, || {
        let dir = tempfile::tempdir().unwrap();
        let mut df = gathered("dmsgd");
        for name in ["runs/a.parquet", "b.csv"] {
            let path = dir.path().join(name);
            metrics::save(&mut df, &path).unwrap();
            let back = metrics::load(&path).unwrap();
            assert_eq!(back.schema(), df.schema(), "{name}");
            assert!(back.equals(&df), "{name}: {back}");
        }
        // No temporary files are left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        let e = metrics::save(&mut df, dir.path().join("c.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expected a file name ending in .parquet or .csv"),
            "{e}"
        );
        let e = metrics::load(dir.path().join("missing.parquet"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("could not read"), "{e}");
    });
}

#[test]
fn summaries_over_ranks() {
    let df = gathered("dsgd");
    let s = metrics::summary_by_step(&df).unwrap();
    assert_eq!(s.height(), 2 * 10);
    // loss at step 3: ranks give 3, 103, 203, 303.
    let row = s
        .clone()
        .lazy()
        .filter(col("metric").eq(lit("loss")).and(col("step").eq(lit(3u64))))
        .collect()
        .unwrap();
    let get = |c: &str| row.column(c).unwrap().f64().unwrap().get(0).unwrap();
    assert_eq!((get("mean"), get("min"), get("max")), (153.0, 3.0, 303.0));
    let f = metrics::final_values(&df).unwrap();
    assert_eq!(f.height(), 2);
    let acc = f.column("value").unwrap().f64().unwrap().get(0).unwrap();
    assert_eq!(acc, 150.0 + 9.0 + 0.5); // "accuracy" sorts first
    let both = metrics::concat(&[gathered("a"), gathered("b")]).unwrap();
    assert_eq!(both.height(), 160);
}

/// The child half of the crash test: records, flushes every 10 steps, dies at step 57.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("FOGKIT_CRASH_DIR") else {
        return;
    };
    let path = std::path::Path::new(&dir).join("run-rank{rank}.parquet");
    let mut m = Metrics::new("crash", 3).autosave(&path, Duration::from_secs(3600));
    for k in 0..100u64 {
        m.record(k, "loss", k as f64).unwrap();
        if k % 10 == 9 {
            m.flush().unwrap();
        }
        if k == 57 {
            std::process::abort();
        }
    }
}

#[test]
fn a_run_killed_midway_leaves_everything_up_to_the_last_flush() {
    within(60, || {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("FOGKIT_CRASH_DIR", dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "the child must die");
        let df = metrics::load(dir.path().join("run-rank3.parquet")).unwrap();
        assert_eq!(df.height(), 50);
        let steps = df.column("step").unwrap().u64().unwrap().clone();
        assert_eq!(steps.get(49), Some(49));
        // Time-based autosave: with a zero interval every record reaches the file.
        let p = dir.path().join("t.csv");
        let mut m = Metrics::new("t", 0).autosave(&p, Duration::ZERO);
        m.record(0, "x", 1.0).unwrap();
        m.record(1, "x", 2.0).unwrap();
        assert_eq!(metrics::load(&p).unwrap().height(), 2);
    });
}

fn trace_summary(plot: &fogkit::plotly::Plot) -> Vec<(String, usize)> {
    let v: serde_json::Value = serde_json::from_str(&plot.to_json()).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or("").to_string(),
                t["x"].as_array().map_or(0, |x| x.len()),
            )
        })
        .collect()
}

#[test]
fn figures_hold_the_expected_traces() {
    let df = metrics::concat(&[gathered("dsgd"), gathered("decentlam")]).unwrap();
    let fig = Convergence::new("loss").log_y(true).plot(&df).unwrap();
    let traces = trace_summary(&fig);
    let names: Vec<&str> = traces.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "dsgd min",
            "dsgd max",
            "dsgd",
            "decentlam min",
            "decentlam max",
            "decentlam"
        ]
    );
    assert!(traces.iter().all(|t| t.1 == 10), "{traces:?}");
    assert!(fig.to_json().contains("\"type\":\"log\""));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig/convergence.html");
    plot::save_html(&fig, &path).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.contains("<html") && html.contains("\"decentlam max\""));

    let no_band = Convergence::new("accuracy").band(false).plot(&df).unwrap();
    assert_eq!(trace_summary(&no_band).len(), 2);
    let x_title = |p: &fogkit::plotly::Plot| {
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        v["layout"]["xaxis"]["title"]["text"]
            .as_str()
            .map(String::from)
    };
    assert_eq!(x_title(&no_band).as_deref(), Some("step"));
    let per_epoch = Convergence::new("accuracy")
        .x_title("epoch")
        .plot(&df)
        .unwrap();
    assert_eq!(x_title(&per_epoch).as_deref(), Some("epoch"));
    let e = Convergence::new("nope")
        .plot(&df)
        .err()
        .expect("no such metric")
        .to_string();
    assert!(
        e.contains("expected metric \"nope\"") && e.contains("\"accuracy\", \"loss\""),
        "{e}"
    );

    let per = plot::per_rank(&df, "dsgd", "loss").unwrap();
    let t = trace_summary(&per);
    assert_eq!(t.len(), 4);
    assert_eq!(t[2], ("rank 2".to_string(), 10));

    let topo = plot::topology(&topology::ring(5), NodeLayout::Circle);
    let t = trace_summary(&topo);
    assert_eq!(t.len(), 10 + 1, "10 directed edges and the nodes");
    assert_eq!(t.last().unwrap(), &("ranks".to_string(), 5));
    let grid = plot::topology(&topology::mesh_grid_2d(9), NodeLayout::Grid(3));
    assert_eq!(trace_summary(&grid).len(), 24 + 1);
}

#[test]
fn frames_show_as_html_tables() {
    let df = gathered("dsgd");
    let h = metrics::html_table(&df, 3);
    assert!(h.starts_with("<table>") && h.contains("<th>metric</th>"));
    assert_eq!(h.matches("<tr>").count(), 1 + 3);
    assert!(h.contains("80 rows x 5 columns"));
    assert!(h.contains("<td>dsgd</td>"), "{h}");
}

#[test]
fn consensus_error_and_progress() {
    let e = fogkit::run(4, |bf| bf.consensus_error(&[bf.rank() as f64, 0.0]))
        .unwrap()
        .into_vec()
        .unwrap();
    // Values 0..3, mean 1.5: sqrt((2.25 + 0.25 + 0.25 + 2.25) / 4) = sqrt(1.25).
    assert!(e.iter().all(|&v| (v - 1.25f64.sqrt()).abs() < 1e-15));
    let p = fogkit::progress::Progress::new(0, 10, "x").quiet(true);
    p.inc(3);
    assert_eq!(p.position(), 3);
    p.finish();
}
