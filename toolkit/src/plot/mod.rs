//! Figures with plotly: convergence curves of one metric for several runs (mean over ranks
//! with a min–max band, log scale optional), per-rank curves, topology drawings, and a
//! timeline's Gantt chart ([`gantt`]). Save
//! them with [`save_html`]; in an evcxr notebook a `Plot` displays itself as a cell value.
//!
//! ```
//! use fogkit::metrics::Metrics;
//! let mut m = Metrics::new("dsgd", 0);
//! for k in 0..5 {
//!     m.record(k, "loss", 1.0 / (k + 1) as f64).unwrap();
//! }
//! let fig = fogkit::plot::Convergence::new("loss").log_y(true).plot(&m.to_frame().unwrap()).unwrap();
//! assert!(fig.to_json().contains("\"name\":\"dsgd\""));
//! ```

mod figure;
mod gantt;

use std::path::Path;

use plotly::common::{Fill, Line, Marker, Mode, Title};
use plotly::layout::{Axis, AxisType, Layout};
use plotly::{Plot, Scatter};
use polars::prelude::*;

use crate::metrics::summary_by_step;
use crate::topology::Topology;
use crate::{Error, Result};

pub use figure::Figure;
pub use gantt::gantt;

/// Plotly's default colour cycle, so a run's band matches its line.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// The colour of the `k`-th run in a [`Convergence`] figure (plotly's default cycle), to
/// draw companion lines (bounds, rates) in the same colour.
///
/// ```
/// assert_eq!(fogkit::plot::color(0), "#1f77b4");
/// assert_eq!(fogkit::plot::color(10), fogkit::plot::color(0));
/// ```
pub fn color(k: usize) -> &'static str {
    PALETTE[k % PALETTE.len()]
}

/// A logarithmic axis with tick labels as powers of ten (not plotly's SI prefixes, which
/// print 1e-6 as "1µ").
pub fn log_axis(axis: Axis) -> Axis {
    axis.type_(AxisType::Log)
        .exponent_format(plotly::common::ExponentFormat::Power)
}

fn translucent(hex: &str) -> String {
    let v = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(128);
    format!("rgba({},{},{},0.2)", v(1), v(3), v(5))
}

fn data_err(e: PolarsError) -> Error {
    Error::Data(format!("plot: {e}"))
}

fn strings(df: &DataFrame, c: &str) -> Result<Vec<String>> {
    let s = df.column(c).map_err(data_err)?;
    let ca = s.str().map_err(data_err)?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default().to_string())
        .collect())
}

fn numbers(df: &DataFrame, c: &str) -> Result<Vec<f64>> {
    let s = df
        .column(c)
        .and_then(|s| s.cast(&DataType::Float64))
        .map_err(data_err)?;
    let ca = s.f64().map_err(data_err)?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or(f64::NAN))
        .collect())
}

/// Runs in order of first appearance.
fn runs_of(df: &DataFrame) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    for r in strings(df, "run")? {
        if !seen.contains(&r) {
            seen.push(r);
        }
    }
    Ok(seen)
}

/// A convergence figure: for each run, the mean over ranks of one metric against the
/// step, with the min–max band over ranks.
#[derive(Clone, Debug)]
pub struct Convergence {
    metric: String,
    log_y: bool,
    band: bool,
    title: Option<String>,
    x_title: String,
}

impl Convergence {
    /// A figure of `metric` (linear scale, with bands).
    pub fn new(metric: impl Into<String>) -> Self {
        Convergence {
            metric: metric.into(),
            log_y: false,
            band: true,
            title: None,
            x_title: "step".into(),
        }
    }

