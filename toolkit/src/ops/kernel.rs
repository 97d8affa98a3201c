//! The arithmetic of collectives, in one fixed order so that every transport gives the
//! same bits: weighted sums start from the self term and add sources in ascending rank
//! order; reductions go in rank order. Work is done in L1-sized chunks so each output
//! element is written once.

use crate::tensor::Element;
use crate::{Error, Result};

const CHUNK: usize = 2048;

/// `out = self_w * x + sum_k w_k * src_k`, terms in the order given.
pub(crate) fn weighted_sum<E: Element>(out: &mut [E], self_w: E, x: &[E], terms: &[(E, &[E])]) {
    debug_assert!(terms.iter().all(|(_, s)| s.len() == x.len()) && out.len() == x.len());
    for (c, oc) in out.chunks_mut(CHUNK).enumerate() {
        let lo = c * CHUNK;
        let hi = lo + oc.len();
        for (o, &v) in oc.iter_mut().zip(&x[lo..hi]) {
            *o = self_w * v;
        }
        for &(w, src) in terms {
            for (o, &v) in oc.iter_mut().zip(&src[lo..hi]) {
                *o = *o + w * v;
            }
        }
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
