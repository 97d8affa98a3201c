//! A timeline as a Gantt figure: one row per rank's thread, one bar per span, a colour
//! per span name (ops, phases, the caller's compute spans). It draws what
//! [`Span::read`](crate::timeline::Span::read) gives; it never reads files itself.

use std::collections::BTreeMap;

use plotly::common::{Line, Mode, Title};
use plotly::layout::{Axis, Layout};
use plotly::{Plot, Scatter};

use super::color;
use crate::timeline::Span;

/// One trace's bar ends (ms) and rows, `None` between bars.
type Bars = (Vec<Option<f64>>, Vec<Option<String>>);

/// A Gantt figure of `spans` (from one rank or several): rows `rank r: thread`, time in
/// milliseconds; nested spans (phases inside an op) draw thinner on top of their parent.
///
/// ```
/// use fogkit::timeline::Span;
/// let s = |name: &str, a: f64, b: f64, depth| Span {
///     rank: 0, thread: "fogkit-rank-0".into(), name: name.into(), start_us: a, end_us: b, depth,
/// };
/// let fig = fogkit::plot::gantt(&[s("allreduce", 0.0, 50.0, 0), s("transfer", 10.0, 40.0, 1)]);
/// let json = fig.to_json();
/// assert!(json.contains("\"name\":\"allreduce\"") && json.contains("rank 0: fogkit-rank-0"));
/// ```
pub fn gantt(spans: &[Span]) -> Plot {
    // One trace per (name, depth), its bars separated by gaps.
    let mut traces: BTreeMap<(usize, &str), Bars> = BTreeMap::new();
    for s in spans {
        let row = format!("rank {}: {}", s.rank, s.thread);
        let (x, y) = traces.entry((s.depth, s.name.as_str())).or_default();
        x.extend([Some(s.start_us / 1e3), Some(s.end_us / 1e3), None]);
        y.extend([Some(row.clone()), Some(row), None]);
    }
    let names: Vec<&str> = {
        let mut v: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut plot = Plot::new();
    for ((depth, name), (x, y)) in traces {
        let k = names.iter().position(|n| *n == name).unwrap_or(0);
        plot.add_trace(
            Scatter::new(x, y)
                .name(name)
                .mode(Mode::Lines)
                .connect_gaps(false)
                .line(Line::new().color(color(k)).width(18.0 / (depth + 1) as f64)),
        );
    }
    plot.set_layout(
        Layout::new()
            .title(Title::from("timeline"))
            .x_axis(Axis::new().title(Title::from("ms since the rank started recording")))
            .y_axis(Axis::new().title(Title::from("rank: thread"))),
    );
    plot
}
