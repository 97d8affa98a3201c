//! Ending a process and everything under it (the engines' `fogrun`, its `mpirun`, the
//! engines and their cell processes). The kernel is a child subreaper, so processes
//! whose parent already died are still found under it. It only signals processes it
//! finds below the given one, never others.

use std::time::{Duration, Instant};

/// The processes below `pid` (children, their children, ...), read from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                // The command name is in parentheses and may hold spaces.
                let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
                if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                    parent_of.push((p, ppid));
                }
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

fn alive(pid: u32) -> bool {
    // A zombie has ended; only reaping is left.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, a)| a.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Ends `pid` and its descendants: SIGTERM, up to 3 s to leave, then SIGKILL; reaps
/// those that were handed to this process.
pub fn end_tree(pid: u32) {
    let mut all = descendants(pid);
    all.push(pid);
    let signal = |all: &[u32], sig| {
        for &p in all {
            // SAFETY: kill with a pid we found below our own job.
            unsafe { libc::kill(p as i32, sig) };
        }
    };
    signal(&all, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && all.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Anything started meanwhile (a rank's cell process) goes too.
    for p in descendants(pid) {
        if !all.contains(&p) {
            all.push(p);
        }
    }
    signal(&all, libc::SIGKILL);
    // Gone before this returns: a caller may start the next job at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for &p in &all {
            // SAFETY: reaps only the processes found above, without blocking.
            unsafe { libc::waitpid(p as i32, std::ptr::null_mut(), libc::WNOHANG) };
        }
        if Instant::now() > deadline || !all.iter().any(|&p| alive(p)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Makes orphaned processes of this one's jobs its children (so `descendants` finds
/// them) and has this process's cell process die with it.
pub fn adopt_orphans() {
    // SAFETY: plain prctl calls on this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// Reaps, every second, the processes handed to this one (it is a subreaper) that have
/// ended, except `keep()`'s: children whose owners wait for them themselves.
pub fn reap_orphans(keep: impl Fn() -> Vec<u32> + Send + 'static) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() } as u32;
        let keep = keep();
        for p in descendants(me) {
            if !keep.contains(&p) && !alive(p) {
                // SAFETY: reaps one ended process without blocking (not ours: no effect).
                unsafe { libc::waitpid(p as i32, std::ptr::null_mut(), libc::WNOHANG) };
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_of_processes_is_found_and_ended() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut below = Vec::new();
        while below.len() < 2 && start.elapsed() < Duration::from_secs(5) {
            below = descendants(sh.id());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(below.len(), 2, "{below:?}");
        end_tree(sh.id());
        let _ = sh.wait();
        assert!(below.iter().all(|&p| !alive(p)), "{below:?} still alive");
    }
}
