//! Metrics: a per-rank recorder cheap enough to call every iteration, gathered into one
//! polars `DataFrame` (columns `run`, `rank`, `step`, `metric`, `value`), saved atomically
//! as parquet or CSV, with summaries over ranks.
//!
//! ```
//! use fogkit::prelude::*;
//! use fogkit::metrics::Metrics;
//! let frames = fogkit::run(4, |bf| -> fogkit::Result<_> {
//!     let mut m = Metrics::new("dsgd", bf.rank());
//!     let mut x = vec![bf.rank() as f64];
//!     for k in 0..10 {
//!         m.record(k, "consensus_error", bf.consensus_error(&x)?);
//!         x = bf.neighbor_allreduce(&x)?;
//!     }
//!     m.gather(bf) // the whole frame on rank 0, None elsewhere
//! })
//! .unwrap();
//! let df = frames[0].as_ref().unwrap();
//! assert_eq!(df.height(), 4 * 10);
//! ```

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polars::prelude::*;

use crate::fog::Fog;
use crate::{Error, Result};

/// The frame's columns, in order.
pub const COLUMNS: [&str; 5] = ["run", "rank", "step", "metric", "value"];

fn data_err(what: impl std::fmt::Display) -> impl FnOnce(PolarsError) -> Error {
    move |e| Error::Data(format!("{what}: {e}"))
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Data(format!("{what}: {e}"))
}

struct Autosave {
    path: PathBuf,
    every: Duration,
    last: Instant,
}

/// One rank's records, column by column. Metric names are interned: recording a known
/// name allocates nothing beyond the columns' amortized growth.
pub struct Metrics {
    run: String,
    rank: usize,
    names: Vec<String>,
    steps: Vec<u64>,
    ids: Vec<u32>,
    values: Vec<f64>,
    autosave: Option<Autosave>,
}

impl Metrics {
    /// An empty recorder for `rank`, labelled `run` (e.g. the algorithm's name).
    pub fn new(run: impl Into<String>, rank: usize) -> Self {
        Metrics {
            run: run.into(),
            rank,
            names: Vec::new(),
            steps: Vec::new(),
            ids: Vec::new(),
            values: Vec::new(),
            autosave: None,
        }
    }

    /// Also writes everything recorded so far to `path` (parquet or CSV by extension;
    /// `{rank}` in the path becomes the rank) whenever `every` has passed since the last
    /// write, atomically, so a crash loses at most the last interval.
    pub fn autosave(mut self, path: impl AsRef<Path>, every: Duration) -> Self {
        let p = path
            .as_ref()
            .to_string_lossy()
            .replace("{rank}", &self.rank.to_string());
        self.autosave = Some(Autosave {
            path: PathBuf::from(p),
            every,
            last: Instant::now(),
        });
        self
    }

    /// The run label.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn id(&mut self, metric: &str) -> u32 {
        match self.names.iter().position(|n| n == metric) {
            Some(i) => i as u32,
            None => {
                self.names.push(metric.to_string());
                (self.names.len() - 1) as u32
            }
        }
    }

    /// Records `value` of `metric` at `step`. With [`autosave`](Self::autosave), writes
    /// the file when the interval has passed (an error there is returned, nothing lost).
    pub fn record(&mut self, step: u64, metric: &str, value: f64) -> Result<()> {
        let id = self.id(metric);
        self.steps.push(step);
        self.ids.push(id);
        self.values.push(value);
        self.maybe_save()
    }

    /// Records several metrics at one step.
    pub fn record_all(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        for &(m, v) in values {
            let id = self.id(m);
            self.steps.push(step);
            self.ids.push(id);
            self.values.push(v);
        }
        self.maybe_save()
    }

    fn maybe_save(&mut self) -> Result<()> {
        let due = self
            .autosave
            .as_ref()
            .is_some_and(|a| a.last.elapsed() >= a.every);
        if due {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the autosave file now (no-op without [`autosave`](Self::autosave)).
    pub fn flush(&mut self) -> Result<()> {
        let Some(path) = self.autosave.as_ref().map(|a| a.path.clone()) else {
            return Ok(());
        };
        let mut df = self.to_frame()?;
        save(&mut df, &path)?;
        if let Some(a) = self.autosave.as_mut() {
            a.last = Instant::now();
        }
        Ok(())
    }

    /// This rank's records as a frame.
    pub fn to_frame(&self) -> Result<DataFrame> {
        let n = self.len();
        let names: Vec<&str> = self
            .ids
            .iter()
            .map(|&i| self.names[i as usize].as_str())
            .collect();
        df!(
            "run" => vec![self.run.as_str(); n],
            "rank" => vec![self.rank as u32; n],
            "step" => &self.steps,
            "metric" => names,
            "value" => &self.values,
        )
        .map_err(data_err("metrics: could not build the frame"))
    }

    /// Every rank's records in one frame on rank 0 (`None` on the others). Collective.
    pub fn gather(&self, bf: &Fog) -> Result<Option<DataFrame>> {
        let Some(parts) = bf.gather_bytes(&self.encode(), 0)? else {
            return Ok(None);
        };
        let frames = parts
            .iter()
            .map(|p| Metrics::decode(p)?.to_frame())
            .collect::<Result<Vec<_>>>()?;
        concat(&frames).map(Some)
    }

    /// A compact binary form for the wire: run, rank, names, then the columns.
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.len() * 20);
        let put_str = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&(s.len() as u64).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        };
        put_str(&mut b, &self.run);
        b.extend_from_slice(&(self.rank as u64).to_le_bytes());
        b.extend_from_slice(&(self.names.len() as u64).to_le_bytes());
        for n in &self.names {
            put_str(&mut b, n);
        }
        b.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for i in 0..self.len() {
            b.extend_from_slice(&self.steps[i].to_le_bytes());
            b.extend_from_slice(&self.ids[i].to_le_bytes());
            b.extend_from_slice(&self.values[i].to_le_bytes());
        }
        b
    }

    fn decode(b: &[u8]) -> Result<Metrics> {
        let mut r = Reader { b, at: 0 };
        let run = r.string()?;
        let rank = r.u64()? as usize;
        let k = r.u64()? as usize;
        let names = (0..k).map(|_| r.string()).collect::<Result<Vec<_>>>()?;
        let n = r.u64()? as usize;
        let mut m = Metrics::new(run, rank);
        m.names = names;
        for _ in 0..n {
            m.steps.push(r.u64()?);
            m.ids.push(u32::from_le_bytes(r.array::<4>()?));
            m.values.push(f64::from_le_bytes(r.array::<8>()?));
        }
        if m.ids.iter().any(|&i| i as usize >= m.names.len()) {
            return Err(r.short());
        }
        Ok(m)
    }
}

