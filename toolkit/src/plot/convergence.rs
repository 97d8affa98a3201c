//! Figures of metrics frames (feature `frames` beside `figures`): a run's convergence
//! (the mean over ranks with its min–max band) and one curve per rank. Never computes a
//! metric: the frames come from [`crate::metrics`].

use plotly::common::{Fill, Line, Mode, Title};
use plotly::layout::{Axis, Layout};
use plotly::{Plot, Scatter};
use polars::prelude::*;

use super::{color, log_axis};
use crate::metrics::summary_by_step;
use crate::{Error, Result};

/// `hex` (#rrggbb) at 20% opacity, for a run's band.
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
