//! 2-D convolution as an im2col and a matrix product per image, with its own backward.

use dfdx::prelude::*;
use rand_distr::Uniform;

use super::gemm::{give, matmul_to, take, View};
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

    /// Values in one padded plane: `(H + 2P) x (W + 2P)`.
    fn padded_plane(&self) -> usize {
        (self.h + 2 * self.pad) * (self.w + 2 * self.pad)
    }

    /// Image `img` of the batch `x` as its `C` planes, each inside a border of `pad` zeros:
    /// `x`'s own values when there is no padding, else written into `buf`. Every run of a
    /// patch row is then one plain copy, with no padding logic per run.
    fn padded_image<'a>(&self, img: usize, x: &'a [f32], buf: &'a mut [f32]) -> &'a [f32] {
        let (h, w, p) = (self.h, self.w, self.pad);
        let image = &x[img * self.c * h * w..][..self.c * h * w];
        if p == 0 {
            return image;
        }
        let (pw, pp) = (w + 2 * p, self.padded_plane());
        let out = &mut buf[..self.c * pp];
        out.fill(0.0);
        for (plane, padded) in image.chunks_exact(h * w).zip(out.chunks_exact_mut(pp)) {
            for (row, to) in plane
                .chunks_exact(w)
                .zip(padded[p * pw..].chunks_exact_mut(pw))
            {
                to[p..p + w].copy_from_slice(row);
            }
        }
        out
    }

    /// Writes the patch matrix of one image, `[C*K*K, OH*OW]` row-major (one row per channel
    /// and kernel cell, one column per output pixel), from its padded planes `xp`.
    fn patches(&self, xp: &[f32], patches: &mut [f32]) {
        self.for_each_run(|run_at, src| {
            let run = &mut patches[run_at..run_at + self.ow];
            if self.stride == 1 {
                copy_run(run, &xp[src..src + self.ow]);
            } else {
                let from = xp[src..].iter().step_by(self.stride);
                run.iter_mut().zip(from).for_each(|(d, &v)| *d = v);
            }
        });
    }

    /// The transpose of [`Self::patches`] (col2im): adds each patch cell's gradient in
    /// `dpatch` to the padded planes `dxp` of the input cell it was read from.
    fn add_patches(&self, dpatch: &[f32], dxp: &mut [f32]) {
        self.for_each_run(|run_at, src| {
            let run = &dpatch[run_at..run_at + self.ow];
            if self.stride == 1 {
                let to = &mut dxp[src..src + self.ow];
                to.iter_mut().zip(run).for_each(|(d, v)| *d += v);
            } else {
                let to = dxp[src..].iter_mut().step_by(self.stride);
                to.zip(run).for_each(|(d, v)| *d += v);
            }
        });
    }

    /// Visits the runs of the patch matrix, each `OW` cells (one output row of one channel
    /// and kernel cell): `f(run_at, src)` with the run's offset in the patch matrix and the
    /// offset in the padded planes of the input cell its first cell reads (the others read
    /// `src + stride`, `src + 2 stride`, ...).
    #[inline(always)]
    fn for_each_run(&self, mut f: impl FnMut(usize, usize)) {
        let (k, s) = (self.k, self.stride);
        let (pw, pp, ohw) = (
            self.w + 2 * self.pad,
            self.padded_plane(),
            self.oh * self.ow,
        );
        for c in 0..self.c {
            for ki in 0..k {
                for kj in 0..k {
                    let r = (c * k + ki) * k + kj;
                    for oy in 0..self.oh {
                        f(r * ohw + oy * self.ow, c * pp + (oy * s + ki) * pw + kj);
                    }
                }
            }
        }
    }
}

/// `d.copy_from_slice(s)` in 8-value moves (the last one overlapping) rather than a call to
/// `memcpy` per run: a LeNet-5 step on 64 images copies some 280,000 runs of 10 to 28 values.
#[inline(always)]
fn copy_run(d: &mut [f32], s: &[f32]) {
    let n = d.len();
    debug_assert_eq!(n, s.len());
    if n < 8 {
        d.iter_mut().zip(s).for_each(|(to, &v)| *to = v);
        return;
    }
    let mut i = 0;
    while i + 8 <= n {
        d[i..i + 8].copy_from_slice(&s[i..i + 8]);
        i += 8;
    }
    if i < n {
        d[n - 8..].copy_from_slice(&s[n - 8..]);
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
/// and a col2im per image. Patches are read from planes padded once per image, so each of
/// their runs is one copy.
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
    let (ckk, ohw) = (g.ckk(), g.oh * g.ow);
    let mut xv = take(x.shape().num_elements());
    x.copy_into(&mut xv[..]);
    // One image's patch matrix at a time, [C*K*K, OH*OW]: small enough to stay in cache
    // between being written and being read, and made again in backward rather than kept.
    let mut patches = take(ohw * ckk);
    let mut xp = take(if padding > 0 { C * g.padded_plane() } else { 0 });
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
        g.patches(g.padded_image(img, &xv, &mut xp), &mut patches);
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
            for img in 0..n {
                // dw[o, r] += sum_pixel dy_img[o, pixel] patches[r, pixel], computed as its
                // transpose, [C*K*K, O]: the long side (C*K*K) down the rows, where `gemm`'s
                // kernel blocks are tall, and dy_img read in place as the right operand.
                let dyi = View::transposed(&dy[img * O * ohw..(img + 1) * O * ohw], ohw);
                g.patches(g.padded_image(img, &xv, &mut xp), &mut patches);
                let p = View::rows(&patches, ohw);
                matmul_to(ckk, O, ohw, p, dyi, dw, (1, ckk), true);
            }
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
                    let image = &mut dx[img * C * h * w..][..C * h * w];
                    if padding == 0 {
                        g.add_patches(&dpatch, image);
                    } else {
                        // Into zeroed padded planes, then their inner cells into dx.
                        let (p, pw, pp) = (padding, w + 2 * padding, g.padded_plane());
                        xp.fill(0.0);
                        g.add_patches(&dpatch, &mut xp);
                        for (plane, padded) in
                            image.chunks_exact_mut(h * w).zip(xp.chunks_exact(pp))
                        {
                            for (row, from) in plane
                                .chunks_exact_mut(w)
                                .zip(padded[p * pw..].chunks_exact(pw))
                            {
                                row.iter_mut()
                                    .zip(&from[p..p + w])
                                    .for_each(|(d, v)| *d += v);
                            }
                        }
                    }
                }
                give(dpatch);
            }
            give(dy);
            give(patches);
            give(xp);
            give(xv);
            Ok(())
        });
    } else {
        give(patches);
        give(xp);
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