/// Reads the wire form back.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn short(&self) -> Error {
        Error::Data(format!(
            "metrics: a gathered record of {} bytes is cut short or corrupt",
            self.b.len()
        ))
    }

    fn array<const K: usize>(&mut self) -> Result<[u8; K]> {
        let s = self
            .b
            .get(self.at..self.at + K)
            .and_then(|s| <[u8; K]>::try_from(s).ok())
            .ok_or_else(|| self.short())?;
        self.at += K;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array::<8>()?))
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u64()? as usize;
        let s = self
            .b
            .get(self.at..self.at + len)
            .ok_or_else(|| self.short())?;
        self.at += len;
        String::from_utf8(s.to_vec()).map_err(|_| self.short())
    }
}

/// Stacks frames (e.g. several runs) into one.
pub fn concat(frames: &[DataFrame]) -> Result<DataFrame> {
    let mut it = frames.iter();
    let mut all = it
        .next()
        .cloned()
        .unwrap_or_else(|| Metrics::new("", 0).to_frame().unwrap_or_default());
    for f in it {
        all.vstack_mut(f)
            .map_err(data_err("metrics: frames have different columns"))?;
    }
    all.rechunk_mut();
    Ok(all)
}

/// The frame [`Metrics::gather`] left on rank 0, among the ranks' results of
/// [`crate::run`]: in-process `ranks.into_vec()?`; under MPI, where each process holds
/// its own rank's, `ranks.into_iter().map(|(_, f)| f)`. An error when none holds a frame,
/// as on ranks other than 0 under MPI.
///
/// ```
/// use fogkit::prelude::*;
/// let results = fogkit::run(3, |bf: &Fog| -> fogkit::Result<_> {
///     let mut m = Metrics::new("demo", bf.rank());
///     m.record(0, "x", bf.rank() as f64)?;
///     m.gather(bf)
/// })
/// .unwrap();
/// let df = fogkit::metrics::gathered(results.into_vec().unwrap()).unwrap();
/// assert_eq!(df.height(), 3);
/// ```
pub fn gathered(results: impl IntoIterator<Item = Option<DataFrame>>) -> Result<DataFrame> {
    let results: Vec<Option<DataFrame>> = results.into_iter().collect();
    let n = results.len();
    results.into_iter().flatten().next().ok_or_else(|| {
        Error::Data(format!(
            "metrics: expected a gathered frame among {n} rank result(s), found none \
             (gather leaves it on rank 0)"
        ))
    })
}

/// The values of `metric` in `run` recorded by `rank`, in step order.
///
/// ```
/// use fogkit::metrics::{series, Metrics};
/// let mut m = Metrics::new("demo", 0);
/// m.record(1, "x", 2.0).unwrap();
/// m.record(0, "x", 1.0).unwrap();
/// assert_eq!(series(&m.to_frame().unwrap(), "demo", "x", 0).unwrap(), vec![1.0, 2.0]);
/// ```
pub fn series(df: &DataFrame, run: &str, metric: &str, rank: usize) -> Result<Vec<f64>> {
    let rows = df
        .clone()
        .lazy()
        .filter(
            col("run")
                .eq(lit(run))
                .and(col("metric").eq(lit(metric)))
                .and(col("rank").eq(lit(rank as u32))),
        )
        .sort(["step"], SortMultipleOptions::default())
        .select([col("value")])
        .collect()
        .map_err(data_err("metrics: could not select a series"))?;
    if rows.height() == 0 {
        return Err(Error::Data(format!(
            "metrics: expected records of run {run:?}, metric {metric:?}, rank {rank}; found none"
        )));
    }
    let values = rows
        .column("value")
        .and_then(|c| c.f64().cloned())
        .map_err(data_err("metrics: value column"))?;
    Ok(values.into_no_null_iter().collect())
}

