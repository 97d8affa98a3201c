//! Progress bars for long runs outside notebooks: shown by rank 0 only, on a terminal
//! only, and never when quiet (`quiet(true)` or `FOGKIT_QUIET=1`).
//!
//! ```
//! let p = fogkit::progress::Progress::new(0, 100, "training").quiet(true);
//! for _ in 0..100 {
//!     p.inc(1);
//! }
//! p.finish();
//! ```

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that only rank 0 draws.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `total` steps for `rank` (hidden on every rank but 0).
    pub fn new(rank: usize, total: u64, label: &str) -> Self {
        let bar = ProgressBar::new(total);
        let quiet_env = matches!(
            std::env::var("FOGKIT_QUIET").as_deref(),
            Ok("1") | Ok("true")
        );
        if rank != 0 || quiet_env {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        Progress { bar }
    }

    /// Hides the bar when `quiet` (a program's `--quiet` flag).
    pub fn quiet(self, quiet: bool) -> Self {
        if quiet {
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        self
    }

    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Shows a short status beside the bar (e.g. the current loss).
    pub fn status(&self, s: impl Into<String>) {
        self.bar.set_message(s.into());
    }

    /// Steps done so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Ends the bar.
    pub fn finish(&self) {
        self.bar.finish();
    }
}
