//! Figures with plotly (feature `figures`): topology drawings, a timeline's Gantt chart
//! ([`gantt`]) and named [`Figure`]s; with `frames` too, convergence curves of one metric
//! for several runs (mean over ranks with a min–max band, log scale optional) and per-rank
//! curves. Save them with [`save_html`]; in an evcxr notebook a `Plot` displays itself as a
//! cell value. Never computes what it draws: numbers come from the caller or a frame.
//!
//! ```
//! # #[cfg(feature = "frames")] {
//! use fogkit::metrics::Metrics;
//! let mut m = Metrics::new("dsgd", 0);
//! for k in 0..5 {
//!     m.record(k, "loss", 1.0 / (k + 1) as f64).unwrap();
//! }
//! let fig = fogkit::plot::Convergence::new("loss").log_y(true).plot(&m.to_frame().unwrap()).unwrap();
//! assert!(fig.to_json().contains("\"name\":\"dsgd\""));
//! # }
//! ```

#[cfg(feature = "frames")]
mod convergence;
mod figure;
mod gantt;

use std::path::Path;

use plotly::common::{Line, Marker, Mode, Title};
use plotly::layout::{Axis, AxisType, Layout};
use plotly::{Plot, Scatter};

use crate::topology::Topology;
use crate::{Error, Result};

#[cfg(feature = "frames")]
pub use convergence::{per_rank, Convergence};
pub use figure::Figure;
pub use gantt::gantt;

/// Plotly's default colour cycle, so a run's band matches its line.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// The colour of the `k`-th run in a convergence figure (plotly's default cycle), to
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
