//! 2-D convolution as an im2col and a matrix product per image, with its own backward.

use dfdx::prelude::*;
use rand_distr::Uniform;

use super::gemm::{give, matmul, matmul_to, take, View};
use super::{images_shape, ConvDevice, Images};

/// Output side length of a window of `k` sliding with `stride` over `n + 2 padding` cells.
///
/// # Panics
/// If the window does not fit in the padded input or `stride` is zero.
pub fn out_size(n: usize, k: usize, stride: usize, padding: usize) -> usize {
    assert!(stride > 0, "convolution stride must be at least 1, found 0");
    assert!(
        n + 2 * padding >= k,
        "a {k}x{k} window does not fit an input of side {n} with padding {padding}"
    );
    (n + 2 * padding - k) / stride + 1
}

/// Geometry of one convolution: batch, channels, sides, kernel, stride, padding.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    /// Columns of the patch matrix: one per (channel, kernel row, kernel column).
    fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Writes the patch matrix of image `img` of the batch `x` into `patches`.
    fn patches(&self, img: usize, x: &[f32], patches: &mut [f32]) {
        let (ow, s) = (self.ow, self.stride);
        self.for_each_row(img, |at, src| {
            let run = &mut patches[at..at + ow];
            match src {
                None => run.fill(0.0),
                Some((i, lo, hi)) => {
                    if lo > 0 {
                        run[..lo].fill(0.0);
                    }
                    if hi < ow {
                        run[hi..].fill(0.0);
                    }
                    if s == 1 {
                        run[lo..hi].copy_from_slice(&x[i..i + hi - lo]);
                    } else {
                        let from = x[i..].iter().step_by(s);
                        run[lo..hi].iter_mut().zip(from).for_each(|(d, &v)| *d = v);
                    }
                }
            }
        });
    }

    /// Visits the patch matrix of image `img`, `[C*K*K, OH*OW]` row-major (one row per
    /// channel and kernel cell, one column per output pixel): `f(at, src)` gets each run of
    /// `OW` cells (one output row) starting at `at`, and `src = Some((i, lo, hi))` when cells
    /// `lo..hi` of the run read input cells `i, i + stride, ...` (the others lie in the
    /// padding), or `None` when the whole run does.
    #[inline(always)]
    fn for_each_row(&self, img: usize, mut f: impl FnMut(usize, Option<(usize, usize, usize)>)) {
        let (k, s, pad) = (self.k, self.stride, self.pad);
        let ohw = self.oh * self.ow;
        for c in 0..self.c {
            let plane = (img * self.c + c) * self.h * self.w;
            for ki in 0..k {
                for kj in 0..k {
                    let r = (c * k + ki) * k + kj;
                    // Output columns whose input column ox * s + kj - pad lies in 0..w.
                    let lo = pad.saturating_sub(kj).div_ceil(s).min(self.ow);
                    let hi = (self.w + pad)
                        .saturating_sub(kj)
                        .div_ceil(s)
                        .clamp(lo, self.ow);
                    for oy in 0..self.oh {
                        let at = r * ohw + oy * self.ow;
                        let iy = (oy * s + ki) as isize - pad as isize;
                        if iy < 0 || iy >= self.h as isize || lo == hi {
                            f(at, None);
                        } else {
                            let i = plane + iy as usize * self.w + lo * s + kj - pad;
                            f(at, Some((i, lo, hi)));
                        }
                    }
                }
            }
        }
    }
}

