//! How a job's ranks are run: [`Config`], read from the environment by default.

use std::path::PathBuf;
use std::time::Duration;

/// How ranks are run.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a collective waits for the other ranks before it fails with
    /// [`Error::Timeout`](crate::Error::Timeout). Default: 120 s, or `FOGKIT_TIMEOUT`
    /// (seconds) when set.
    pub timeout: Duration,
    /// Stack size of each rank's thread (default 16 MiB).
    pub stack_size: usize,
    /// In-process ranks per emulated machine (default: all on one machine, or
    /// `FOGKIT_LOCAL_SIZE`); must divide the number of ranks. Under MPI the machines are
    /// the hosts.
    pub local_size: Option<usize>,
    /// Writes each rank's timeline to `{prefix}{rank}.json` (Chrome trace events, for
    /// Perfetto or chrome://tracing), as BlueFog's `BLUEFOG_TIMELINE`. Default: off, or
    /// `FOGKIT_TIMELINE` (the prefix) when set.
    pub timeline: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let timeout = std::env::var("FOGKIT_TIMEOUT")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(120));
        let local_size = std::env::var("FOGKIT_LOCAL_SIZE")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        let timeline = std::env::var_os("FOGKIT_TIMELINE")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        Config {
            timeout,
            stack_size: 16 << 20,
            local_size,
            timeline,
        }
    }
}

impl Config {
    /// Sets the collective timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Groups in-process ranks into emulated machines of `local_size` ranks.
    pub fn local_size(mut self, local_size: usize) -> Self {
        self.local_size = Some(local_size);
        self
    }

    /// Records each rank's timeline to `{prefix}{rank}.json`.
    pub fn timeline(mut self, prefix: impl Into<PathBuf>) -> Self {
        self.timeline = Some(prefix.into());
        self
    }
}
