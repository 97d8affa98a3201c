//! The `mpi` transport: one rank per process under `mpirun`, over the system's MPI
//! (OpenMPI from Debian), reached through rsmpi's `mpi::ffi` and wrapped here.
//!
//! Each call first shares a small fixed-size descriptor of every rank's call (one
//! nonblocking allgather), so the same [`check_consistent`] as the local transport runs
//! on every rank before any data moves. Data then goes point to point: an 8-byte length,
//! then pieces of at most [`PIECE`] bytes; equal-length messages are handed to the
//! visitor piece by piece as they arrive, so the arithmetic reads data still in cache.
//! Every wait polls against a deadline: a rank that never arrives gives
//! [`Error::Timeout`], never a hang.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mpi::ffi;

mod cma;

use super::{check_consistent, CallInfo, Machine, Op, Posted, Transport, Visit};
use crate::tensor::Dtype;
use crate::{Error, Result};

/// Messages are sent in pieces of at most this many bytes.
pub const PIECE: usize = 1 << 20;

extern "C" {
    fn atexit(cb: extern "C" fn()) -> c_int;
}

extern "C" fn finalize_at_exit() {
    // SAFETY: plain MPI calls with valid out-pointers, at process exit.
    unsafe {
        let mut done: c_int = 0;
        ffi::MPI_Finalized(&mut done);
        if done == 0 {
            ffi::MPI_Finalize();
        }
    }
}

/// Initialises MPI once per process (threads serialized at least: fogkit calls MPI from a
/// rank's thread and its communication thread, never at once) and finalises it at exit.
fn ensure_init() -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        // SAFETY: MPI_Init_thread with null argc/argv is allowed; out-pointers are valid.
        unsafe {
            let mut flag: c_int = 0;
            ffi::MPI_Initialized(&mut flag);
            if flag == 0 {
                let mut provided: c_int = 0;
                let rc = ffi::MPI_Init_thread(
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    ffi::RSMPI_THREAD_MULTIPLE,
                    &mut provided,
                );
                if rc != 0 {
                    return Err(format!("MPI_Init_thread failed with code {rc}"));
                }
                if provided < ffi::RSMPI_THREAD_SERIALIZED {
                    return Err(format!(
                        "expected MPI to support at least MPI_THREAD_SERIALIZED, found level {provided}"
                    ));
                }
                atexit(finalize_at_exit);
            }
            Ok(())
        }
    })
    .clone()
    .map_err(Error::InvalidArgument)
}

/// Ends the whole MPI job (all processes) with `code`, after `message` on stderr.
pub fn abort_job(message: &str, code: c_int) -> ! {
    use std::io::Write;
    // One write, so that mpirun does not interleave it with other ranks' lines.
    let _ = std::io::stderr().write_all(format!("{message}\n").as_bytes());
    // SAFETY: MPI is initialised whenever an MpiTransport exists.
    unsafe {
        ffi::MPI_Abort(ffi::RSMPI_COMM_WORLD, code);
    }
    std::process::exit(code)
}

/// The minimum of `v` over the processes of `comm` (blocking; start-up only).
unsafe fn min_over(comm: ffi::MPI_Comm, v: u64) -> Result<u64> {
    let mut out: u64 = 0;
    check(
        ffi::MPI_Allreduce(
            &v as *const u64 as *const c_void,
            &mut out as *mut u64 as *mut c_void,
            1,
            ffi::RSMPI_UINT64_T,
            ffi::RSMPI_MIN,
            comm,
        ),
        "MPI_Allreduce",
    )?;
    Ok(out)
}

/// One process's endpoint: a private duplicate of `MPI_COMM_WORLD`.
pub struct MpiTransport {
    comm: ffi::MPI_Comm,
    rank: usize,
    size: usize,
    machine: Machine,
    timeout: Duration,
    calls: AtomicU64,
    /// Set after a mismatch or timeout: every later call fails with it.
    failed: Mutex<Option<Error>>,
    /// Receive buffers kept between calls (fresh pages cost a fault each).
    pool: Mutex<Vec<Vec<u64>>>,
    /// All ranks share one host and can read each other's memory (see `cma`).
    cma: bool,
}

/// Receive buffers kept at most.
const POOL: usize = 16;

