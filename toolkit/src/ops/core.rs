//! The collectives' cores, written once over any [`Transport`]: they build the sends,
//! call [`Transport::exchange`] and combine what arrives in a fixed order (self first,
//! then sources by ascending rank), so every transport gives the same bits. Used by the
//! blocking forms and by the queue of nonblocking work alike; they never touch a
//! communicator's state.

use super::kernel::{self, as_elems, ReduceOp};
use super::weights::Mix;
use super::{Op, Wire};
use crate::tensor::{Communicable, Element};
use crate::transport::CallInfo;
use crate::{Error, Result};

pub(crate) fn info<E: Element>(
    op: Op,
    len: usize,
    same_len: bool,
    root: Option<usize>,
    tag: u64,
) -> CallInfo<Op> {
    CallInfo {
        op,
        dtype: Some(E::DTYPE),
        len,
        same_len,
        root,
        tag,
    }
}

/// An output buffer must have its input's length.
pub(crate) fn same_len<E>(x: &[E], out: &[E]) -> Result<()> {
    if out.len() != x.len() {
        return Err(Error::InvalidArgument(format!(
            "output must have the input's length {}, found {}",
            x.len(),
            out.len()
        )));
    }
    Ok(())
}

fn bytes<E: Element>(x: &[E]) -> &[u8] {
    bytemuck::cast_slice(x)
}

// ---- cores: transport-generic, used by blocking and nonblocking forms ----

pub(crate) fn neighbor_mix<E: Element>(
    t: &Wire,
    op: Op,
    x: &[E],
    out: &mut [E],
    mix: &Mix,
) -> Result<()> {
    same_len(x, out)?;
    // Scaled copies only for destinations that ask for a scale other than 1.
    let scaled: Vec<Option<Vec<E>>> = mix
        .dsts
        .iter()
        .map(|&(_, s)| {
            (s != 1.0).then(|| {
                let s = E::from_f64(s);
                x.iter().map(|&v| s * v).collect()
            })
        })
        .collect();
    let sends: Vec<(usize, &[u8])> = mix
        .dsts
        .iter()
        .zip(&scaled)
        .map(|(&(d, _), sc)| (d, bytes(sc.as_deref().unwrap_or(x))))
        .collect();
    let recv: Vec<usize> = mix.srcs.iter().map(|s| s.0).collect();
    let call = info::<E>(op, x.len(), true, None, mix.tag);
    t.exchange(&call, &sends, &recv, &mut |off, bufs| {
        let (lo, hi) = piece::<E>(off, bufs, x.len())?;
        let mut terms = Vec::with_capacity(bufs.len());
        for (b, &(_, w)) in bufs.iter().zip(&mix.srcs) {
            terms.push((E::from_f64(w), as_elems::<E>(b)?));
        }
        kernel::weighted_sum(
            &mut out[lo..hi],
            E::from_f64(mix.self_weight),
            &x[lo..hi],
            &terms,
        );
        Ok(())
    })
}

/// The element range `lo..hi` that a visit at byte `off` with equal-length pieces `bufs`
/// covers, within a vector of `len` elements (all of it when there are no pieces).
fn piece<E: Element>(off: usize, bufs: &[&[u8]], len: usize) -> Result<(usize, usize)> {
    let size = std::mem::size_of::<E>();
    let lo = off / size;
    let hi = match bufs.first() {
        None => len,
        Some(b) => lo + b.len() / size,
    };
    if off % size != 0 || hi > len || bufs.iter().any(|b| b.len() != (hi - lo) * size) {
        return Err(Error::Tensor(format!(
            "expected pieces of whole {} within {len} elements, found {} bytes at offset {off}",
            E::DTYPE,
            bufs.first().map_or(0, |b| b.len())
        )));
    }
    Ok((lo, hi))
}

fn others(t: &Wire) -> Vec<usize> {
    (0..t.size()).filter(|&r| r != t.rank()).collect()
}

/// Below this many elements, allreduce gathers everything in one round; above, it
/// reduce-scatters then allgathers (each rank receives about 2x the vector, as a ring
/// allreduce does). Both reduce every element in rank order: the same bits.
const ALLREDUCE_ONE_ROUND: usize = 1 << 14;

pub(crate) fn allreduce_core<E: Element>(
    t: &Wire,
    x: &[E],
    out: &mut [E],
    op: ReduceOp,
) -> Result<()> {
    same_len(x, out)?;
    let peers = others(t);
    if x.len() < ALLREDUCE_ONE_ROUND {
        reduce_among(t, &peers, Op::Allreduce, x, out, op)
    } else {
        reduce_scatter_allgather(t, &peers, x, out, op)
    }
}

/// Every rank in `group` (plus this one) reduces all of them, in rank order, in one round.
pub(crate) fn reduce_among<E: Element>(
    t: &Wire,
    group: &[usize],
    opk: Op,
    x: &[E],
    out: &mut [E],
    op: ReduceOp,
) -> Result<()> {
    let me = t.rank();
    let at = group.iter().filter(|&&p| p < me).count();
    let sends: Vec<(usize, &[u8])> = group.iter().map(|&p| (p, bytes(x))).collect();
    let call = info::<E>(opk, x.len(), true, None, op.tag());
    t.exchange(&call, &sends, group, &mut |off, bufs| {
        let (lo, hi) = piece::<E>(off, bufs, x.len())?;
        let mut all: Vec<&[E]> = Vec::with_capacity(bufs.len() + 1);
        for b in bufs {
            all.push(as_elems::<E>(b)?);
        }
        all.insert(at, &x[lo..hi]);
        kernel::reduce(&mut out[lo..hi], &all, op);
        Ok(())
    })
}

