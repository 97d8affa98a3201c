//! Cross-memory attach (Linux `process_vm_readv`): an MPI rank reads a neighbour process's
//! send buffer in place, as in-process ranks read each other's memory, so a neighbour's
//! vector is copied once (into a cache-sized scratch piece that the arithmetic consumes at
//! once) instead of twice. Used only when every rank shares one host and a probe at
//! start-up could read every peer; `FOGKIT_MPI_CMA=0` turns it off.

use std::io;
use std::os::raw::{c_int, c_ulong, c_void};

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

extern "C" {
    fn process_vm_readv(
        pid: c_int,
        local: *const IoVec,
        liovcnt: c_ulong,
        remote: *const IoVec,
        riovcnt: c_ulong,
        flags: c_ulong,
    ) -> isize;
}

/// Reads `dst.len()` bytes at address `addr` of process `pid`.
pub(crate) fn read(pid: u64, addr: u64, dst: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < dst.len() {
        let local = IoVec {
            base: dst[done..].as_mut_ptr() as *mut c_void,
            len: dst.len() - done,
        };
        let remote = IoVec {
            base: (addr as usize + done) as *mut c_void,
            len: dst.len() - done,
        };
        // SAFETY: `local` describes memory we own exclusively; the kernel checks the
        // remote range and fails with EFAULT rather than touching anything else.
        let n = unsafe { process_vm_readv(pid as c_int, &local, 1, &remote, 1, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read 0 of {} bytes from process {pid}", dst.len() - done),
            ));
        }
        done += n as usize;
    }
    Ok(())
}

/// A value every process can expose for the start-up probe.
pub(crate) static PROBE: u64 = 0x666f_676b_6974_636d;

/// Whether this process can read `PROBE` in each of `peers` (pid, address).
pub(crate) fn can_read(peers: &[(u64, u64)]) -> bool {
    peers.iter().all(|&(pid, addr)| {
        let mut b = [0u8; 8];
        read(pid, addr, &mut b).is_ok() && u64::from_ne_bytes(b) == PROBE
    })
}

/// Whether the user turned it off with `FOGKIT_MPI_CMA=0`.
pub(crate) fn disabled_by_env() -> bool {
    matches!(
        std::env::var("FOGKIT_MPI_CMA").as_deref(),
        Ok("0") | Ok("off") | Ok("false")
    )
}