// SAFETY: the communicator handle is only used through MPI calls, which fogkit makes
// from one thread at a time (the rank's thread, or its communication thread while the
// rank's thread waits); MPI is initialised with at least MPI_THREAD_SERIALIZED.
unsafe impl Send for MpiTransport {}
unsafe impl Sync for MpiTransport {}

fn check(rc: c_int, what: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what} failed with MPI error code {rc}"
        )))
    }
}

impl MpiTransport {
    /// Joins the MPI job (initialising MPI on first use). Collective over all processes.
    /// `local_size` regroups ranks into emulated machines (for tests on one host);
    /// otherwise machines are the hosts, found with `MPI_Comm_split_type(SHARED)`.
    pub fn new(timeout: Duration, local_size: Option<usize>) -> Result<MpiTransport> {
        ensure_init()?;
        // SAFETY: valid communicators and out-pointers throughout.
        unsafe {
            let mut comm: ffi::MPI_Comm = ffi::RSMPI_COMM_NULL;
            check(
                ffi::MPI_Comm_dup(ffi::RSMPI_COMM_WORLD, &mut comm),
                "MPI_Comm_dup",
            )?;
            let (mut r, mut s): (c_int, c_int) = (0, 0);
            ffi::MPI_Comm_rank(comm, &mut r);
            ffi::MPI_Comm_size(comm, &mut s);
            let (rank, size) = (r as usize, s as usize);
            let (hosts, leaders) = Self::find_machines(comm, rank, size)?;
            let machine = match local_size {
                Some(ls) => Machine::grouped(rank, size, ls)?,
                None => hosts,
            };
            let one_host = leaders.iter().all(|&l| l == leaders[0]);
            let cma = one_host && Self::probe_cma(comm, rank, size)?;
            Ok(MpiTransport {
                comm,
                rank,
                size,
                machine,
                timeout,
                calls: AtomicU64::new(0),
                failed: Mutex::new(None),
                pool: Mutex::new(Vec::new()),
                cma,
            })
        }
    }

    /// Whether every rank can read every other rank's memory (all must agree: collective).
    unsafe fn probe_cma(comm: ffi::MPI_Comm, rank: usize, size: usize) -> Result<bool> {
        let mine = [std::process::id() as u64, &cma::PROBE as *const u64 as u64];
        let mut all = vec![0u64; 2 * size];
        check(
            ffi::MPI_Allgather(
                mine.as_ptr() as *const c_void,
                2,
                ffi::RSMPI_UINT64_T,
                all.as_mut_ptr() as *mut c_void,
                2,
                ffi::RSMPI_UINT64_T,
                comm,
            ),
            "MPI_Allgather",
        )?;
        let peers: Vec<(u64, u64)> = (0..size)
            .filter(|&r| r != rank)
            .map(|r| (all[2 * r], all[2 * r + 1]))
            .collect();
        let vote: u64 = (!cma::disabled_by_env() && cma::can_read(&peers)) as u64;
        Ok(min_over(comm, vote)? == 1)
    }

    /// Ranks sharing memory form a machine; machines are numbered by their lowest rank.
    /// Also returns each rank's machine leader (its lowest rank).
    unsafe fn find_machines(
        comm: ffi::MPI_Comm,
        rank: usize,
        size: usize,
    ) -> Result<(Machine, Vec<u64>)> {
        let mut local: ffi::MPI_Comm = ffi::RSMPI_COMM_NULL;
        check(
            ffi::MPI_Comm_split_type(
                comm,
                ffi::RSMPI_COMM_TYPE_SHARED,
                rank as c_int,
                ffi::RSMPI_INFO_NULL,
                &mut local,
            ),
            "MPI_Comm_split_type",
        )?;
        let (mut lr, mut ls): (c_int, c_int) = (0, 0);
        ffi::MPI_Comm_rank(local, &mut lr);
        ffi::MPI_Comm_size(local, &mut ls);
        let leader = min_over(local, rank as u64)?;
        ffi::MPI_Comm_free(&mut local);
        let mut leaders = vec![0u64; size];
        ffi::MPI_Allgather(
            &leader as *const u64 as *const c_void,
            1,
            ffi::RSMPI_UINT64_T,
            leaders.as_mut_ptr() as *mut c_void,
            1,
            ffi::RSMPI_UINT64_T,
            comm,
        );
        let mut distinct = leaders.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let machine = Machine {
            local_rank: lr as usize,
            local_size: ls as usize,
            machine_rank: distinct.iter().position(|&l| l == leader).unwrap_or(0),
            machine_size: distinct.len(),
        };
        // fogkit's machine-level ops expect equal machines of consecutive ranks (mpirun's
        // default mapping by slot); otherwise treat the job as one machine.
        let consecutive = size % machine.local_size == 0
            && leaders
                .iter()
                .enumerate()
                .all(|(r, &l)| l as usize == r / machine.local_size * machine.local_size);
        if consecutive {
            Ok((machine, leaders))
        } else {
            tracing::warn!(
                "ranks are not laid out as equal machines of consecutive ranks; \
                 treating the job as one machine"
            );
            Ok((Machine::single(rank, size), leaders))
        }
    }