fn reduce_scatter_allgather<E: Element>(
    t: &Wire,
    peers: &[usize],
    x: &[E],
    out: &mut [E],
    op: ReduceOp,
) -> Result<()> {
    let (n, me, len) = (t.size(), t.rank(), x.len());
    let bounds = |r: usize| (r * len / n, (r + 1) * len / n);
    // Round 1: rank r reduces chunk r of everyone's vector.
    let sends: Vec<(usize, &[u8])> = peers
        .iter()
        .map(|&p| {
            let (lo, hi) = bounds(p);
            (p, bytes(&x[lo..hi]))
        })
        .collect();
    let (mlo, mhi) = bounds(me);
    let mut mine = vec![E::default(); mhi - mlo];
    let call = info::<E>(Op::Allreduce, len, true, None, op.tag());
    t.exchange(&call, &sends, peers, &mut |off, bufs| {
        let (lo, hi) = piece::<E>(off, bufs, mhi - mlo)?;
        let mut all: Vec<&[E]> = Vec::with_capacity(bufs.len() + 1);
        for b in bufs {
            all.push(as_elems::<E>(b)?);
        }
        all.insert(me, &x[mlo + lo..mlo + hi]);
        kernel::reduce(&mut mine[lo..hi], &all, op);
        Ok(())
    })?;
    // Round 2: everyone gathers the reduced chunks.
    out[mlo..mhi].copy_from_slice(&mine);
    let sends: Vec<(usize, &[u8])> = peers.iter().map(|&p| (p, bytes(&mine))).collect();
    let call = info::<E>(Op::Allreduce, len, true, None, op.tag() | 1 << 32);
    t.exchange(&call, &sends, peers, &mut |off, bufs| {
        for (b, &p) in bufs.iter().zip(peers) {
            let (plo, phi) = bounds(p);
            let s = as_elems::<E>(b)?;
            let lo = plo + off / std::mem::size_of::<E>();
            if lo + s.len() > phi {
                return Err(Error::Tensor(format!(
                    "expected at most {} elements of chunk {p}, found {}",
                    phi - plo,
                    lo + s.len() - plo
                )));
            }
            out[lo..lo + s.len()].copy_from_slice(s);
        }
        Ok(())
    })
}

pub(crate) fn broadcast_core<E: Element>(t: &Wire, x: &[E], root: usize) -> Result<Vec<E>> {
    let n = t.size();
    if root >= n {
        return Err(Error::InvalidArgument(format!(
            "broadcast root must be a rank below {n}, found {root}"
        )));
    }
    let me = t.rank();
    let (sends, recv): (Vec<(usize, &[u8])>, Vec<usize>) = if me == root {
        (
            others(t).into_iter().map(|p| (p, bytes(x))).collect(),
            vec![],
        )
    } else {
        (vec![], vec![root])
    };
    let call = info::<E>(Op::Broadcast, x.len(), true, Some(root), 0);
    let mut out = if me == root {
        x.to_vec()
    } else {
        Vec::with_capacity(x.len())
    };
    t.exchange(&call, &sends, &recv, &mut |_, bufs| {
        if let Some(b) = bufs.first() {
            out.extend_from_slice(as_elems::<E>(b)?);
        }
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn gather_from<E: Element>(
    t: &Wire,
    op: Op,
    x: &[E],
    srcs: &[usize],
    dsts: &[usize],
    tag: u64,
) -> Result<Vec<Vec<E>>> {
    let sends: Vec<(usize, &[u8])> = dsts.iter().map(|&p| (p, bytes(x))).collect();
    let call = info::<E>(op, x.len(), false, None, tag);
    let mut out: Vec<Vec<E>> = vec![Vec::new(); srcs.len()];
    t.exchange(&call, &sends, srcs, &mut |_, bufs| {
        for (o, b) in out.iter_mut().zip(bufs) {
            o.extend_from_slice(as_elems::<E>(b)?);
        }
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn allgather_core<E: Element>(t: &Wire, x: &[E]) -> Result<Vec<Vec<E>>> {
    let peers = others(t);
    let mut v = gather_from(t, Op::Allgather, x, &peers, &peers, 0)?;
    v.insert(t.rank(), x.to_vec());
    Ok(v)
}

pub(crate) fn rebuild_all<T: Communicable + ?Sized>(
    x: &T,
    parts: Vec<Vec<T::Elem>>,
) -> Result<Vec<T::Output>> {
    parts.into_iter().map(|p| x.rebuild(p)).collect()
}

pub(crate) fn sorted_unique(
    what: &str,
    ranks: &[usize],
    n: usize,
    me: usize,
) -> Result<Vec<usize>> {
    let mut v = ranks.to_vec();
    v.sort_unstable();
    v.dedup();
    if v.len() != ranks.len() {
        return Err(Error::InvalidArgument(format!(
            "{what} lists a rank twice: {ranks:?}"
        )));
    }
    if let Some(&r) = v.iter().find(|&&r| r >= n || r == me) {
        return Err(Error::InvalidArgument(format!(
            "{what} must be other ranks below {n}, found {r} (this is rank {me})"
        )));
    }
    Ok(v)
}
