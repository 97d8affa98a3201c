//! `fogtimeline PREFIX [OUT]`: merges the per-rank timelines `PREFIX0.json`,
//! `PREFIX1.json`, ... (written with `FOGKIT_TIMELINE=PREFIX`) into one Chrome trace with
//! a track per rank, `OUT` (default `PREFIXall.json`), for Perfetto or chrome://tracing.

use std::path::{Path, PathBuf};

fn main() {
    fogkit::timeline::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(prefix) = args.first().map(PathBuf::from) else {
        eprintln!("usage: fogtimeline PREFIX [OUT]  (merges PREFIX0.json, PREFIX1.json, ...)");
        std::process::exit(2);
    };
    let files: Vec<PathBuf> = (0..)
        .map(|r| fogkit::timeline::file_for(&prefix, r))
        .take_while(|f| f.exists())
        .collect();
    if files.is_empty() {
        let first = fogkit::timeline::file_for(&prefix, 0);
        eprintln!(
            "fogtimeline: expected per-rank timelines starting with {}, found none",
            first.display()
        );
        std::process::exit(1);
    }
    let out = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        let mut s = prefix.as_os_str().to_owned();
        s.push("all.json");
        PathBuf::from(s)
    });
    match fogkit::timeline::merge(&files, Path::new(&out)) {
        Ok(n) => println!(
            "merged {} ranks ({n} events) into {}",
            files.len(),
            out.display()
        ),
        Err(e) => {
            eprintln!("fogtimeline: {e}");
            std::process::exit(1);
        }
    }
}