    /// A buffer of at least `words` u64s, from the pool when one fits.
    fn take_buffer(&self, words: usize) -> Vec<u64> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= words)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        match best {
            Some(i) => pool.swap_remove(i),
            None => vec![0u64; words],
        }
    }

    fn give_back(&self, bufs: impl IntoIterator<Item = Vec<u64>>) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        for b in bufs {
            if b.capacity() > 0 {
                pool.push(b);
            }
        }
        // Keep the largest few.
        pool.sort_by_key(|b| std::cmp::Reverse(b.len()));
        pool.truncate(POOL);
    }

    fn fail(&self, e: &Error) {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert_with(|| e.share());
    }
}

impl Drop for MpiTransport {
    fn drop(&mut self) {
        // A communicator left with pending requests (after a timeout) is not freed.
        let failed = self.failed.lock().map(|f| f.is_some()).unwrap_or(true);
        if !failed {
            // SAFETY: the communicator was created by MPI_Comm_dup and is not used again.
            unsafe {
                let mut finalized: c_int = 0;
                ffi::MPI_Finalized(&mut finalized);
                if finalized == 0 {
                    ffi::MPI_Comm_free(&mut self.comm);
                }
            }
        }
    }
}

// ---- the descriptor every rank shares for each call ----

const HEAD: usize = 7;

fn op_code(op: Op) -> u64 {
    op as u64 + 1
}

fn op_from(code: u64) -> Op {
    const ALL: [Op; 10] = [
        Op::Barrier,
        Op::Broadcast,
        Op::Allreduce,
        Op::Allgather,
        Op::NeighborAllreduce,
        Op::NeighborAllgather,
        Op::PairGossip,
        Op::SetTopology,
        Op::HierarchicalNeighborAllreduce,
        Op::Gather,
    ];
    ALL.into_iter()
        .find(|&o| op_code(o) == code)
        .unwrap_or(Op::Barrier)
}

fn encode(
    call: u64,
    info: &CallInfo,
    sends: &[(usize, &[u8])],
    recv: &[usize],
    n: usize,
) -> Vec<u64> {
    let words = n.div_ceil(64);
    let mut d = vec![0u64; HEAD + 2 * words];
    d[0] = call;
    d[1] = op_code(info.op);
    d[2] = match info.dtype {
        None => 0,
        Some(Dtype::F32) => 1,
        Some(Dtype::F64) => 2,
    };
    d[3] = info.len as u64;
    d[4] = info.same_len as u64;
    d[5] = info.root.map_or(0, |r| r as u64 + 1);
    d[6] = info.tag;
    for &(dst, _) in sends {
        if dst < n {
            d[HEAD + dst / 64] |= 1 << (dst % 64);
        }
    }
    for &src in recv {
        if src < n {
            d[HEAD + words + src / 64] |= 1 << (src % 64);
        }
    }
    d
}

