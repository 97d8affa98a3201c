//! The copy path: point to point, an 8-byte length, then pieces of at most [`PIECE`]
//! bytes. When all incoming messages have one length, the visitor gets each piece as soon
//! as it has arrived from every source, so the arithmetic reads data still in cache.

use std::collections::VecDeque;

use super::pool::{bytes_mut, Pool};
use super::raw::{Comm, Recv, Request};
use super::wait::{Backoff, Stage};
use crate::transport::Visit;
use crate::{Error, Result};

/// Messages are sent in pieces of at most this many bytes.
pub const PIECE: usize = 1 << 20;

/// One incoming message: its length (once the header is in) and its pieces.
struct Incoming<'b> {
    src: usize,
    header: Option<Recv<'b>>,
    slot: Option<&'b mut Vec<u64>>,
    bytes: usize,
    /// Pieces still in flight, in order.
    pending: VecDeque<Recv<'b>>,
    /// Pieces that have arrived, in order.
    arrived: Vec<&'b [u8]>,
}

/// Sends `sends` and receives from `recv_from`, visiting what arrives.
pub(super) fn move_by_copy(
    comm: &Comm,
    pool: &Pool,
    st: &Stage<'_>,
    sends: &[(usize, &[u8])],
    recv_from: &[usize],
    visit: &mut Visit<'_>,
) -> Result<()> {
    let tag = st.tag;
    let lengths: Vec<u64> = sends.iter().map(|(_, b)| b.len() as u64).collect();
    let mut headers = vec![0u64; recv_from.len()];
    let mut slots: Vec<Vec<u64>> = vec![Vec::new(); recv_from.len()];
    let mut first_err: Option<Error> = None;
    let mut visited = 0usize;
    let mut equal;
    let mut lens = vec![0usize; recv_from.len()];
    {
        let mut send_reqs: Vec<Request<'_>> = Vec::new();
        // Each send request's destination, for a timeout's message.
        let mut send_dst: Vec<usize> = Vec::new();
        for ((dst, data), len) in sends.iter().zip(&lengths) {
            send_reqs.push(comm.isend(bytemuck::bytes_of(len), *dst, tag));
            send_dst.push(*dst);
            for piece in data.chunks(PIECE) {
                send_reqs.push(comm.isend(piece, *dst, tag));
                send_dst.push(*dst);
            }
        }
        let mut incoming: Vec<Incoming<'_>> = headers
            .iter_mut()
            .zip(slots.iter_mut())
            .zip(recv_from)
            .map(|((h, slot), &src)| Incoming {
                src,
                header: Some(comm.irecv(bytemuck::bytes_of_mut(h), src, tag)),
                slot: Some(slot),
                bytes: 0,
                pending: VecDeque::new(),
                arrived: Vec::new(),
            })
            .collect();
        let mut backoff = Backoff::default();
        let mut headers_in = 0;
        let mut sends_done = 0usize;
        loop {
            let mut progressed = false;
            for inc in incoming.iter_mut() {
                if let Some(h) = inc.header.take() {
                    match h.finish() {
                        Ok(b) => {
                            let bytes = bytemuck::pod_read_unaligned::<u64>(b) as usize;
                            inc.bytes = bytes;
                            if let Some(slot) = inc.slot.take() {
                                *slot = pool.take(bytes);
                                for chunk in bytes_mut(slot, bytes).chunks_mut(PIECE) {
                                    inc.pending.push_back(comm.irecv(chunk, inc.src, tag));
                                }
                            }
                            headers_in += 1;
                            progressed = true;
                        }
                        Err(h) => inc.header = Some(h),
                    }
                }
                while let Some(piece) = inc.pending.pop_front() {
                    match piece.finish() {
                        Ok(b) => {
                            inc.arrived.push(b);
                            progressed = true;
                        }
                        Err(p) => {
                            inc.pending.push_front(p);
                            break;
                        }
                    }
                }
            }
            while sends_done < send_reqs.len() && send_reqs[sends_done].test() {
                sends_done += 1;
                progressed = true;
            }
            if headers_in == incoming.len() {
                equal = incoming.windows(2).all(|w| w[0].bytes == w[1].bytes);
                if equal && first_err.is_none() {
                    let ready = incoming.iter().map(|i| i.arrived.len()).min().unwrap_or(0);
                    while visited < ready {
                        let slices: Vec<&[u8]> =
                            incoming.iter().map(|i| i.arrived[visited]).collect();
                        let _reduce = tracing::trace_span!("reduce").entered();
                        if let Err(e) = visit(visited * PIECE, &slices) {
                            first_err = Some(e);
                            break;
                        }
                        visited += 1;
                    }
                }
                let all_in = incoming.iter().all(|i| i.pending.is_empty());
                if all_in && sends_done == send_reqs.len() {
                    break;
                }
            }
            if progressed {
                backoff.reset();
            } else {
                st.check_deadline(|| {
                    let late = incoming
                        .iter()
                        .filter(|i| i.header.is_some() || !i.pending.is_empty())
                        .map(|i| i.src);
                    late.chain(send_dst[sends_done..].iter().copied()).collect()
                });
                backoff.idle();
            }
        }
        for (l, i) in lens.iter_mut().zip(&incoming) {
            *l = i.bytes;
        }
    }
    // Every request has completed: the buffers are ours again.
    let result = match first_err {
        Some(e) => Err(e),
        None if !equal || visited == 0 => {
            let slices: Vec<&[u8]> = slots
                .iter()
                .zip(&lens)
                .map(|(s, &l)| &bytemuck::cast_slice::<u64, u8>(s)[..l])
                .collect();
            let _reduce = tracing::trace_span!("reduce").entered();
            visit(0, &slices)
        }
        None => Ok(()),
    };
    pool.give_back(slots);
    result
}