enum Format {
    Parquet,
    Csv,
}

fn format_of(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => Ok(Format::Parquet),
        Some("csv") => Ok(Format::Csv),
        other => Err(Error::Data(format!(
            "expected a file name ending in .parquet or .csv, found {:?} ({})",
            other.unwrap_or(""),
            path.display()
        ))),
    }
}

/// Writes `df` to `path` (parquet or CSV by extension) atomically: into a temporary file
/// beside it, synced, then renamed over `path`. Creates missing folders.
pub fn save(df: &mut DataFrame, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let fmt = format_of(path)?;
    let what = || format!("metrics: could not write {}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(what()))?;
    }
    let tmp = path.with_extension(format!(
        "tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut file = File::create(&tmp).map_err(io_err(what()))?;
    let written = match fmt {
        Format::Parquet => ParquetWriter::new(&mut file).finish(df).map(|_| ()),
        Format::Csv => CsvWriter::new(&mut file).include_header(true).finish(df),
    };
    let done = written
        .map_err(data_err(what()))
        .and_then(|_| file.flush().map_err(io_err(what())))
        .and_then(|_| file.sync_all().map_err(io_err(what())))
        .and_then(|_| std::fs::rename(&tmp, path).map_err(io_err(what())));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Reads a frame saved by [`save`] (parquet or CSV), with the metrics columns' types.
pub fn load(path: impl AsRef<Path>) -> Result<DataFrame> {
    let path = path.as_ref();
    let what = || format!("metrics: could not read {}", path.display());
    let df = match format_of(path)? {
        Format::Parquet => {
            let f = File::open(path).map_err(io_err(what()))?;
            ParquetReader::new(f).finish().map_err(data_err(what()))?
        }
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(data_err(what()))?,
    };
    canonical(df).map_err(data_err(what()))
}

/// Casts the metrics columns to their types (CSV reading infers integers as i64).
fn canonical(df: DataFrame) -> PolarsResult<DataFrame> {
    if !COLUMNS.iter().all(|c| df.column(c).is_ok()) {
        return Ok(df);
    }
    df.lazy()
        .with_columns([
            col("run").cast(DataType::String),
            col("rank").cast(DataType::UInt32),
            col("step").cast(DataType::UInt64),
            col("metric").cast(DataType::String),
            col("value").cast(DataType::Float64),
        ])
        .collect()
}

/// Mean, min and max over ranks of every metric at every step, per run: columns `run`,
/// `metric`, `step`, `mean`, `min`, `max`, sorted by run, metric, step.
pub fn summary_by_step(df: &DataFrame) -> Result<DataFrame> {
    df.clone()
        .lazy()
        .group_by([col("run"), col("metric"), col("step")])
        .agg([
            col("value").mean().alias("mean"),
            col("value").min().alias("min"),
            col("value").max().alias("max"),
        ])
        .sort(["run", "metric", "step"], SortMultipleOptions::default())
        .collect()
        .map_err(data_err("metrics: could not summarise"))
}

/// The mean over ranks of each metric at its last step, per run: columns `run`,
/// `metric`, `step`, `value`.
pub fn final_values(df: &DataFrame) -> Result<DataFrame> {
    summary_by_step(df)?
        .lazy()
        .group_by([col("run"), col("metric")])
        .agg([col("step").last(), col("mean").last().alias("value")])
        .sort(["run", "metric"], SortMultipleOptions::default())
        .collect()
        .map_err(data_err("metrics: could not take final values"))
}

/// An HTML table of the first `max_rows` rows: what a notebook shows for a frame.
pub fn html_table(df: &DataFrame, max_rows: usize) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut h = String::from("<table>\n<thead><tr>");
    for c in df.get_column_names() {
        h += &format!("<th>{}</th>", esc(c));
    }
    h += "</tr></thead>\n<tbody>\n";
    for i in 0..df.height().min(max_rows) {
        h += "<tr>";
        for c in df.columns() {
            let v = c.get(i).map(|v| v.to_string()).unwrap_or_default();
            h += &format!("<td>{}</td>", esc(v.trim_matches('"')));
        }
        h += "</tr>\n";
    }
    h += "</tbody>\n</table>\n";
    if df.height() > max_rows {
        h += &format!("<p>{} rows x {} columns</p>\n", df.height(), df.width());
    }
    h
}

/// Rich display of frames in evcxr notebooks: `frame.evcxr_display()` (which evcxr calls
/// for a cell's value when this trait is in scope, as it is with `fogkit::prelude::*`).
pub trait FrameDisplay {
    /// Prints the frame as an HTML table (first 50 rows) with a text fallback.
    fn evcxr_display(&self);
}

impl FrameDisplay for DataFrame {
    fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}EVCXR_END_CONTENT",
            html_table(self, 50)
        );
    }
}