fn decode(d: &[u64], n: usize) -> (u64, CallInfo, Vec<usize>, Vec<usize>) {
    let words = n.div_ceil(64);
    let info = CallInfo {
        op: op_from(d[1]),
        dtype: match d[2] {
            1 => Some(Dtype::F32),
            2 => Some(Dtype::F64),
            _ => None,
        },
        len: d[3] as usize,
        same_len: d[4] != 0,
        root: d[5].checked_sub(1).map(|r| r as usize),
        tag: d[6],
    };
    let bits = |base: usize| -> Vec<usize> {
        (0..n)
            .filter(|&r| d[base + r / 64] >> (r % 64) & 1 == 1)
            .collect()
    };
    (d[0], info, bits(HEAD), bits(HEAD + words))
}

// ---- polling ----

/// Backs off while nothing progresses: spin, then yield, then short sleeps (many ranks
/// may share few cores, and transfers progress only while their owners call MPI).
struct Backoff(u32);

impl Backoff {
    fn idle(&mut self) {
        self.0 += 1;
        if self.0 > 20_000 {
            std::thread::sleep(Duration::from_micros(20));
        } else if self.0 > 64 {
            std::thread::yield_now();
        }
    }
}

unsafe fn test(req: &mut ffi::MPI_Request) -> bool {
    if *req == ffi::RSMPI_REQUEST_NULL {
        return true;
    }
    let mut flag: c_int = 0;
    ffi::MPI_Test(req, &mut flag, ffi::RSMPI_STATUS_IGNORE);
    flag != 0
}

/// One incoming message: its length (once the header is in) and its pieces.
struct Incoming {
    header: Box<u64>,
    header_req: ffi::MPI_Request,
    buf: Vec<u64>,
    bytes: usize,
    pieces: Vec<ffi::MPI_Request>,
    done: usize,
}

impl Incoming {
    fn data(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.buf)[..self.bytes]
    }
}

/// Calls whose largest message is at least this many bytes read in place.
const IN_PLACE_BYTES: usize = 64 << 10;

/// Messages of one call carry tag `call % TAGS`; in-place acknowledgements `TAGS + that`.
const TAGS: u64 = 16_384;

/// What the data stage of one call needs to know.
#[derive(Clone, Copy)]
struct Stage<'a> {
    me: usize,
    info: &'a CallInfo,
    call: u64,
    start: Instant,
    deadline: Instant,
    tag: c_int,
}

impl Stage<'_> {
    /// Every rank is inside this call (the descriptors matched), so a data stage that
    /// does not finish means a process is gone or stuck: end the job rather than hang.
    fn check_deadline(&self) {
        if Instant::now() >= self.deadline {
            abort_job(
                &format!(
                    "fogkit: rank {} timed out after {:?} moving data in {} (call #{}); \
                     ending the MPI job",
                    self.me,
                    self.start.elapsed(),
                    self.info,
                    self.call
                ),
                1,
            );
        }
    }
}

