//! Reading timelines back: the spans of one rank's file, and the merge of all ranks'
//! files into one trace with a track (process) per rank.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::{Error, Result};

/// One finished span of a rank's timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The rank whose file it came from.
    pub rank: usize,
    /// The thread it ran on (`fogkit-rank-0`, `fogkit-comm-0`, ...).
    pub thread: String,
    /// The span's name (an op, a phase such as `transfer`, or a span of the caller's).
    pub name: String,
    /// Start, in microseconds since the rank started recording.
    pub start_us: f64,
    /// End, in microseconds since the rank started recording.
    pub end_us: f64,
    /// How deep it sits in its thread's stack of spans (0: outermost).
    pub depth: usize,
}

impl Span {
    /// Whether the two spans were open at the same time.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start_us < other.end_us && other.start_us < self.end_us
    }

    /// Every finished span in rank `rank`'s file, in the order they started.
    pub fn read(path: &Path, rank: usize) -> Result<Vec<Span>> {
        let events = read_events(path)?;
        let mut names: HashMap<u64, String> = HashMap::new();
        for e in &events {
            if e["ph"] == "M" && e["name"] == "thread_name" {
                if let (Some(tid), Some(n)) = (e["tid"].as_u64(), e["args"]["name"].as_str()) {
                    names.insert(tid, n.to_string());
                }
            }
        }
        let mut open: HashMap<u64, Vec<(String, f64)>> = HashMap::new();
        let mut spans = Vec::new();
        for e in &events {
            let (Some(tid), Some(ts)) = (e["tid"].as_u64(), e["ts"].as_f64()) else {
                continue;
            };
            let name = e["name"].as_str().unwrap_or_default().to_string();
            let stack = open.entry(tid).or_default();
            match e["ph"].as_str() {
                Some("B") => stack.push((name, ts)),
                Some("E") => {
                    let Some((n, start)) = stack.pop() else {
                        return Err(bad(path, format!("span {name} ends without a start")));
                    };
                    spans.push(Span {
                        rank,
                        thread: names.get(&tid).cloned().unwrap_or_else(|| tid.to_string()),
                        name: n,
                        start_us: start,
                        end_us: ts,
                        depth: stack.len(),
                    });
                }
                _ => {}
            }
        }
        spans.sort_by(|a, b| a.start_us.total_cmp(&b.start_us));
        Ok(spans)
    }
}

fn bad(path: &Path, what: String) -> Error {
    Error::Data(format!("timeline {}: {what}", path.display()))
}

/// The trace events of one file (a JSON array, as Chrome's trace format writes it).
fn read_events(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(path, format!("expected a readable file, found {e}")))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(v)) => Ok(v),
        Ok(other) => Err(bad(
            path,
            format!(
                "expected a JSON array of trace events, found {}",
                kind(&other)
            ),
        )),
        Err(e) => Err(bad(path, format!("expected trace-event JSON, found {e}"))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

/// Merges per-rank timelines (`files[k]` is rank `k`'s) into one trace at `out`, with a
/// track per rank named `rank k`; returns the number of events written.
///
/// ```no_run
/// use std::path::PathBuf;
/// let files: Vec<PathBuf> = (0..4).map(|r| fogkit::timeline::file_for("tl-".as_ref(), r)).collect();
/// fogkit::timeline::merge(&files, "timeline.json".as_ref()).unwrap();
/// ```
pub fn merge(files: &[impl AsRef<Path>], out: &Path) -> Result<usize> {
    let mut all = Vec::new();
    for (rank, f) in files.iter().enumerate() {
        all.push(json!({
            "ph": "M", "pid": rank, "name": "process_name",
            "args": { "name": format!("rank {rank}") },
        }));
        all.push(json!({
            "ph": "M", "pid": rank, "name": "process_sort_index",
            "args": { "sort_index": rank },
        }));
        for mut e in read_events(f.as_ref())? {
            e["pid"] = json!(rank);
            all.push(e);
        }
    }
    let text = serde_json::to_string(&all)
        .map_err(|e| Error::Data(format!("timeline: could not write JSON: {e}")))?;
    std::fs::write(out, text).map_err(|e| bad(out, format!("could not write it: {e}")))?;
    Ok(all.len())
}