    /// Logarithmic y axis (consensus errors, optimality gaps).
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }

    /// Draw the min–max band over ranks (default on).
    pub fn band(mut self, on: bool) -> Self {
        self.band = on;
        self
    }

    /// Figure title (default: the metric).
    pub fn title(mut self, t: impl Into<String>) -> Self {
        self.title = Some(t.into());
        self
    }

    /// Title of the x axis, which shows the frame's `step` column (default "step"; e.g.
    /// "epoch" when the records were made once per epoch).
    pub fn x_title(mut self, t: impl Into<String>) -> Self {
        self.x_title = t.into();
        self
    }

    /// Builds the figure from a metrics frame (several runs may share it). Errors when
    /// the frame has no such metric.
    pub fn plot(&self, df: &DataFrame) -> Result<Plot> {
        let rows = df
            .clone()
            .lazy()
            .filter(col("metric").eq(lit(self.metric.as_str())))
            .collect()
            .map_err(data_err)?;
        if rows.height() == 0 {
            let have = strings(df, "metric").unwrap_or_default();
            let mut have: Vec<String> = have.into_iter().collect();
            have.sort();
            have.dedup();
            return Err(Error::Data(format!(
                "plot: expected metric {:?} in the frame, found only {have:?}",
                self.metric
            )));
        }
        let summary = summary_by_step(&rows)?;
        let mut plot = Plot::new();
        for (i, run) in runs_of(&rows)?.iter().enumerate() {
            let s = summary
                .clone()
                .lazy()
                .filter(col("run").eq(lit(run.as_str())))
                .collect()
                .map_err(data_err)?;
            let (x, mean) = (numbers(&s, "step")?, numbers(&s, "mean")?);
            let color = color(i);
            if self.band {
                let (lo, hi) = (numbers(&s, "min")?, numbers(&s, "max")?);
                plot.add_trace(
                    Scatter::new(x.clone(), lo)
                        .name(format!("{run} min"))
                        .mode(Mode::Lines)
                        .line(Line::new().width(0.0).color(color))
                        .legend_group(run.as_str())
                        .show_legend(false),
                );
                plot.add_trace(
                    Scatter::new(x.clone(), hi)
                        .name(format!("{run} max"))
                        .mode(Mode::Lines)
                        .line(Line::new().width(0.0).color(color))
                        .fill(Fill::ToNextY)
                        .fill_color(translucent(color))
                        .legend_group(run.as_str())
                        .show_legend(false),
                );
            }
            plot.add_trace(
                Scatter::new(x, mean)
                    .name(run.as_str())
                    .mode(Mode::Lines)
                    .line(Line::new().width(2.0).color(color))
                    .legend_group(run.as_str()),
            );
        }
        let mut y = Axis::new().title(Title::from(self.metric.as_str()));
        if self.log_y {
            y = log_axis(y);
        }
        plot.set_layout(
            Layout::new()
                .title(Title::from(self.title.as_deref().unwrap_or(&self.metric)))
                .x_axis(Axis::new().title(Title::from(self.x_title.as_str())))
                .y_axis(y),
        );
        Ok(plot)
    }
}

/// One curve per rank of `metric` in `run`.
pub fn per_rank(df: &DataFrame, run: &str, metric: &str) -> Result<Plot> {
    let rows = df
        .clone()
        .lazy()
        .filter(col("run").eq(lit(run)).and(col("metric").eq(lit(metric))))
        .sort(["rank", "step"], SortMultipleOptions::default())
        .collect()
        .map_err(data_err)?;
    if rows.height() == 0 {
        return Err(Error::Data(format!(
            "plot: expected rows of run {run:?} and metric {metric:?}, found none"
        )));
    }
    let ranks = numbers(&rows, "rank")?;
    let steps = numbers(&rows, "step")?;
    let values = numbers(&rows, "value")?;
    let mut plot = Plot::new();
    let mut start = 0;
    while start < ranks.len() {
        let r = ranks[start];
        let end = ranks[start..]
            .iter()
            .position(|&v| v != r)
            .map_or(ranks.len(), |p| start + p);
        plot.add_trace(
            Scatter::new(steps[start..end].to_vec(), values[start..end].to_vec())
                .name(format!("rank {r}"))
                .mode(Mode::Lines),
        );
        start = end;
    }
    plot.set_layout(
        Layout::new()
            .title(Title::from(format!("{metric} per rank ({run})").as_str()))
            .x_axis(Axis::new().title(Title::from("step")))
            .y_axis(Axis::new().title(Title::from(metric))),
    );
    Ok(plot)
}

/// Where to put a topology's nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeLayout {
    /// On a circle, rank 0 at the top, clockwise.
    Circle,
    /// On a grid with this many columns (rank `r` at row `r / cols`, column `r % cols`).
    Grid(usize),
}

/// Draws a topology: ranks as numbered nodes, each edge `j -> i` (rank `i` receives from
/// `j`) as a line whose width follows `w_ij`, its weight in the hover text.
pub fn topology(t: &Topology, layout: NodeLayout) -> Plot {
    let mut plot = Plot::new();
    add_topology(&mut plot, t, layout, (0.0, 0.0));
    plot.set_layout(
        Layout::new()
            .title(Title::from(
                format!("{} ranks, rho = {:.4}", t.size(), t.mixing_rate()).as_str(),
            ))
            .x_axis(Axis::new().visible(false))
            .y_axis(Axis::new().visible(false).scale_anchor("x")),
    );
    plot
}