impl MpiTransport {
    /// Point-to-point: an 8-byte length, then pieces; the visitor gets pieces as they
    /// arrive when all messages have the same length.
    fn move_by_copy(
        &self,
        st: &Stage<'_>,
        sends: &[(usize, &[u8])],
        recv_from: &[usize],
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        let tag = st.tag;
        let headers: Vec<u64> = sends.iter().map(|(_, b)| b.len() as u64).collect();
        let mut send_reqs: Vec<ffi::MPI_Request> = Vec::new();
        let mut incoming: Vec<Incoming> = Vec::with_capacity(recv_from.len());
        // SAFETY: every buffer below outlives its request: the loop does not end until all
        // requests are complete (or the job is aborted).
        unsafe {
            for &src in recv_from {
                let mut inc = Incoming {
                    header: Box::new(0),
                    header_req: ffi::RSMPI_REQUEST_NULL,
                    buf: Vec::new(),
                    bytes: 0,
                    pieces: Vec::new(),
                    done: 0,
                };
                ffi::MPI_Irecv(
                    &mut *inc.header as *mut u64 as *mut c_void,
                    8,
                    ffi::RSMPI_UINT8_T,
                    src as c_int,
                    tag,
                    self.comm,
                    &mut inc.header_req,
                );
                incoming.push(inc);
            }
            for ((dst, data), header) in sends.iter().zip(&headers) {
                let mut req = ffi::RSMPI_REQUEST_NULL;
                ffi::MPI_Isend(
                    header as *const u64 as *const c_void,
                    8,
                    ffi::RSMPI_UINT8_T,
                    *dst as c_int,
                    tag,
                    self.comm,
                    &mut req,
                );
                send_reqs.push(req);
                for piece in data.chunks(PIECE) {
                    let mut req = ffi::RSMPI_REQUEST_NULL;
                    ffi::MPI_Isend(
                        piece.as_ptr() as *const c_void,
                        piece.len() as c_int,
                        ffi::RSMPI_UINT8_T,
                        *dst as c_int,
                        tag,
                        self.comm,
                        &mut req,
                    );
                    send_reqs.push(req);
                }
            }

            let mut backoff = Backoff(0);
            let mut headers_in = 0;
            let mut equal: Option<bool> = None;
            let mut visited = 0usize;
            let mut sends_done = 0usize;
            let mut first_err: Option<Error> = None;
            loop {
                let mut progressed = false;
                for (inc, &src) in incoming.iter_mut().zip(recv_from) {
                    if inc.header_req != ffi::RSMPI_REQUEST_NULL && test(&mut inc.header_req) {
                        inc.bytes = *inc.header as usize;
                        inc.buf = self.take_buffer(inc.bytes.div_ceil(8));
                        let base = inc.buf.as_mut_ptr() as *mut u8;
                        let mut off = 0;
                        while off < inc.bytes {
                            let len = PIECE.min(inc.bytes - off);
                            let mut req = ffi::RSMPI_REQUEST_NULL;
                            ffi::MPI_Irecv(
                                base.add(off) as *mut c_void,
                                len as c_int,
                                ffi::RSMPI_UINT8_T,
                                src as c_int,
                                tag,
                                self.comm,
                                &mut req,
                            );
                            inc.pieces.push(req);
                            off += len;
                        }
                        headers_in += 1;
                        progressed = true;
                    }
                    while inc.done < inc.pieces.len() && test(&mut inc.pieces[inc.done]) {
                        inc.done += 1;
                        progressed = true;
                    }
                }
                while sends_done < send_reqs.len() && test(&mut send_reqs[sends_done]) {
                    sends_done += 1;
                    progressed = true;
                }
                if headers_in == incoming.len() {
                    let eq = *equal.get_or_insert_with(|| {
                        incoming.windows(2).all(|w| w[0].bytes == w[1].bytes)
                    });
                    if eq && first_err.is_none() {
                        let ready = incoming.iter().map(|i| i.done).min().unwrap_or(0);
                        while visited < ready {
                            let off = visited * PIECE;
                            let slices: Vec<&[u8]> = incoming
                                .iter()
                                .map(|i| &i.data()[off..(off + PIECE).min(i.bytes)])
                                .collect();
                            if let Err(e) = visit(off, &slices) {
                                first_err = Some(e);
                                break;
                            }
                            visited += 1;
                        }
                    }
                    let all_in = incoming.iter().all(|i| i.done == i.pieces.len());
                    if all_in && sends_done == send_reqs.len() {
                        break;
                    }
                }
                if progressed {
                    backoff.0 = 0;
                } else {
                    st.check_deadline();
                    backoff.idle();
                }
            }
            let whole = equal == Some(false) || visited == 0;
            let result = match first_err {
                Some(e) => Err(e),
                None if whole => {
                    let slices: Vec<&[u8]> = incoming.iter().map(|i| i.data()).collect();
                    visit(0, &slices)
                }
                None => Ok(()),
            };
            self.give_back(incoming.into_iter().map(|i| i.buf));
            result
        }
    }

