//! The timeline, as BlueFog's `BLUEFOG_TIMELINE`: with `FOGKIT_TIMELINE=prefix` (or
//! [`Config::timeline`](crate::Config::timeline)) each rank writes `{prefix}{rank}.json`,
//! Chrome trace events that Perfetto (ui.perfetto.dev) and chrome://tracing open. It is a
//! `tracing` layer (`record`, which keeps events in memory and writes the file when the
//! rank is done) over the spans fogkit already emits: one
//! span per op named after it, with the transport's phases inside (`check`, `wait_peers`,
//! `transfer`, `reduce`, `wait_readers`), nonblocking ops on the communication thread's
//! track, `wait` where a rank waits for a handle; and any span the caller opens, such as
//! the training loop's `forward`, `backward` and `step`:
//!
//! ```
//! let _s = fogkit::tracing::info_span!("forward").entered();
//! ```
//!
//! [`merge`] joins the per-rank files into one with a track per rank; [`Span::read`]
//! reads a file back (for tests and figures). Recording never changes what ops compute.

mod read;
mod record;

use std::path::{Path, PathBuf};

use std::sync::Arc;

use tracing::Dispatch;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::prelude::*;

pub use read::{merge, Span};

use crate::{Error, Result};

/// The file rank `rank` writes for `prefix`: `{prefix}{rank}.json`.
///
/// ```
/// let p = fogkit::timeline::file_for(std::path::Path::new("/tmp/run-"), 3);
/// assert_eq!(p, std::path::PathBuf::from("/tmp/run-3.json"));
/// ```
pub fn file_for(prefix: &Path, rank: usize) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(format!("{rank}.json"));
    PathBuf::from(s)
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings and errors).
fn log_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter)
}

/// Installs fogkit's logger as the process's default `tracing` subscriber, so that
/// `RUST_LOG` works and warnings reach the user; does nothing if one is installed
/// already. fogkit's programs and examples call it first.
///
/// ```
/// fogkit::timeline::init_logging();
/// fogkit::timeline::init_logging(); // a second call is harmless
/// ```
pub fn init_logging() {
    let _ = tracing_subscriber::registry().with(log_layer()).try_init();
}

/// One rank's recording: a subscriber keeping its spans, plus the logger.
pub(crate) struct Recorder {
    dispatch: Dispatch,
    shared: Arc<record::Shared>,
    path: PathBuf,
}

impl Recorder {
    /// Starts recording rank `rank` to [`file_for`]`(prefix, rank)`.
    pub(crate) fn start(prefix: &Path, rank: usize) -> Result<Recorder> {
        let path = file_for(prefix, rank);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::InvalidArgument(format!(
                    "timeline: could not create the folder {}: {e}",
                    dir.display()
                ))
            })?;
        }
        // Fail now, not after the run, when the file cannot be written.
        std::fs::File::create(&path).map_err(|e| {
            Error::InvalidArgument(format!(
                "timeline: expected to write {}, found {e}",
                path.display()
            ))
        })?;
        let shared = record::Shared::new();
        let subscriber = tracing_subscriber::registry()
            .with(record::Recording(Arc::clone(&shared)).with_filter(LevelFilter::TRACE))
            .with(log_layer());
        Ok(Recorder {
            dispatch: Dispatch::new(subscriber),
            shared,
            path,
        })
    }

    /// Runs `body` on this thread with the recording as its subscriber (threads it
    /// starts that take the current dispatcher, as the communication thread does, record
    /// too), then writes the file.
    pub(crate) fn record<T>(self, body: impl FnOnce() -> T) -> (T, Result<()>) {
        let out = tracing::dispatcher::with_default(&self.dispatch, body);
        let written = self.shared.write(&self.path);
        (out, written)
    }
}