/// Several topologies side by side, `cols` to a row, each captioned with its name and
/// mixing rate: one figure for a whole family of graphs.
///
/// ```
/// use fogkit::plot::{topologies, NodeLayout};
/// use fogkit::topology;
/// let fig = topologies(
///     &[("ring", topology::ring(6), NodeLayout::Circle), ("star", topology::star(6), NodeLayout::Circle)],
///     2,
/// );
/// assert!(fig.to_json().contains("ring, rho = 0.6667"));
/// ```
pub fn topologies(items: &[(&str, Topology, NodeLayout)], cols: usize) -> Plot {
    let cols = cols.max(1);
    let mut plot = Plot::new();
    for (k, (name, t, layout)) in items.iter().enumerate() {
        let origin = (3.0 * (k % cols) as f64, -3.2 * (k / cols) as f64);
        add_topology(&mut plot, t, *layout, origin);
        plot.add_trace(
            Scatter::new(vec![origin.0], vec![origin.1 + 1.45])
                .mode(Mode::Text)
                .text(format!("{name}, rho = {:.4}", t.mixing_rate()))
                .name(*name)
                .show_legend(false),
        );
    }
    let rows = items.len().div_ceil(cols).max(1);
    plot.set_layout(
        Layout::new()
            .show_legend(false)
            .height(320 * rows)
            .x_axis(Axis::new().visible(false))
            .y_axis(Axis::new().visible(false).scale_anchor("x")),
    );
    plot
}

/// Node positions in a box of about [-1, 1]^2 around `origin`.
fn positions(n: usize, layout: NodeLayout, origin: (f64, f64)) -> Vec<(f64, f64)> {
    (0..n)
        .map(|r| match layout {
            NodeLayout::Circle => {
                let a = std::f64::consts::FRAC_PI_2
                    - 2.0 * std::f64::consts::PI * r as f64 / n.max(1) as f64;
                (origin.0 + a.cos(), origin.1 + a.sin())
            }
            NodeLayout::Grid(cols) => {
                let c = cols.max(1);
                let rows = n.div_ceil(c).max(1);
                let span = (c.max(rows) - 1).max(1) as f64;
                (
                    origin.0 - 1.0 + 2.0 * (r % c) as f64 / span,
                    origin.1 + 1.0 - 2.0 * (r / c) as f64 / span,
                )
            }
        })
        .collect()
}

fn add_topology(plot: &mut Plot, t: &Topology, layout: NodeLayout, origin: (f64, f64)) {
    let n = t.size();
    let pos = positions(n, layout, origin);
    for i in 0..n {
        for j in t.in_neighbors(i) {
            let w = t.weight(i, j);
            let ((x0, y0), (x1, y1)) = (pos[j], pos[i]);
            plot.add_trace(
                Scatter::new(vec![x0, x1], vec![y0, y1])
                    .mode(Mode::Lines)
                    .line(Line::new().width(0.5 + 6.0 * w).color("#888888"))
                    .hover_text(format!("{j} -> {i}: w = {w:.4}"))
                    .name(format!("{j}->{i}"))
                    .show_legend(false),
            );
        }
    }
    plot.add_trace(
        Scatter::new(
            pos.iter().map(|p| p.0).collect(),
            pos.iter().map(|p| p.1).collect(),
        )
        .mode(Mode::MarkersText)
        .text_array((0..n).map(|r| r.to_string()).collect())
        .marker(
            Marker::new()
                .size(if n > 12 { 16 } else { 24 })
                .color("#1f77b4"),
        )
        .text_font(plotly::common::Font::new().color("#ffffff"))
        .name("ranks")
        .hover_text_array(
            (0..n)
                .map(|r| format!("rank {r}, self weight {:.4}", t.weight(r, r)))
                .collect(),
        )
        .show_legend(false),
    );
}

/// Writes `plot` as a standalone HTML page, atomically (temporary file, then rename).
/// Built with the `embed-js` feature the page carries plotly.js and works offline;
/// otherwise it loads plotly.js from its CDN.
pub fn save_html(plot: &Plot, path: impl AsRef<Path>) -> Result<()> {
    write_atomically(path.as_ref(), plot.to_html().as_bytes())
}

/// Writes `bytes` to `path` through a temporary file and a rename, creating the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let what =
        |e: std::io::Error| Error::Data(format!("plot: could not write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(what)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(what)?;
    std::fs::rename(&tmp, path).map_err(what)
}
