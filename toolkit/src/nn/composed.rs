//! Convolution and pooling composed from dfdx's own stable ops (concatenation for the zero
//! padding, slices, a stack, one matrix product, a max or a mean), so they run on any dfdx
//! device, `Cuda` included, and dfdx's autograd gives their backward. dfdx's own
//! convolution and pooling kernels exist only behind its `nightly` feature, and its `Cuda`
//! device does not expose its memory, so this is fogkit's GPU path (see [`ConvDevice`]).
//!
//! What it costs against a cuDNN convolution: the `K*K` shifted copies of the input (the
//! im2col matrix) are made in memory, by about `4K` kernel launches (`K` column shifts, then
//! `K` row shifts of them, each a slice and a copy into the stack), where cuDNN fuses them
//! into the product. On the CPU the direct code in `conv.rs` and
//! `pool.rs` is faster; this module is used there only to check that both give the same
//! numbers.
//!
//! It never communicates and never reads a tensor back to the host.
//!
//! [`ConvDevice`]: crate::nn::ConvDevice

use dfdx::prelude::*;

use super::{out_size, Images, Pool};

/// An `f32` tensor.
type F32<S, D, T> = Tensor<S, f32, D, T>;

/// Window cells stacked: `[cells, batch, C, OH, OW]`.
type Cells<const C: usize, T, D, E = f32> = Tensor<(usize, usize, Const<C>, usize, usize), E, D, T>;

/// Every `k`x`k` window of `x` (zero padded by `pad`, moved by `stride`), stacked:
/// `[k*k, batch, C, OH, OW]`, window cell `(ki, kj)` at index `ki * k + kj`.
fn windows<const C: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Images<C, T, D>,
    k: usize,
    stride: usize,
    pad: usize,
) -> Result<Cells<C, T, D>, D::Err> {
    let (n, _, h, w) = *x.shape();
    let (oh, ow, s) = (
        out_size(h, k, stride, pad),
        out_size(w, k, stride, pad),
        stride,
    );
    // Pad to sides that are multiples of the stride (the extra cells are never read), so
    // that a stride is a reshape: row oy * s + ki is row block oy + ki / s, phase ki % s.
    let (hp, wp) = ((h + 2 * pad).div_ceil(s) * s, (w + 2 * pad).div_ceil(s) * s);
    let x = pad_zeros(x, pad, hp - h - pad, pad, wp - w - pad)?;
    // dfdx 0.13's CPU slice backward assigns the input's gradient where it must add to it
    // (its CUDA kernel adds), so on the CPU each slice reads a copy of its own, `x * 1`.
    let own_copy = std::any::TypeId::of::<D>() == std::any::TypeId::of::<Cpu>();
    // Two passes of k slices each (k column shifts, then k row shifts of all of them) make
    // the k*k cells in 4k kernel launches (slices and stack copies) instead of 2k*k, one slice per cell.
    let cols = shifts(x, k, own_copy, |part, kj| {
        let (b, q) = (kj / s, kj % s);
        if s == 1 {
            part.try_slice((.., .., .., kj..kj + ow))
        } else {
            part.try_reshape_like(&(n, Const::<C>, hp, wp / s, s))?
                .try_slice((.., .., .., b..b + ow, q..q + 1))?
                .try_reshape_like(&(n, Const::<C>, hp, ow))
        }
    })?
    .try_stack()?; // [k (column shift), n, C, hp, ow]
    let rows = shifts(cols, k, own_copy, |part, ki| {
        let (a, r) = (ki / s, ki % s);
        // dfdx stacks at most 4-D items: batch and channels as one axis for the stack.
        let items = (k, n * C, oh, ow);
        if s == 1 {
            part.try_slice((.., .., .., ki..ki + oh, ..))?
                .try_reshape_like(&items)
        } else {
            part.try_reshape_like(&(k, n, Const::<C>, hp / s, s, ow))?
                .try_slice((.., .., .., a..a + oh, r..r + 1, ..))?
                .try_reshape_like(&items)
        }
    })?
    .try_stack()?; // [k (row shift), k (column shift), n * C, oh, ow]
    rows.try_reshape_like(&(k * k, n, Const::<C>, oh, ow))
}

