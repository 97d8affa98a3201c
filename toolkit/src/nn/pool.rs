//! 2-D max and average pooling with their own backward.

use dfdx::prelude::*;

use super::conv::out_size;
use super::gemm::{give, take};
use super::{images_shape, ConvDevice, Images, Pool};

/// [`max_pool2d`] and [`avg_pool2d`] on the CPU, each window read in place; the argmax is
/// kept for backward.
pub(crate) fn cpu_pool2d<const C: usize, T: Tape<f32, Cpu>>(
    x: Images<C, T>,
    k: usize,
    stride: usize,
    reduce: Pool,
) -> Result<Images<C, T>, CpuError> {
    assert!(k > 0, "pooling window must be at least 1x1, found 0");
    let (n, _, h, w) = *x.shape();
    let (oh, ow) = (out_size(h, k, stride, 0), out_size(w, k, stride, 0));
    // Contiguous (a copy only if it is a view), then read in one copy into a pooled buffer.
    let (x, mut tape) = x.try_reshape_like(&(n, Const::<C>, h, w))?.split_tape();
    let mut xv = take(x.shape().num_elements());
    x.copy_into(&mut xv);
    let planes = n * C;
    let mut yv = vec![0.0f32; planes * oh * ow];
    // For max pooling, the input index that won each output (ties: the first in the window).
    let mut argmax = if reduce == Pool::Max {
        vec![0u32; yv.len()]
    } else {
        Vec::new()
    };
    let scale = 1.0 / (k * k) as f32;
    for p in 0..planes {
        let plane = &xv[p * h * w..][..h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let out = (p * oh + oy) * ow + ox;
                let (y0, x0) = (oy * stride, ox * stride);
                match reduce {
                    Pool::Max => {
                        let mut best = (f32::NEG_INFINITY, y0 * w + x0);
                        for iy in y0..y0 + k {
                            for ix in x0..x0 + k {
                                let v = plane[iy * w + ix];
                                if v > best.0 {
                                    best = (v, iy * w + ix);
                                }
                            }
                        }
                        yv[out] = best.0;
                        argmax[out] = (p * h * w + best.1) as u32;
                    }
                    Pool::Avg => {
                        let mut sum = 0.0;
                        for iy in y0..y0 + k {
                            sum += plane[iy * w + x0..][..k].iter().sum::<f32>();
                        }
                        yv[out] = sum * scale;
                    }
                }
            }
        }
    }
    give(xv);
    let y = x
        .device()
        .try_tensor_from_vec(yv, images_shape::<C>(n, oh, ow))?;
    if T::OWNS_TAPE {
        let (xg, yg) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let mut dy = take(planes * oh * ow);
            dy.copy_from_slice(grads.get_or_alloc_mut(&yg)?);
            let dx = grads.get_or_alloc_mut(&xg)?;
            match reduce {
                Pool::Max => {
                    for (d, &i) in dy.iter().zip(&argmax) {
                        dx[i as usize] += d;
                    }
                }
                Pool::Avg => {
                    for p in 0..planes {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let d = dy[(p * oh + oy) * ow + ox] * scale;
                                for iy in oy * stride..oy * stride + k {
                                    let row = p * h * w + iy * w + ox * stride;
                                    dx[row..row + k].iter_mut().for_each(|v| *v += d);
                                }
                            }
                        }
                    }
                }
            }
            give(dy);
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}

/// Max over each `k`x`k` window, moved by `stride`; the gradient goes to each window's
/// maximum (the first one on ties).
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{max_pool2d, Images};
/// let dev: Cpu = Default::default();
/// let x: Images<1> = dev.tensor_from_vec((0..16).map(|v| v as f32).collect(), (1, Const, 4, 4));
/// assert_eq!(max_pool2d(x, 2, 2).unwrap().as_vec(), [5.0, 7.0, 13.0, 15.0]);
/// ```
///
/// # Panics
/// If the window is empty or larger than the input, or `stride` is zero.
pub fn max_pool2d<const C: usize, D: ConvDevice, T: Tape<f32, D>>(
    x: Images<C, T, D>,
    k: usize,
    stride: usize,
) -> Result<Images<C, T, D>, D::Err> {
    D::pool2d(x, k, stride, Pool::Max)
}

/// Mean over each `k`x`k` window, moved by `stride`.
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{avg_pool2d, Images};
/// let dev: Cpu = Default::default();
/// let x: Images<1> = dev.tensor_from_vec((0..16).map(|v| v as f32).collect(), (1, Const, 4, 4));
/// assert_eq!(avg_pool2d(x, 2, 2).unwrap().as_vec(), [2.5, 4.5, 10.5, 12.5]);
/// ```
///
/// # Panics
/// If the window is empty or larger than the input, or `stride` is zero.
pub fn avg_pool2d<const C: usize, D: ConvDevice, T: Tape<f32, D>>(
    x: Images<C, T, D>,
    k: usize,
    stride: usize,
) -> Result<Images<C, T, D>, D::Err> {
    D::pool2d(x, k, stride, Pool::Avg)
}

/// Layer form of [`max_pool2d`]: window `K`, stride `S` (default `K`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MaxPool2D<const K: usize, const S: usize = K>;

/// Layer form of [`avg_pool2d`]: window `K`, stride `S` (default `K`).
#[derive(Clone, Copy, Debug, Default)]
pub struct AvgPool2D<const K: usize, const S: usize = K>;

impl<const K: usize, const S: usize> ZeroSizedModule for MaxPool2D<K, S> {}
impl<const K: usize, const S: usize> NonMutableModule for MaxPool2D<K, S> {}
impl<const K: usize, const S: usize> ZeroSizedModule for AvgPool2D<K, S> {}
impl<const K: usize, const S: usize> NonMutableModule for AvgPool2D<K, S> {}

impl<const K: usize, const S: usize, const C: usize, D: ConvDevice, T: Tape<f32, D>>
    Module<Images<C, T, D>> for MaxPool2D<K, S>
{
    type Output = Images<C, T, D>;
    type Error = D::Err;
    fn try_forward(&self, x: Images<C, T, D>) -> Result<Images<C, T, D>, D::Err> {
        max_pool2d(x, K, S)
    }
}

impl<const K: usize, const S: usize, const C: usize, D: ConvDevice, T: Tape<f32, D>>
    Module<Images<C, T, D>> for AvgPool2D<K, S>
{
    type Output = Images<C, T, D>;
    type Error = D::Err;
    fn try_forward(&self, x: Images<C, T, D>) -> Result<Images<C, T, D>, D::Err> {
        avg_pool2d(x, K, S)
    }
}
