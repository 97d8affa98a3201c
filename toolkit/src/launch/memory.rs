//! Keeps the memory a process frees for its next allocation instead of handing it back to
//! the operating system. A training step frees and allocates the same large buffers every
//! step (each layer's outputs and their gradients); glibc's defaults give them back, so
//! every step page-faults them in again and zeroes fresh pages (a LeNet-5 step on the CPU
//! spent 10-25% of its time there: see the README's training throughput). [`run`] and
//! [`init`] set it once per process; `FOGKIT_KEEP_MEMORY=0` leaves the allocator's defaults.
//!
//! It never changes what is allocated or its contents, only when freed memory returns to
//! the system; on platforms other than Linux with glibc it does nothing.
//!
//! [`run`]: crate::run
//! [`init`]: crate::init

use std::sync::Once;

/// Asks glibc to keep freed memory (once per process; a no-op elsewhere, or when
/// `FOGKIT_KEEP_MEMORY=0`).
pub(crate) fn keep_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("FOGKIT_KEEP_MEMORY").is_ok_and(|v| v.trim() == "0") {
            return;
        }
        imp::keep();
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    // glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;

    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }

    pub(super) fn keep() {
        // Blocks up to 32 MiB (glibc's largest threshold on 64-bit) come from the heap, not
        // from their own mapping that `free` unmaps; a heap keeps up to 1 GiB free at its
        // top before it is trimmed.
        // SAFETY: mallopt only sets the allocator's parameters; it takes its own locks and
        // may be called at any time, from any thread.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn keep() {}
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// Resident pages of this process, in bytes (`/proc/self/statm`, 4 KiB pages).
    fn resident() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux has statm");
        let pages: usize = statm
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("statm's second field");
        pages * 4096
    }

    #[test]
    fn freed_blocks_stay_with_the_process() {
        super::keep_freed_memory();
        // On a thread of its own, as a rank's is.
        let kept = std::thread::spawn(|| {
            let blocks: Vec<Vec<u8>> = (0..8).map(|_| vec![1u8; 4 << 20]).collect();
            let before = resident();
            drop(blocks);
            (before, resident())
        })
        .join()
        .expect("the allocating thread");
        let (before, after) = kept;
        // 32 MiB were freed; glibc's defaults would unmap every 4 MiB block.
        assert!(
            after + (8 << 20) > before,
            "freed blocks went back to the system: {before} bytes resident before the free, {after} after"
        );
    }
}