/// `f(x, i)` for `i` in `0..k`, each on the same data; the last takes `x`'s tape, the
/// others' backward ops join it where they are stacked.
fn shifts<S: Shape, O: Shape, D: Device<f32>, T: Tape<f32, D>>(
    x: F32<S, D, T>,
    k: usize,
    own_copy: bool,
    f: impl Fn(F32<S, D, T>, usize) -> Result<F32<O, D, T>, D::Err>,
) -> Result<Vec<F32<O, D, T>>, D::Err> {
    let part = |x: F32<S, D, T>| if own_copy { x.try_mul(1.0) } else { Ok(x) };
    let mut out = Vec::with_capacity(k);
    for i in 0..k - 1 {
        out.push(f(part(x.with_empty_tape())?, i)?);
    }
    out.push(f(part(x)?, k - 1)?);
    Ok(out)
}

/// `x` with zero rows above and below, and zero columns left and right.
fn pad_zeros<const C: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Images<C, T, D>,
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
) -> Result<Images<C, T, D>, D::Err> {
    let dev = x.device().clone();
    let zeros = |shape: (usize, Const<C>, usize, usize)| -> Result<Images<C, T, D>, D::Err> {
        Ok(dev.try_zeros_like(&shape)?.retaped::<T>())
    };
    let (n, _, h, w) = *x.shape();
    let mut x = x;
    if top > 0 {
        x = (zeros((n, Const, top, w))?, x).try_concat_along(Axis::<2>)?;
    }
    if bottom > 0 {
        x = (x, zeros((n, Const, bottom, w))?).try_concat_along(Axis::<2>)?;
    }
    let h = h + top + bottom;
    if left > 0 {
        x = (zeros((n, Const, h, left))?, x).try_concat_along(Axis::<3>)?;
    }
    if right > 0 {
        x = (x, zeros((n, Const, h, right))?).try_concat_along(Axis::<3>)?;
    }
    Ok(x)
}

/// [`conv2d`](crate::nn::conv2d) from dfdx's ops, on any device: the window cells stacked
/// into the patch matrix `[batch*OH*OW, C*K*K]`, one product with the weight seen as
/// `[C*K*K, O]`, and the bias.
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{composed, Images};
/// let dev: Cpu = Default::default();
/// let x: Images<1> = dev.tensor_from_vec((0..16).map(|v| v as f32).collect(), (1, Const, 4, 4));
/// let w = dev.tensor([[[[1.0f32, 0.0], [0.0, -1.0]]]]); // x[i][j] - x[i+1][j+1]
/// let b = dev.tensor([0.5f32]);
/// let y = composed::conv2d(x, &w, &b, 1, 0, true).unwrap();
/// assert!(y.as_vec().iter().all(|&v| v == -4.5));
/// ```
///
/// # Panics
/// If the kernel does not fit in the padded input, or `stride` is zero.
pub fn conv2d<const C: usize, const O: usize, const K: usize, D, T>(
    x: Images<C, T, D>,
    weight: &Tensor<Rank4<O, C, K, K>, f32, D>,
    bias: &Tensor<Rank1<O>, f32, D>,
    stride: usize,
    padding: usize,
    input_grad: bool,
) -> Result<Images<O, T, D>, D::Err>
where
    D: Device<f32>,
    T: Tape<f32, D>,
{
    let (n, _, h, w) = *x.shape();
    let (oh, ow) = (
        out_size(h, K, stride, padding),
        out_size(w, K, stride, padding),
    );
    let rows = n * oh * ow;
    // [K*K, n, C, OH, OW] -> [n, OH, OW, C, K*K]: the columns in the weight's own order.
    let to_patches = |cells: Cells<C, T, D>| {
        cells
            .try_permute::<_, Axes5<1, 3, 4, 2, 0>>()?
            .try_reshape_like(&(rows, C * K * K))
    };
    let patches = if input_grad {
        to_patches(windows(x, K, stride, padding)?)?
    } else {
        // The input's gradient is not wanted: make the patches off the tape.
        let (x, tape) = x.split_tape();
        let cells = windows(x, K, stride, padding)?.retaped::<T>();
        let p: Tensor<(usize, usize), f32, D, T> = to_patches(cells)?;
        p.split_tape().0.put_tape(tape)
    };
    let wt = weight
        .retaped::<T>()
        .try_reshape_like(&(Const::<O>, C * K * K))?
        .try_permute::<_, Axes2<1, 0>>()?;
    let y = patches.try_matmul(wt)?;
    let y = y.try_add(
        bias.retaped::<T>()
            .try_broadcast_like(&(rows, Const::<O>))?,
    )?;
    y.try_reshape_like(&(n, oh, ow, Const::<O>))?
        .try_permute::<_, Axes4<0, 3, 1, 2>>()?
        .try_reshape_like(&(n, Const::<O>, oh, ow))
}