    /// In place (one host): each sender posts (pid, address, length) and keeps its buffer
    /// until every reader acknowledges; each reader pulls pieces into cache-sized scratch
    /// buffers with `process_vm_readv` and hands them to the visitor at once.
    fn move_in_place(
        &self,
        st: &Stage<'_>,
        sends: &[(usize, &[u8])],
        recv_from: &[usize],
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        let pid = std::process::id() as u64;
        let posts: Vec<[u64; 3]> = sends
            .iter()
            .map(|(_, b)| [pid, b.as_ptr() as u64, b.len() as u64])
            .collect();
        let mut heads: Vec<[u64; 3]> = vec![[0; 3]; recv_from.len()];
        let mut acks_in: Vec<u64> = vec![0; sends.len()];
        let ack_out: u64 = 1;
        // SAFETY: reading an MPI constant.
        let null = unsafe { ffi::RSMPI_REQUEST_NULL };
        let mut head_reqs = vec![null; recv_from.len()];
        let mut post_reqs = vec![null; sends.len()];
        let mut ack_in_reqs = vec![null; sends.len()];
        let mut ack_out_reqs = vec![null; recv_from.len()];
        let ack_tag = st.tag + TAGS as c_int;
        // SAFETY: all buffers handed to MPI live until the requests complete: this
        // function waits for every request below before returning (or aborts the job).
        unsafe {
            for ((head, req), &src) in heads.iter_mut().zip(&mut head_reqs).zip(recv_from) {
                ffi::MPI_Irecv(
                    head.as_mut_ptr() as *mut c_void,
                    3,
                    ffi::RSMPI_UINT64_T,
                    src as c_int,
                    st.tag,
                    self.comm,
                    req,
                );
            }
            for (k, (dst, _)) in sends.iter().enumerate() {
                ffi::MPI_Irecv(
                    &mut acks_in[k] as *mut u64 as *mut c_void,
                    1,
                    ffi::RSMPI_UINT64_T,
                    *dst as c_int,
                    ack_tag,
                    self.comm,
                    &mut ack_in_reqs[k],
                );
                ffi::MPI_Isend(
                    posts[k].as_ptr() as *const c_void,
                    3,
                    ffi::RSMPI_UINT64_T,
                    *dst as c_int,
                    st.tag,
                    self.comm,
                    &mut post_reqs[k],
                );
            }
            let mut backoff = Backoff(0);
            while !head_reqs.iter_mut().all(|r| test(r)) {
                st.check_deadline();
                backoff.idle();
            }
        }
        let result = self.read_in_place(&heads, visit);
        // SAFETY: as above.
        unsafe {
            for (req, &src) in ack_out_reqs.iter_mut().zip(recv_from) {
                ffi::MPI_Isend(
                    &ack_out as *const u64 as *const c_void,
                    1,
                    ffi::RSMPI_UINT64_T,
                    src as c_int,
                    ack_tag,
                    self.comm,
                    req,
                );
            }
            let mut backoff = Backoff(0);
            loop {
                let done = post_reqs.iter_mut().all(|r| test(r))
                    && ack_out_reqs.iter_mut().all(|r| test(r))
                    && ack_in_reqs.iter_mut().all(|r| test(r));
                if done {
                    break;
                }
                st.check_deadline();
                backoff.idle();
            }
        }
        result
    }

    /// Reads every source described by `heads` ([pid, address, length]) and visits it:
    /// piece by piece when all lengths are equal, whole otherwise.
    fn read_in_place(&self, heads: &[[u64; 3]], visit: &mut Visit<'_>) -> Result<()> {
        let lens: Vec<usize> = heads.iter().map(|h| h[2] as usize).collect();
        let equal = lens.windows(2).all(|w| w[0] == w[1]);
        let total = lens.first().copied().unwrap_or(0);
        let piece = if equal { PIECE.min(total.max(1)) } else { 0 };
        let mut bufs: Vec<Vec<u64>> = lens
            .iter()
            .map(|&l| self.take_buffer(if equal { piece } else { l }.div_ceil(8)))
            .collect();
        let read_err = |e: std::io::Error, h: &[u64; 3]| -> ! {
            abort_job(
                &format!(
                    "fogkit: rank {} could not read {} bytes of process {}: {e}; ending the MPI job",
                    self.rank, h[2], h[0]
                ),
                1,
            )
        };
        let mut result: Result<()>;
        if heads.is_empty() {
            result = visit(0, &[]);
        } else if equal {
            let mut off = 0;
            loop {
                let m = piece.min(total - off);
                for (b, h) in bufs.iter_mut().zip(heads) {
                    let dst = &mut bytemuck::cast_slice_mut::<u64, u8>(b)[..m];
                    if let Err(e) = cma::read(h[0], h[1] + off as u64, dst) {
                        read_err(e, h);
                    }
                }
                let slices: Vec<&[u8]> = bufs
                    .iter()
                    .map(|b| &bytemuck::cast_slice::<u64, u8>(b)[..m])
                    .collect();
                result = visit(off, &slices);
                off += m;
                if result.is_err() || off >= total {
                    break;
                }
            }
        } else {
            for (b, h) in bufs.iter_mut().zip(heads) {
                let dst = &mut bytemuck::cast_slice_mut::<u64, u8>(b)[..h[2] as usize];
                if let Err(e) = cma::read(h[0], h[1], dst) {
                    read_err(e, h);
                }
            }
            let slices: Vec<&[u8]> = bufs
                .iter()
                .zip(&lens)
                .map(|(b, &l)| &bytemuck::cast_slice::<u64, u8>(b)[..l])
                .collect();
            result = visit(0, &slices);
        }
        self.give_back(bufs);
        result
    }
}