/// `y = conv(x, weight) + bias` over a batch of images (NCHW), weight `[O, C, K, K]`.
///
/// Gradients flow to `x` (when `input_grad`; a network's first layer needs none), `weight`
/// and `bias`. On the CPU, fogkit's own im2col and products; on other devices, dfdx's ops
/// composed ([`composed::conv2d`](super::composed::conv2d)).
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{conv2d, Images};
/// let dev: Cpu = Default::default();
/// let x: Images<1> = dev.tensor_from_vec((0..16).map(|v| v as f32).collect(), (1, Const, 4, 4));
/// let w = dev.tensor([[[[1.0f32, 0.0], [0.0, -1.0]]]]); // x[i][j] - x[i+1][j+1]
/// let b = dev.tensor([0.5f32]);
/// let y = conv2d(x, &w, &b, 1, 0, true).unwrap();
/// assert_eq!(y.shape().2, 3);
/// assert!(y.as_vec().iter().all(|&v| v == -4.5));
/// ```
///
/// # Panics
/// If the kernel does not fit in the padded input, or `stride` is zero.
pub fn conv2d<const C: usize, const O: usize, const K: usize, D: ConvDevice, T: Tape<f32, D>>(
    x: Images<C, T, D>,
    weight: &Tensor<Rank4<O, C, K, K>, f32, D>,
    bias: &Tensor<Rank1<O>, f32, D>,
    stride: usize,
    padding: usize,
    input_grad: bool,
) -> Result<Images<O, T, D>, D::Err> {
    D::conv2d(x, weight, bias, stride, padding, input_grad)
}

/// [`conv2d`] on the CPU: an im2col and a matrix product per image. Backward makes each
/// image's patches again (cheaper than keeping them: they stay in cache), then two products
/// and a col2im per image.
pub(crate) fn cpu_conv2d<const C: usize, const O: usize, const K: usize, T: Tape<f32, Cpu>>(
    x: Images<C, T>,
    weight: &Tensor<Rank4<O, C, K, K>, f32, Cpu>,
    bias: &Tensor<Rank1<O>, f32, Cpu>,
    stride: usize,
    padding: usize,
    input_grad: bool,
) -> Result<Images<O, T>, CpuError> {
    let (n, _, h, w) = *x.shape();
    let g = Geometry {
        c: C,
        h,
        w,
        k: K,
        stride,
        pad: padding,
        oh: out_size(h, K, stride, padding),
        ow: out_size(w, K, stride, padding),
    };
    // Contiguous (a copy only if it is a view): the patches read the physical data.
    let (x, mut tape) = x.try_reshape_like(&(n, Const::<C>, h, w))?.split_tape();
    let (ckk, ohw, s) = (g.ckk(), g.oh * g.ow, g.stride);
    let mut xv = take(x.shape().num_elements());
    x.copy_into(&mut xv[..]);
    // One image's patch matrix at a time, [C*K*K, OH*OW]: small enough to stay in cache
    // between being written and being read, and made again in backward rather than kept.
    let mut patches = take(ohw * ckk);
    let wv = weight.as_vec();
    let bv = bias.as_vec();
    // y_img[o, pixel] = bias[o] + sum_r w[o, r] patches[r, pixel], computed as its
    // transpose (pixels down the rows, contiguous: `gemm` then reads the patches unpacked).
    let mut yv = Vec::with_capacity(n * O * ohw);
    for _ in 0..n {
        bv.iter()
            .for_each(|&b| yv.extend(std::iter::repeat(b).take(ohw)));
    }
    for (img, y) in yv.chunks_mut(O * ohw).enumerate() {
        g.patches(img, &xv, &mut patches);
        matmul_to(
            ohw,
            O,
            ckk,
            View::transposed(&patches, ohw),
            View::transposed(&wv, ckk),
            y,
            (1, ohw),
            true,
        );
    }
    let y = x
        .device()
        .try_tensor_from_vec(yv, images_shape::<O>(n, g.oh, g.ow))?;
    if T::OWNS_TAPE {
        let (xg, wg, bg, yg) = (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let mut dy = take(n * O * ohw);
            dy.copy_from_slice(grads.get_or_alloc_mut(&yg)?);
            let dw = grads.get_or_alloc_mut(&wg)?;
            // dy_img transposed, [OH*OW, O]: the product reads it down its columns as
            // `gemm` wants, instead of packing it (which cost more than this copy).
            let mut dyt = take(O * ohw);
            for img in 0..n {
                // dw[o, r] += sum_pixel dy_img[o, pixel] patches[r, pixel]
                let dyi = &dy[img * O * ohw..(img + 1) * O * ohw];
                for (o, plane) in dyi.chunks_exact(ohw).enumerate() {
                    for (p, &v) in plane.iter().enumerate() {
                        dyt[p * O + o] = v;
                    }
                }
                g.patches(img, &xv, &mut patches);
                let a = View::transposed(&dyt, O);
                matmul(O, ckk, ohw, a, View::transposed(&patches, ohw), dw, true);
            }
            give(dyt);
            let db = grads.get_or_alloc_mut(&bg)?;
            for (img_o, plane) in dy.chunks(ohw).enumerate() {
                db[img_o % O] += plane.iter().sum::<f32>();
            }
            if input_grad {
                let dx = grads.get_or_alloc_mut(&xg)?;
                let mut dpatch = take(ohw * ckk);
                for img in 0..n {
                    // dpatches[r, pixel] = sum_o w[o, r] dy_img[o, pixel] (computed as its
                    // transpose, like the forward product), then col2im.
                    let dyt = View::transposed(&dy[img * O * ohw..(img + 1) * O * ohw], ohw);
                    let wr = View::rows(&wv, ckk);
                    matmul_to(ohw, ckk, O, dyt, wr, &mut dpatch, (1, ohw), false);
                    g.for_each_row(img, |at, src| {
                        if let Some((i, lo, hi)) = src {
                            let run = &dpatch[at + lo..at + hi];
                            if s == 1 {
                                let to = &mut dx[i..i + hi - lo];
                                to.iter_mut().zip(run).for_each(|(d, v)| *d += v);
                            } else {
                                let to = dx[i..].iter_mut().step_by(s);
                                to.zip(run).for_each(|(d, v)| *d += v);
                            }
                        }
                    });
                }
                give(dpatch);
            }
            give(dy);
            give(patches);
            give(xv);
            Ok(())
        });
    } else {
        give(patches);
        give(xv);
    }
    Ok(y.put_tape(tape))
}