/// [`max_pool2d`](crate::nn::max_pool2d) and [`avg_pool2d`](crate::nn::avg_pool2d) from
/// dfdx's ops, on any device: the windows stacked, then a mean over them, or for the max the
/// first maximal cell of each window chosen (off the tape) and kept. A maximum tied within
/// a window (a flat background) sends its gradient to the first tied cell, as the CPU op and
/// PyTorch do; dfdx's own max would send it to every tied cell.
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{composed, Images, Pool};
/// let dev: Cpu = Default::default();
/// let x: Images<1> = dev.tensor_from_vec((0..16).map(|v| v as f32).collect(), (1, Const, 4, 4));
/// assert_eq!(composed::pool2d(x.clone(), 2, 2, Pool::Max).unwrap().as_vec(), [5.0, 7.0, 13.0, 15.0]);
/// assert_eq!(composed::pool2d(x, 2, 2, Pool::Avg).unwrap().as_vec(), [2.5, 4.5, 10.5, 12.5]);
/// ```
///
/// # Panics
/// If the window is empty or larger than the input, or `stride` is zero.
pub fn pool2d<const C: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Images<C, T, D>,
    k: usize,
    stride: usize,
    pool: Pool,
) -> Result<Images<C, T, D>, D::Err> {
    assert!(k > 0, "pooling window must be at least 1x1, found 0");
    let (n, _, h, w) = *x.shape();
    let (oh, ow) = (out_size(h, k, stride, 0), out_size(w, k, stride, 0));
    let dev = x.device().clone();
    let cells = windows(x, k, stride, 0)?;
    let y: Images<C, T, D> = match pool {
        Pool::Max => {
            let first = first_max(&dev, &cells.retaped::<NoneTape>(), k * k)?;
            let zeros = dev.try_zeros_like(cells.shape())?.retaped::<T>();
            first.try_choose(cells, zeros)?.try_sum::<_, Axis<0>>()?
        }
        Pool::Avg => cells.try_mean::<_, Axis<0>>()?,
    };
    debug_assert_eq!(*y.shape(), (n, Const::<C>, oh, ow));
    Ok(y)
}

/// For each window of `cells` (`[kk, ...]`), true at the first of its maximal cells only.
fn first_max<const C: usize, D: Device<f32>>(
    dev: &D,
    cells: &Cells<C, NoneTape, D>,
    kk: usize,
) -> Result<Cells<C, NoneTape, D, bool>, D::Err> {
    let shape = *cells.shape();
    let best = cells
        .clone()
        .try_max::<(usize, Const<C>, usize, usize), Axis<0>>()?
        .try_broadcast_like::<_, Axis<0>>(&shape)?;
    // Each maximal cell scores kk - its index, the others 0: the first scores highest.
    let order: Vec<f32> = (0..kk).map(|i| (kk - i) as f32).collect();
    let order = dev
        .try_tensor_from_vec(order, (kk,))?
        .try_broadcast_like::<_, Axes4<1, 2, 3, 4>>(&shape)?;
    let score = cells
        .try_eq(&best)?
        .try_choose(order, dev.try_zeros_like(&shape)?)?;
    let top = score
        .clone()
        .try_max::<(usize, Const<C>, usize, usize), Axis<0>>()?
        .try_broadcast_like::<_, Axis<0>>(&shape)?;
    score.try_eq(&top)
}
