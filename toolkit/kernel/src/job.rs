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

/// The processes whose environment holds `tag` (`NAME=value`): a job's processes that
/// outlived their parents and were handed elsewhere.
pub fn tagged(tag: &str) -> Vec<u32> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() } as u32;
    let needle = tag.as_bytes();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle))
        })
        .collect()
}

/// Ends `root` (a process not reaped yet), its descendants and the processes tagged `tag`
/// (see [`tagged`]): SIGTERM, up to 3 s to leave, then SIGKILL, and waits until they are
/// gone. Reaps those that were handed to this process, never `root` (its owner waits for
/// it).
pub fn end_tree(root: Option<u32>, tag: &str) {
    let gather = |all: &mut Vec<u32>| {
        let below = root.map(descendants).unwrap_or_default();
        for p in below.into_iter().chain(tagged(tag)) {
            if !all.contains(&p) && Some(p) != root {
                all.push(p);
            }
        }
    };
    let mut all: Vec<u32> = root.into_iter().collect();
    gather(&mut all);
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
    gather(&mut all);
    signal(&all, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for &p in all.iter().filter(|&&p| Some(p) != root) {
            // SAFETY: reaps only the processes found above, without blocking.
            unsafe { libc::waitpid(p as i32, std::ptr::null_mut(), libc::WNOHANG) };
        }
        if Instant::now() > deadline || !all.iter().any(|&p| alive(p)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Makes orphaned processes of this one's jobs its children, so [`descendants`] finds
/// them (a child subreaper).
pub fn adopt_orphans() {
    // SAFETY: a plain prctl call on this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// In evcxr's cell process: exits when the process that started it (the kernel or an
/// engine) is gone, even in the middle of a cell, so a killed kernel leaves no cell
/// running. (Not a parent-death signal: evcxr restarts the cell process from a thread
/// that ends, and that signal follows the thread.)
pub fn die_with_parent() {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: as above.
        if unsafe { libc::getppid() } != parent {
            std::process::exit(0);
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
        end_tree(Some(sh.id()), "FOGKIT_TEST_TAG=none");
        let _ = sh.wait();
        assert!(below.iter().all(|&p| !alive(p)), "{below:?} still alive");
    }

    #[test]
    fn a_tagged_process_is_ended_without_its_parent() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .env("FOGKIT_TEST_TAG", "tagged-test")
            .spawn()
            .unwrap();
        let pid = sleeper.id();
        // A process just started may not show its new environment in /proc at once (seen
        // on a loaded machine): look for up to 5 s, as for the tree above.
        let start = Instant::now();
        while !tagged("FOGKIT_TEST_TAG=tagged-test").contains(&pid)
            && start.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(tagged("FOGKIT_TEST_TAG=tagged-test").contains(&pid));
        assert!(!tagged("FOGKIT_TEST_TAG=tagged-tes").contains(&pid));
        end_tree(None, "FOGKIT_TEST_TAG=tagged-test");
        assert!(!alive(pid));
        let _ = sleeper.wait();
    }
}
