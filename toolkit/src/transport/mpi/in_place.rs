//! The in-place path (all ranks on one host): each sender posts (pid, address, length)
//! and keeps its buffer until every reader acknowledges; each reader pulls pieces into
//! cache-sized scratch buffers with `process_vm_readv` (see `cma`) and hands them to the
//! visitor at once.

use super::copy::PIECE;
use super::pool::{bytes_mut, Pool};
use super::raw::{abort_job, Comm, Recv, Request};
use super::wait::{Backoff, Stage};
use super::{cma, TAGS};
use crate::transport::Visit;
use crate::Result;

/// Posts this rank's send buffers, reads its sources in place, and waits until its own
/// readers are done.
pub(super) fn move_in_place(
    comm: &Comm,
    pool: &Pool,
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
    let ack_tag = st.tag + TAGS as i32;
    let mut backoff = Backoff::default();

    let head_reqs: Vec<Recv<'_>> = heads
        .iter_mut()
        .zip(recv_from)
        .map(|(h, &src)| comm.irecv(bytemuck::bytes_of_mut(h), src, st.tag))
        .collect();
    let mut ack_in_reqs: Vec<Recv<'_>> = acks_in
        .iter_mut()
        .zip(sends)
        .map(|(a, (dst, _))| comm.irecv(bytemuck::bytes_of_mut(a), *dst, ack_tag))
        .collect();
    let mut post_reqs: Vec<Request<'_>> = posts
        .iter()
        .zip(sends)
        .map(|(p, (dst, _))| comm.isend(bytemuck::bytes_of(p), *dst, st.tag))
        .collect();
    let mut head_reqs = head_reqs;
    loop {
        let done: Vec<bool> = head_reqs.iter_mut().map(|r| r.test()).collect();
        if done.iter().all(|&d| d) {
            break;
        }
        st.check_deadline(|| late(recv_from, &done));
        backoff.idle();
    }
    drop(head_reqs);

    // The senders keep their buffers until we acknowledge below.
    let result = tracing::trace_span!("transfer").in_scope(|| read(pool, st, &heads, visit));

    let mut ack_out_reqs: Vec<Request<'_>> = recv_from
        .iter()
        .map(|&src| comm.isend(bytemuck::bytes_of(&ack_out), src, ack_tag))
        .collect();
    let _readers = tracing::trace_span!("wait_readers").entered();
    loop {
        let posted: Vec<bool> = post_reqs.iter_mut().map(|r| r.test()).collect();
        let acked: Vec<bool> = ack_out_reqs.iter_mut().map(|r| r.test()).collect();
        let read: Vec<bool> = ack_in_reqs.iter_mut().map(|r| r.test()).collect();
        if posted.iter().chain(&acked).chain(&read).all(|&d| d) {
            break;
        }
        st.check_deadline(|| {
            let dsts: Vec<usize> = sends.iter().map(|s| s.0).collect();
            let mut l = late(&dsts, &posted);
            l.extend(late(recv_from, &acked));
            l.extend(late(&dsts, &read));
            l
        });
        backoff.idle();
    }
    result
}

/// The peers whose request is not `done`.
fn late(peers: &[usize], done: &[bool]) -> Vec<usize> {
    peers
        .iter()
        .zip(done)
        .filter(|(_, &d)| !d)
        .map(|(&p, _)| p)
        .collect()
}

/// Reads every source described by `heads` ([pid, address, length]) and visits it:
/// piece by piece when all lengths are equal, whole otherwise.
fn read(pool: &Pool, st: &Stage<'_>, heads: &[[u64; 3]], visit: &mut Visit<'_>) -> Result<()> {
    let lens: Vec<usize> = heads.iter().map(|h| h[2] as usize).collect();
    let equal = lens.windows(2).all(|w| w[0] == w[1]);
    let total = lens.first().copied().unwrap_or(0);
    let piece = if equal { PIECE.min(total.max(1)) } else { 0 };
    let mut bufs: Vec<Vec<u64>> = lens
        .iter()
        .map(|&l| pool.take(if equal { piece } else { l }))
        .collect();
    let read_or_end = |h: &[u64; 3], at: u64, dst: &mut [u8]| {
        if let Err(e) = cma::read(h[0], h[1] + at, dst) {
            abort_job(
                &format!(
                    "fogkit: rank {} could not read {} bytes of process {}: {e}; ending the MPI job",
                    st.me, h[2], h[0]
                ),
                1,
            )
        }
    };
    let reduce = || tracing::trace_span!("reduce").entered();
    let mut result: Result<()>;
    if heads.is_empty() {
        result = visit(0, &[]);
    } else if equal {
        let mut off = 0;
        loop {
            let m = piece.min(total - off);
            for (b, h) in bufs.iter_mut().zip(heads) {
                read_or_end(h, off as u64, bytes_mut(b, m));
            }
            let slices: Vec<&[u8]> = bufs
                .iter()
                .map(|b| &bytemuck::cast_slice::<u64, u8>(b)[..m])
                .collect();
            result = {
                let _r = reduce();
                visit(off, &slices)
            };
            off += m;
            if result.is_err() || off >= total {
                break;
            }
        }
    } else {
        for ((b, h), &l) in bufs.iter_mut().zip(heads).zip(&lens) {
            read_or_end(h, 0, bytes_mut(b, l));
        }
        let slices: Vec<&[u8]> = bufs
            .iter()
            .zip(&lens)
            .map(|(b, &l)| &bytemuck::cast_slice::<u64, u8>(b)[..l])
            .collect();
        let _r = reduce();
        result = visit(0, &slices);
    }
    pool.give_back(bufs);
    result
}
