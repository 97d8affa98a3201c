//! A named figure for notebooks and books: plotly's interactive figure plus, where headless
//! Chromium is installed, a PNG picture of it that any viewer (GitHub, nbviewer, mdBook)
//! can show.

use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use plotly::Plot;

use super::write_atomically;
use crate::{Error, Result};

/// How long one Chromium screenshot may take before it is killed.
const RENDER_DEADLINE: Duration = Duration::from_secs(60);

/// A plotly figure with a name and a picture size.
///
/// As an evcxr cell's value it shows itself twice over: plotly's JSON (interactive in
/// JupyterLab) and, when headless Chromium can be started (feature `embed-js`; `chromium`
/// on the `PATH`, or `FOGKIT_CHROMIUM`), a PNG. With `FOGKIT_FIGURES=DIR` set, the PNG is
/// also written to `DIR/NAME.png` (that is how the course book gets its pictures).
///
/// ```
/// use fogkit::plot::Figure;
/// let plot = fogkit::plotly::Plot::new();
/// let fig = Figure::new("empty", &plot).size(640, 400);
/// assert_eq!(fig.name(), "empty");
/// ```
#[derive(Clone)]
pub struct Figure {
    name: String,
    plot: Plot,
    width: u32,
    height: u32,
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Figure")
            .field("name", &self.name)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl Figure {
    /// A figure named `name` (used for its PNG file), 900 x 500 pixels. Takes the plot or
    /// a reference to it (then cloned), so a notebook cell can end with
    /// `Figure::new("name", &fig)` and keep `fig`.
    pub fn new(name: impl Into<String>, plot: impl Borrow<Plot>) -> Self {
        Figure {
            name: name.into(),
            plot: plot.borrow().clone(),
            width: 900,
            height: 500,
        }
    }

    /// The picture's size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width.max(16);
        self.height = height.max(16);
        self
    }

    /// The figure's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plotly figure.
    pub fn plot(&self) -> &Plot {
        &self.plot
    }

    /// Renders the figure to PNG bytes with headless Chromium. Errors say what is
    /// missing: the `embed-js` feature (the page must carry plotly.js; there is no network
    /// here) or a Chromium binary.
    pub fn png(&self) -> Result<Vec<u8>> {
        if !cfg!(feature = "embed-js") {
            return Err(Error::InvalidArgument(
                "figure: a PNG needs fogkit's `embed-js` feature (plotly.js inside the page), \
                 found it off"
                    .into(),
            ));
        }
        let browser = chromium()?;
        let dir = scratch_dir()?;
        let result = render(&browser, &dir, &self.plot, self.width, self.height);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    /// Writes the PNG to `path` (atomically: temporary file, then rename).
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let png = self.png()?;
        write_atomically(path.as_ref(), &png)
    }

    /// What evcxr calls for a cell's value: plotly JSON, a PNG when one can be made (also
    /// written under `FOGKIT_FIGURES` when set), and a text line.
    pub fn evcxr_display(&self) {
        let json = self.plot.to_json();
        println!("EVCXR_BEGIN_CONTENT application/vnd.plotly.v1+json\n{json}\nEVCXR_END_CONTENT");
        match self.png() {
            Ok(png) => {
                if let Some(dir) = std::env::var_os("FOGKIT_FIGURES") {
                    let path = Path::new(&dir).join(format!("{}.png", self.name));
                    if let Err(e) = write_atomically(&path, &png) {
                        eprintln!("{e}");
                    }
                }
                println!(
                    "EVCXR_BEGIN_CONTENT image/png\n{}\nEVCXR_END_CONTENT",
                    base64(&png)
                );
                println!(
                    "EVCXR_BEGIN_CONTENT text/plain\nfigure {}\nEVCXR_END_CONTENT",
                    self.name
                );
            }
            Err(e) => println!(
                "EVCXR_BEGIN_CONTENT text/plain\nfigure {} (no picture: {e})\nEVCXR_END_CONTENT",
                self.name
            ),
        }
    }
}

fn chromium() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FOGKIT_CHROMIUM") {
        return Ok(PathBuf::from(p));
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(Error::InvalidArgument(format!(
        "figure: a PNG needs headless Chromium, found none of {names:?} on PATH \
         (Debian: apt-get install chromium; or set FOGKIT_CHROMIUM)"
    )))
}

fn scratch_dir() -> Result<PathBuf> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "fogkit-figure-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Data(format!("figure: could not create {}: {e}", dir.display())))?;
    Ok(dir)
}

fn render(browser: &Path, dir: &Path, plot: &Plot, width: u32, height: u32) -> Result<Vec<u8>> {
    let mut plot = plot.clone();
    let layout = plot
        .layout()
        .clone()
        .width(width as usize)
        .height(height as usize);
    plot.set_layout(layout);
    plot.set_configuration(
        plot.configuration()
            .clone()
            .display_mode_bar(plotly::configuration::DisplayModeBar::False),
    );
    let html = dir.join("figure.html");
    let png = dir.join("figure.png");
    let io = |what: &str, e: std::io::Error| Error::Data(format!("figure: {what}: {e}"));
    std::fs::write(&html, plot.to_html()).map_err(|e| io("could not write the page", e))?;
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .envs(short_tmpdir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io(&format!("could not start {}", browser.display()), e))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| io("waiting for Chromium", e))?
        {
            break s;
        }
        if start.elapsed() > RENDER_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Data(format!(
                "figure: Chromium did not finish the screenshot within {RENDER_DEADLINE:?}; killed it"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let bytes = std::fs::read(&png)
        .ok()
        .filter(|b| b.starts_with(b"\x89PNG"));
    match bytes {
        Some(b) if status.success() => Ok(b),
        _ => {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                use std::io::Read;
                let _ = s.read_to_string(&mut err);
            }
            let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
            Err(Error::Data(format!(
                "figure: Chromium ({}) made no PNG (exit {status}): {tail}",
                browser.display()
            )))
        }
    }
}

/// Chromium makes Unix sockets under `TMPDIR`, whose paths may not exceed 108 bytes; a
/// long `TMPDIR` (e.g. a test's scratch directory) makes it abort. Then use `/tmp`.
fn short_tmpdir() -> Option<(&'static str, &'static str)> {
    let long = std::env::temp_dir().as_os_str().len() > 40;
    (long && Path::new("/tmp").is_dir()).then_some(("TMPDIR", "/tmp"))
}

/// Standard base64 with padding (RFC 4648), as Jupyter wants images.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ABC[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn missing_chromium_is_a_clear_error() {
        if cfg!(feature = "embed-js") {
            return; // covered by the rendering test in tests/notebooks.rs
        }
        let e = Figure::new("x", Plot::new()).png().unwrap_err().to_string();
        assert!(e.contains("embed-js"), "{e}");
    }
}
