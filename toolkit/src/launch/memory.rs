//! Keeps the memory a process frees for its next allocation instead of handing it back to
//! the operating system. A training step frees and allocates the same large buffers every
//! step (each layer's outputs and their gradients); glibc's defaults give them back, so
//! every step page-faults them in again and zeroes fresh pages (a LeNet-5 step on the CPU
//! spent 10-25% of its time there: see the book's Benchmarks page, training throughput). [`run`] and
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
        // top before it is trimmed. (A thread's heap, 64 MiB, still goes back whole once
        // nothing in it is in use: a training rank's never is.)
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
    /// glibc's `struct mallinfo2`.
    #[repr(C)]
    struct MallInfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        /// Bytes in blocks that have a mapping of their own.
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }

    extern "C" {
        fn mallinfo2() -> MallInfo2;
    }

    /// Bytes of this process's blocks that have a mapping of their own (which `free` unmaps).
    fn mapped() -> usize {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        unsafe { mallinfo2() }.hblkhd
    }

    #[test]
    fn large_blocks_come_from_the_heap_not_mappings_free_gives_back() {
        super::imp::keep();
        // On a thread of its own, as a rank's is.
        let (before, during) = std::thread::spawn(|| {
            let before = mapped();
            let blocks: Vec<Vec<u8>> = (0..8).map(|_| vec![1u8; 4 << 20]).collect();
            let during = mapped();
            drop(std::hint::black_box(blocks));
            (before, during)
        })
        .join()
        .expect("the allocating thread");
        // glibc's defaults would map each 4 MiB block on its own (32 MiB in all).
        assert!(
            during < before + (4 << 20),
            "the blocks were mapped on their own: {before} bytes in mappings before, {during} while held"
        );
    }
}
