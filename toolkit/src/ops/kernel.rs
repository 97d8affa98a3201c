//! The arithmetic of collectives, in one fixed order so that every transport gives the
//! same bits: weighted sums start from the self term and add sources in ascending rank
//! order; reductions go in rank order. Work is done in L1-sized chunks so each output
//! element is written once.

use crate::tensor::Element;
use crate::{Error, Result};

const CHUNK: usize = 2048;

/// Outputs at least this large are written with non-temporal stores: they would not stay
/// in cache anyway, and streaming them skips reading each line before writing it.
const STREAM_BYTES: usize = 8 << 20;

/// `out = self_w * x + sum_k w_k * src_k`, terms in the order given.
pub(crate) fn weighted_sum<E: Element>(out: &mut [E], self_w: E, x: &[E], terms: &[(E, &[E])]) {
    debug_assert!(terms.iter().all(|(_, s)| s.len() == x.len()) && out.len() == x.len());
    let stream = std::mem::size_of_val(out) >= STREAM_BYTES;
    let mut tmp = [E::default(); CHUNK];
    for (c, oc) in out.chunks_mut(CHUNK).enumerate() {
        let lo = c * CHUNK;
        let hi = lo + oc.len();
        let acc = if stream {
            &mut tmp[..oc.len()]
        } else {
            &mut *oc
        };
        for (o, &v) in acc.iter_mut().zip(&x[lo..hi]) {
            *o = self_w * v;
        }
        for &(w, src) in terms {
            for (o, &v) in acc.iter_mut().zip(&src[lo..hi]) {
                *o = *o + w * v;
            }
        }
        if stream {
            let m = oc.len();
            stream_copy(
                bytemuck::cast_slice_mut(oc),
                bytemuck::cast_slice(&tmp[..m]),
            );
        }
    }
    if stream {
        stream_fence();
    }
}

/// Copies `src` to `dst` (same length) with non-temporal stores where possible.
#[cfg(target_arch = "x86_64")]
fn stream_copy(dst: &mut [u8], src: &[u8]) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
    let head = dst.as_ptr().align_offset(16).min(dst.len());
    dst[..head].copy_from_slice(&src[..head]);
    let mut i = head;
    while i + 16 <= dst.len() {
        // SAFETY: i + 16 <= len for both slices; dst + i is 16-byte aligned; SSE2 is part
        // of every x86_64 target.
        unsafe {
            let v = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
            _mm_stream_si128(dst.as_mut_ptr().add(i) as *mut __m128i, v);
        }
        i += 16;
    }
    dst[i..].copy_from_slice(&src[i..]);
}

#[cfg(not(target_arch = "x86_64"))]
fn stream_copy(dst: &mut [u8], src: &[u8]) {
    dst.copy_from_slice(src);
}

/// Orders the streamed stores before what follows (other ranks read the output).
fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_sfence();
    }
}

/// Elementwise reductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum over ranks.
    Sum,
    /// Sum over ranks divided by the number of ranks (BlueFog's default).
    Avg,
    /// Minimum over ranks.
    Min,
    /// Maximum over ranks.
    Max,
}

impl ReduceOp {
    pub(crate) fn tag(self) -> u64 {
        self as u64
    }
}

/// `out = bufs[0] op bufs[1] op ...`, in that order.
pub(crate) fn reduce<E: Element>(out: &mut [E], bufs: &[&[E]], op: ReduceOp) {
    let n = E::from_f64(bufs.len() as f64);
    for (c, oc) in out.chunks_mut(CHUNK).enumerate() {
        let lo = c * CHUNK;
        let hi = lo + oc.len();
        oc.copy_from_slice(&bufs[0][lo..hi]);
        for b in &bufs[1..] {
            let b = &b[lo..hi];
            match op {
                ReduceOp::Sum | ReduceOp::Avg => {
                    for (o, &v) in oc.iter_mut().zip(b) {
                        *o = *o + v;
                    }
                }
                ReduceOp::Min => {
                    for (o, &v) in oc.iter_mut().zip(b) {
                        if v < *o {
                            *o = v;
                        }
                    }
                }
                ReduceOp::Max => {
                    for (o, &v) in oc.iter_mut().zip(b) {
                        if v > *o {
                            *o = v;
                        }
                    }
                }
            }
        }
        if op == ReduceOp::Avg {
            for o in oc.iter_mut() {
                *o = *o / n;
            }
        }
    }
}

/// Views received bytes as elements.
pub(crate) fn as_elems<E: Element>(b: &[u8]) -> Result<&[E]> {
    bytemuck::try_cast_slice(b).map_err(|e| {
        Error::Tensor(format!(
            "received {} bytes that are not a whole, aligned number of {}: {e}",
            b.len(),
            E::DTYPE
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_sum_matches_scalar_formula_across_chunks() {
        let n = 3 * CHUNK + 17;
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let a: Vec<f64> = (0..n).map(|i| (i * 2) as f64).collect();
        let b: Vec<f64> = (0..n).map(|i| 1.0 - i as f64).collect();
        let mut out = vec![0.0; n];
        weighted_sum(&mut out, 0.5, &x, &[(0.25, &a), (0.25, &b)]);
        for i in 0..n {
            assert_eq!(out[i], 0.5 * x[i] + 0.25 * a[i] + 0.25 * b[i]);
        }
    }

    #[test]
    fn streamed_outputs_have_the_same_bits() {
        let n = STREAM_BYTES / 4 + 1001; // f32, above the streaming threshold, odd length
        let x: Vec<f32> = (0..n).map(|i| (i % 977) as f32 * 0.37).collect();
        let a: Vec<f32> = (0..n).map(|i| (i % 311) as f32 * -1.3).collect();
        let mut out = vec![0.0f32; n];
        // An unaligned start for the output too.
        weighted_sum(&mut out[1..], 0.3, &x[1..], &[(0.7, &a[1..])]);
        for i in 1..n {
            assert_eq!(
                out[i].to_bits(),
                (0.3f32 * x[i] + 0.7f32 * a[i]).to_bits(),
                "{i}"
            );
        }
        assert_eq!(out[0], 0.0);
    }

    #[test]
    fn reduce_ops() {
        let a = [1.0f32, 5.0, -2.0];
        let b = [3.0f32, 1.0, 4.0];
        let mut out = [0.0f32; 3];
        reduce(&mut out, &[&a, &b], ReduceOp::Sum);
        assert_eq!(out, [4.0, 6.0, 2.0]);
        reduce(&mut out, &[&a, &b], ReduceOp::Avg);
        assert_eq!(out, [2.0, 3.0, 1.0]);
        reduce(&mut out, &[&a, &b], ReduceOp::Min);
        assert_eq!(out, [1.0, 1.0, -2.0]);
        reduce(&mut out, &[&a, &b], ReduceOp::Max);
        assert_eq!(out, [3.0, 5.0, 4.0]);
    }
}