impl Transport for MpiTransport {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn name(&self) -> &'static str {
        "mpi"
    }

    fn machine(&self) -> Machine {
        self.machine
    }

    fn describe(&self) -> String {
        if self.cma {
            "mpi (neighbours read in place)".into()
        } else {
            "mpi (point-to-point copies)".into()
        }
    }

    fn exchange(
        &self,
        info: &CallInfo,
        sends: &[(usize, &[u8])],
        recv_from: &[usize],
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        if let Some(e) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Err(e.share());
        }
        let (n, me) = (self.size, self.rank);
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let deadline = start + self.timeout;

        // 1. Share descriptors and check that all calls fit.
        let mine = encode(call, info, sends, recv_from, n);
        let width = mine.len();
        let mut all = vec![0u64; width * n];
        // SAFETY: buffers outlive the request (leaked below if it cannot complete).
        unsafe {
            let mut req: ffi::MPI_Request = ffi::RSMPI_REQUEST_NULL;
            check(
                ffi::MPI_Iallgather(
                    mine.as_ptr() as *const c_void,
                    width as c_int,
                    ffi::RSMPI_UINT64_T,
                    all.as_mut_ptr() as *mut c_void,
                    width as c_int,
                    ffi::RSMPI_UINT64_T,
                    self.comm,
                    &mut req,
                ),
                "MPI_Iallgather",
            )?;
            let mut backoff = Backoff(0);
            while !test(&mut req) {
                if Instant::now() >= deadline {
                    // The request still references both buffers: leak them.
                    std::mem::forget(mine);
                    std::mem::forget(all);
                    let e = Error::Timeout {
                        rank: me,
                        op: info.to_string(),
                        call,
                        waited: start.elapsed(),
                        missing: vec![],
                        detail: " (MPI does not tell which: see the late ranks' own output)".into(),
                    };
                    self.fail(&e);
                    return Err(e);
                }
                backoff.idle();
            }
        }
        let decoded: Vec<_> = all.chunks(width).map(|d| decode(d, n)).collect();
        if let Some((r, d)) = decoded.iter().enumerate().find(|(_, d)| d.0 != call) {
            let e = Error::Mismatch {
                call,
                detail: format!(
                    "rank {r} is at call #{} while rank {me} is at call #{call}",
                    d.0
                ),
            };
            self.fail(&e);
            return Err(e);
        }
        let posts: Vec<Posted<'_>> = decoded
            .iter()
            .map(|(_, i, s, r)| Posted {
                info: i,
                send_to: s.clone(),
                recv_from: r,
            })
            .collect();
        if let Err(e) = check_consistent(call, &posts) {
            self.fail(&e);
            return Err(e);
        }
        if sends.is_empty() && recv_from.is_empty() {
            return visit(0, &[]);
        }

        // 2. Move the data.
        let tag = (call % TAGS) as c_int;
        let stage = Stage {
            me,
            info,
            call,
            start,
            deadline,
            tag,
        };
        // Every rank knows every rank's length, so all choose the same path: in place
        // pays an extra acknowledgement, worth it only for large messages.
        let largest = decoded
            .iter()
            .map(|(_, i, _, _)| i.len * i.dtype.map_or(0, |d| d.size()))
            .max()
            .unwrap_or(0);
        if self.cma && largest >= IN_PLACE_BYTES {
            self.move_in_place(&stage, sends, recv_from, visit)
        } else {
            self.move_by_copy(&stage, sends, recv_from, visit)
        }
    }
}
