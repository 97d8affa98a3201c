//! 2-D convolution as one im2col and one matrix product per batch, with its own backward.

use dfdx::prelude::*;
use rand_distr::Uniform;

use super::gemm::{matmul, View};
use super::{images_shape, Images};

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
    n: usize,
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
    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Columns of the column matrix: one per (image, output row, output column).
    fn np(&self) -> usize {
        self.n * self.oh * self.ow
    }

    /// Calls `f(row, col, input_index)` for every column-matrix cell inside the input.
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let (ohw, np) = (self.oh * self.ow, self.np());
        for c in 0..self.c {
            for ki in 0..self.k {
                for kj in 0..self.k {
                    let row = (c * self.k + ki) * self.k + kj;
                    for img in 0..self.n {
                        let plane = (img * self.c + c) * self.h * self.w;
                        for oy in 0..self.oh {
                            let iy = (oy * self.stride + ki) as isize - self.pad as isize;
                            if iy < 0 || iy >= self.h as isize {
                                continue;
                            }
                            let base_col = row * np + img * ohw + oy * self.ow;
                            let base_in = plane + iy as usize * self.w;
                            for ox in 0..self.ow {
                                let ix = (ox * self.stride + kj) as isize - self.pad as isize;
                                if ix >= 0 && ix < self.w as isize {
                                    f(base_col + ox, base_in + ix as usize);
                                }
                            }
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
/// and `bias`. Forward is one im2col and one matrix product for the whole batch; backward
/// is two products and one col2im.
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
pub fn conv2d<const C: usize, const O: usize, const K: usize, T: Tape<f32, Cpu>>(
    x: Images<C, T>,
    weight: &Tensor<Rank4<O, C, K, K>, f32, Cpu>,
    bias: &Tensor<Rank1<O>, f32, Cpu>,
    stride: usize,
    padding: usize,
    input_grad: bool,
) -> Result<Images<O, T>, CpuError> {
    let (n, _, h, w) = *x.shape();
    let g = Geometry {
        n,
        c: C,
        h,
        w,
        k: K,
        stride,
        pad: padding,
        oh: out_size(h, K, stride, padding),
        ow: out_size(w, K, stride, padding),
    };
    let (x, mut tape) = x.split_tape();
    let xv = x.as_vec();
    let (ckk, np, ohw) = (g.ckk(), g.np(), g.oh * g.ow);
    let mut cols = vec![0.0f32; ckk * np];
    g.for_each(|col, inp| cols[col] = xv[inp]);
    let wv = weight.as_vec();
    let bv = bias.as_vec();
    let mut prod = vec![0.0f32; O * np];
    matmul(
        O,
        np,
        ckk,
        View::rows(&wv, ckk),
        View::rows(&cols, np),
        &mut prod,
        false,
    );
    let mut yv = vec![0.0f32; n * O * ohw];
    for img in 0..n {
        for o in 0..O {
            let src = &prod[o * np + img * ohw..][..ohw];
            let dst = &mut yv[(img * O + o) * ohw..][..ohw];
            for (d, s) in dst.iter_mut().zip(src) {
                *d = s + bv[o];
            }
        }
    }
    let y = x
        .device()
        .try_tensor_from_vec(yv, images_shape::<O>(n, g.oh, g.ow))?;
    if T::OWNS_TAPE {
        let (xg, wg, bg, yg) = (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            // dy as an [O, N*OH*OW] matrix.
            let dy = grads.get_or_alloc_mut(&yg)?;
            let mut gm = vec![0.0f32; O * np];
            for img in 0..n {
                for o in 0..O {
                    gm[o * np + img * ohw..][..ohw]
                        .copy_from_slice(&dy[(img * O + o) * ohw..][..ohw]);
                }
            }
            let dw = grads.get_or_alloc_mut(&wg)?;
            matmul(
                O,
                ckk,
                np,
                View::rows(&gm, np),
                View::transposed(&cols, np),
                dw,
                true,
            );
            let db = grads.get_or_alloc_mut(&bg)?;
            for (o, d) in db.iter_mut().enumerate() {
                *d += gm[o * np..][..np].iter().sum::<f32>();
            }
            if input_grad {
                let mut dcols = cols;
                matmul(
                    ckk,
                    np,
                    O,
                    View::transposed(&wv, ckk),
                    View::rows(&gm, np),
                    &mut dcols,
                    false,
                );
                let dx = grads.get_or_alloc_mut(&xg)?;
                g.for_each(|col, inp| dx[inp] += dcols[col]);
            }
            Ok(())
        });
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

impl<const I: usize, const O: usize, const K: usize, const S: usize, const P: usize>
    NonMutableModule for Conv2D<I, O, K, S, P>
{
}

impl<
        const I: usize,
        const O: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        T: Tape<f32, Cpu>,
    > Module<Images<I, T>> for Conv2D<I, O, K, S, P>
{
    type Output = Images<O, T>;
    type Error = CpuError;

    fn try_forward(&self, x: Images<I, T>) -> Result<Images<O, T>, CpuError> {
        conv2d(x, &self.weight, &self.bias, S, P, self.input_grad)
    }
}
