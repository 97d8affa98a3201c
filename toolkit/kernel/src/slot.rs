//! A build directory kept between kernels. evcxr compiles cells in a directory of its own
//! (`EVCXR_TMPDIR`, else a fresh temporary one per kernel): in a fresh one cargo compiles
//! fogkit again at every kernel start (a path dependency, which evcxr's cache does not
//! keep), and evcxr's own cache (`:cache`) keeps the dependency files of build scripts'
//! outputs under the temporary directory that first built them, so cargo finds them
//! missing and rebuilds serde, polars, plotly and fogkit at every cell (measured: 3-12 s a
//! cell). A kept directory with cargo's own bookkeeping does neither. Each running kernel
//! or engine holds one slot, locked, so two notebooks never share one; a new slot starts
//! as a copy of a built one (cargo's records are relative to the target directory, so the
//! copy is up to date), and slots are reused, so they do not pile up. It never writes to
//! a slot another process holds, and copies only from one that no process is building in.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;

/// How many slots of one kind may exist (kernels or engines running at once).
const SLOTS: usize = 16;

/// Locks the first free slot of `kind` ("kernel", "engine") under `~/.cache/fogkit/cells`
/// and points evcxr at it. Call before any thread starts (it sets an environment
/// variable). Without a home directory, evcxr keeps its temporary one.
pub fn take(kind: &str) -> Option<PathBuf> {
    if std::env::var_os("EVCXR_TMPDIR").is_some() {
        return None;
    }
    let base = std::env::var_os("FOGKIT_CELLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fogkit/cells"))
        })?;
    std::fs::create_dir_all(&base).ok()?;
    for i in 0..SLOTS {
        let dir = base.join(format!("{kind}-{i}"));
        let Ok(lock) = File::create(base.join(format!("{kind}-{i}.lock"))) else {
            continue;
        };
        // SAFETY: flock on a file this process opened.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        if std::fs::create_dir_all(&dir).is_err() {
            continue;
        }
        // Held until this process exits.
        std::mem::forget(lock);
        std::env::set_var("EVCXR_TMPDIR", &dir);
        find_std(&dir);
        return Some(dir);
    }
    None
}

/// Whether another process holds the slot at `dir` (its lock file is locked).
fn held(dir: &std::path::Path) -> bool {
    let lock = dir.with_extension("lock");
    let Ok(f) = File::open(&lock) else {
        return false;
    };
    // SAFETY: flock on a file this process opened; released when `f` closes.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
}

/// Fills a new slot's build directory with a copy of a built one, so the first cell in it
/// finds the dependencies compiled: the slot named by `FOGKIT_SEED_FROM` (the kernel
/// that starts engines passes its own, idle while they start), else the most recently
/// built slot that no process holds (preferring the same kind): a held slot may be
/// mid-build, and a copy of it can hold half-written libraries. Does nothing when `dir`
/// has been built in already.
pub fn seed(dir: &std::path::Path) {
    let target = dir.join("target");
    if target.exists() {
        return;
    }
    let (Some(base), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let kind = name.rsplit_once('-').map_or(name, |(k, _)| k);
    let named = std::env::var_os("FOGKIT_SEED_FROM")
        .map(|d| PathBuf::from(d).join("target"))
        .filter(|t| t.is_dir());
    let mut built: Vec<(bool, std::time::SystemTime, PathBuf)> = std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path() != dir && e.path().is_dir() && !held(&e.path()))
        .filter_map(|e| {
            let t = e.path().join("target");
            let modified = t.metadata().and_then(|m| m.modified()).ok()?;
            let same = e.file_name().to_str()?.starts_with(&format!("{kind}-"));
            Some((same, modified, t))
        })
        .collect();
    built.sort();
    if let Some(from) = named.or_else(|| built.pop().map(|(_, _, t)| t)) {
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(&from)
            .arg(&target)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir_all(&target);
        }
    }
}

/// Lets the cell process find Rust's `libstd` and fogkit's shared library wherever the
/// slot lies: cells link them dynamically with paths relative to cargo's `deps` folder,
/// one level below where evcxr loads cells from, which misses them outside `/tmp`.
fn find_std(slot: &std::path::Path) {
    let Ok(out) = std::process::Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
    else {
        return;
    };
    let libdir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if libdir.is_empty() {
        return;
    }
    let deps = slot.join("target/x86_64-unknown-linux-gnu/debug/deps");
    let path = match std::env::var("LD_LIBRARY_PATH") {
        Ok(p) if !p.is_empty() => format!("{libdir}:{}:{p}", deps.display()),
        _ => format!("{libdir}:{}", deps.display()),
    };
    std::env::set_var("LD_LIBRARY_PATH", path);
}