/// A 2-D convolution layer: `I` input and `O` output channels, a `K`x`K` kernel, stride `S`
/// and zero padding `P`. Weights start uniform in `±1/sqrt(I K K)` (as PyTorch's and dfdx's
/// layers do).
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{Conv2D, Images};
/// let dev: Cpu = Default::default();
/// let conv = dev.build_module::<Conv2D<1, 6, 5, 1, 2>, f32>();
/// let x: Images<1> = dev.zeros_like(&(8, Const, 28, 28));
/// let y = conv.forward(x);
/// assert_eq!(y.shape().3, 28);
/// ```
#[derive(Clone, Debug)]
pub struct Conv2D<
    const I: usize,
    const O: usize,
    const K: usize,
    const S: usize = 1,
    const P: usize = 0,
    E: Dtype = f32,
    D: Storage<E> = Cpu,
> {
    /// `[O, I, K, K]`.
    pub weight: Tensor<Rank4<O, I, K, K>, E, D>,
    /// `[O]`.
    pub bias: Tensor<Rank1<O>, E, D>,
    /// Whether backward computes the input's gradient (off for a network's first layer).
    pub input_grad: bool,
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, D>
    TensorCollection<E, D> for Conv2D<I, O, K, S, P, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Conv2D<I, O, K, S, P, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| {
                        let b = E::ONE / E::from_usize(I * K * K).unwrap_or(E::ONE).sqrt();
                        t.try_fill_with_distr(Uniform::new(-b, b))
                    }),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(|t| {
                        let b = E::ONE / E::from_usize(I * K * K).unwrap_or(E::ONE).sqrt();
                        t.try_fill_with_distr(Uniform::new(-b, b))
                    }),
                ),
            ),
            |(weight, bias)| Conv2D {
                weight,
                bias,
                input_grad: true,
            },
        )
    }
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, E, D>
    BuildOnDevice<D, E> for Conv2D<I, O, K, S, P, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type Built = Self;
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize, D>
    NonMutableModule for Conv2D<I, O, K, S, P, f32, D>
where
    D: ConvDevice,
{
}

impl<
        const I: usize,
        const O: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        D: ConvDevice,
        T: Tape<f32, D>,
    > Module<Images<I, T, D>> for Conv2D<I, O, K, S, P, f32, D>
{
    type Output = Images<O, T, D>;
    type Error = D::Err;

    fn try_forward(&self, x: Images<I, T, D>) -> Result<Images<O, T, D>, D::Err> {
        conv2d(x, &self.weight, &self.bias, S, P, self.input_grad)
    }
}
