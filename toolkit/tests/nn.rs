#![allow(clippy::needless_range_loop)] // index loops mirror the formulas
//! Convolution and pooling against their definitions: naive loops for forward and backward,
//! and central finite differences of a scalar loss. The CPU's direct ops and the ones
//! composed from dfdx's kernels (fogkit's GPU path) pass the same checks.

use dfdx::prelude::*;
use fogkit::data::Rng;
use fogkit::nn::{avg_pool2d, composed, conv2d, max_pool2d, Images, Pool};

type Taped<const CH: usize> = Images<CH, OwnedTape<f32, Cpu>>;

/// A convolution of the tests' shape: the CPU's or the composed one.
type ConvFn = fn(
    Taped<C>,
    &Tensor<Rank4<O, C, K, K>, f32, Cpu>,
    &Tensor<Rank1<O>, f32, Cpu>,
    usize,
    usize,
    bool,
) -> Result<Taped<O>, CpuError>;

/// A pooling of the tests' shape: window, stride, max or mean.
type PoolFn = fn(Taped<C>, usize, usize, Pool) -> Result<Taped<C>, CpuError>;

fn cpu_pool(x: Taped<C>, k: usize, s: usize, pool: Pool) -> Result<Taped<C>, CpuError> {
    match pool {
        Pool::Max => max_pool2d(x, k, s),
        Pool::Avg => avg_pool2d(x, k, s),
    }
}

const C: usize = 2;
const O: usize = 3;
const K: usize = 3;

fn randoms(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

/// The input at (img, c, y, x) of the zero-padded image, `None` outside.
fn at(
    x: &[f32],
    dims: (usize, usize, usize, usize),
    i: usize,
    c: usize,
    y: isize,
    xx: isize,
) -> f32 {
    let (_, ch, h, w) = dims;
    if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
        return 0.0;
    }
    x[((i * ch + c) * h + y as usize) * w + xx as usize]
}

struct Case {
    n: usize,
    h: usize,
    w: usize,
    stride: usize,
    pad: usize,
}

const CASES: [Case; 5] = [
    Case {
        n: 2,
        h: 5,
        w: 6,
        stride: 1,
        pad: 0,
    },
    Case {
        n: 1,
        h: 7,
        w: 5,
        stride: 2,
        pad: 1,
    },
    Case {
        n: 3,
        h: 4,
        w: 4,
        stride: 1,
        pad: 2,
    },
    Case {
        n: 2,
        h: 8,
        w: 7,
        stride: 3,
        pad: 1,
    },
    // Many images of many pixels: each weight's gradient sums 11,200 products, where f32
    // rounding in a naive reference would exceed the tolerance (hence its f64 sums).
    Case {
        n: 7,
        h: 40,
        w: 40,
        stride: 1,
        pad: 1,
    },
];

/// Returns (y, dx, dw, db) of `loss = sum(y * r)` by naive loops.
#[allow(clippy::type_complexity)]
fn naive_conv(
    case: &Case,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    r: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let oh = (case.h + 2 * case.pad - K) / case.stride + 1;
    let ow = (case.w + 2 * case.pad - K) / case.stride + 1;
    let dims = (case.n, C, case.h, case.w);
    // Sums in f64: the reference must be more exact than what it checks (a large case sums
    // thousands of products per weight).
    let mut y = vec![0.0f64; case.n * O * oh * ow];
    let (mut dx, mut dw, mut db) = (
        vec![0.0f64; x.len()],
        vec![0.0f64; w.len()],
        vec![0.0f64; O],
    );
    for i in 0..case.n {
        for o in 0..O {
            for oy in 0..oh {
                for ox in 0..ow {
                    let out = ((i * O + o) * oh + oy) * ow + ox;
                    let mut acc = b[o] as f64;
                    for c in 0..C {
                        for ki in 0..K {
                            for kj in 0..K {
                                let iy = (oy * case.stride + ki) as isize - case.pad as isize;
                                let ix = (ox * case.stride + kj) as isize - case.pad as isize;
                                let wi = ((o * C + c) * K + ki) * K + kj;
                                let v = at(x, dims, i, c, iy, ix) as f64;
                                acc += w[wi] as f64 * v;
                                dw[wi] += r[out] as f64 * v;
                                if iy >= 0
                                    && ix >= 0
                                    && (iy as usize) < case.h
                                    && (ix as usize) < case.w
                                {
                                    dx[((i * C + c) * case.h + iy as usize) * case.w
                                        + ix as usize] += r[out] as f64 * w[wi] as f64;
                                }
                            }
                        }
                    }
                    y[out] = acc;
                    db[o] += r[out] as f64;
                }
            }
        }
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<f32>>();
    (f32s(y), f32s(dx), f32s(dw), f32s(db))
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

#[test]
fn conv2d_forward_and_backward_match_naive_loops() {
    conv_matches_naive_loops(conv2d, 1e-5);
}

#[test]
fn composed_conv2d_forward_and_backward_match_naive_loops() {
    // One product over every image's pixels (11,200 f32 terms per weight in the last
    // case), where the CPU op sums image by image: more rounding in the weight gradient.
    conv_matches_naive_loops(composed::conv2d, 1e-4);
}

fn conv_matches_naive_loops(conv2d: ConvFn, tol: f32) {
    let dev: Cpu = Default::default();
    let mut rng = Rng::new(7);
    for case in &CASES {
        let xv = randoms(&mut rng, case.n * C * case.h * case.w);
        let wv = randoms(&mut rng, O * C * K * K);
        let bv = randoms(&mut rng, O);
        let x: Images<C> = dev.tensor_from_vec(xv.clone(), (case.n, Const, case.h, case.w));
        let w: Tensor<Rank4<O, C, K, K>, f32, Cpu> =
            dev.tensor_from_vec(wv.clone(), (Const, Const, Const, Const));
        let b: Tensor<Rank1<O>, f32, Cpu> = dev.tensor_from_vec(bv.clone(), (Const,));
        let mut grads = Gradients::leaky();
        let y = conv2d(x.trace(grads), &w, &b, case.stride, case.pad, true).unwrap();
        let r = randoms(&mut rng, y.shape().num_elements());
        let (want_y, want_dx, want_dw, want_db) = naive_conv(case, &xv, &wv, &bv, &r);
        assert_close("y", &y.as_vec(), &want_y, tol);
        let rt = dev.tensor_from_vec(r, *y.shape());
        grads = (y * rt).sum().backward();
        assert_close("dx", &grads.get(&x).as_vec(), &want_dx, tol);
        assert_close("dw", &grads.get(&w).as_vec(), &want_dw, tol);
        assert_close("db", &grads.get(&b).as_vec(), &want_db, tol);
    }
}

#[test]
fn conv2d_without_input_gradient_still_trains_its_weights() {
    without_input_gradient(conv2d);
}

#[test]
fn composed_conv2d_without_input_gradient_still_trains_its_weights() {
    without_input_gradient(composed::conv2d);
}

fn without_input_gradient(conv2d: ConvFn) {
    let dev: Cpu = Default::default();
    let x: Images<C> = dev.ones_like(&(1, Const, 4, 4));
    let w: Tensor<Rank4<O, C, K, K>, f32, Cpu> = dev.ones();
    let b: Tensor<Rank1<O>, f32, Cpu> = dev.zeros();
    let grads = conv2d(x.leaky_trace(), &w, &b, 1, 1, false)
        .unwrap()
        .sum()
        .backward();
    // Each weight sees the input wherever the kernel overlaps it: 12 of the 16 positions
    // for a corner tap, 16 for the centre one, times O outputs summed separately.
    let dw = grads.get(&w).as_vec();
    assert_eq!(dw[4], 16.0);
    assert_eq!(dw[0], 9.0);
}

/// Central difference of `loss(x) = sum(f(x) * r)` (f64 sums around f32 points), or `None`
/// where the two one-sided slopes disagree: a max-pool window changed its winner there.
fn finite_difference(
    f: &dyn Fn(&[f32]) -> Vec<f32>,
    x: &[f32],
    r: &[f32],
    i: usize,
    eps: f32,
) -> Option<f64> {
    let loss = |v: &[f32]| -> f64 { f(v).iter().zip(r).map(|(a, b)| *a as f64 * *b as f64).sum() };
    let (mut up, mut down) = (x.to_vec(), x.to_vec());
    up[i] += eps;
    down[i] -= eps;
    let centre = loss(x);
    let (right, left) = (
        (loss(&up) - centre) / eps as f64,
        (centre - loss(&down)) / eps as f64,
    );
    ((right - left).abs() < 1e-2 * (1.0 + right.abs())).then_some((right + left) / 2.0)
}

#[test]
fn conv_and_pooling_gradients_match_finite_differences() {
    let dev: Cpu = Default::default();
    let mut rng = Rng::new(11);
    let (n, h, w) = (2, 6, 6);
    let xv = randoms(&mut rng, n * C * h * w);
    let wv = randoms(&mut rng, O * C * K * K);
    let bv = vec![0.1f32, -0.2, 0.3];
    let wt: Tensor<Rank4<O, C, K, K>, f32, Cpu> =
        dev.tensor_from_vec(wv.clone(), (Const, Const, Const, Const));
    let bt: Tensor<Rank1<O>, f32, Cpu> = dev.tensor_from_vec(bv.clone(), (Const,));
    // A network of all three ops: conv (stride 1, pad 1) -> max-pool 2 -> avg-pool 3 (stride 1).
    let net = |x: Images<C, OwnedTape<f32, Cpu>>, wt: &Tensor<Rank4<O, C, K, K>, f32, Cpu>| {
        let y = conv2d(x, wt, &bt, 1, 1, true).unwrap();
        avg_pool2d(max_pool2d(y, 2, 2).unwrap(), 2, 1).unwrap()
    };
    let x: Images<C> = dev.tensor_from_vec(xv.clone(), (n, Const, h, w));
    let y = net(x.leaky_trace(), &wt);
    let r = randoms(&mut rng, y.shape().num_elements());
    let shape = *y.shape();
    let grads = (y * dev.tensor_from_vec(r.clone(), shape)).sum().backward();
    let (dx, dw) = (grads.get(&x).as_vec(), grads.get(&wt).as_vec());

    let by_x = |v: &[f32]| {
        let x: Images<C> = dev.tensor_from_vec(v.to_vec(), (n, Const, h, w));
        net(x.leaky_trace(), &wt).as_vec()
    };
    let by_w = |v: &[f32]| {
        let wt2: Tensor<Rank4<O, C, K, K>, f32, Cpu> =
            dev.tensor_from_vec(v.to_vec(), (Const, Const, Const, Const));
        let x: Images<C> = dev.tensor_from_vec(xv.clone(), (n, Const, h, w));
        net(x.leaky_trace(), &wt2).as_vec()
    };
    let (mut checked, mut total) = (0, 0);
    for (f, at, grad) in [
        (&by_x as &dyn Fn(&[f32]) -> Vec<f32>, &xv, &dx),
        (&by_w, &wv, &dw),
    ] {
        for i in 0..at.len() {
            total += 1;
            if let Some(fd) = finite_difference(f, at, &r, i, 1e-3) {
                assert!(
                    (fd - grad[i] as f64).abs() < 1e-2 * (1.0 + fd.abs()),
                    "[{i}]: {} vs {fd}",
                    grad[i]
                );
                checked += 1;
            }
        }
    }
    // Kinks are rare: nearly every coordinate is checked.
    assert!(
        checked * 10 > total * 9,
        "only {checked} of {total} coordinates were smooth"
    );
    assert!(dx.iter().filter(|&&g| g != 0.0).count() > 10);
}

#[test]
fn pooling_matches_naive_loops() {
    pool_matches_naive_loops(cpu_pool);
}

#[test]
fn composed_pooling_matches_naive_loops() {
    pool_matches_naive_loops(composed::pool2d);
}

fn pool_matches_naive_loops(pool2d: PoolFn) {
    let dev: Cpu = Default::default();
    let mut rng = Rng::new(3);
    let (n, h, w, k, s) = (2, 7, 6, 3, 2);
    let xv = randoms(&mut rng, n * C * h * w);
    let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
    let x: Images<C> = dev.tensor_from_vec(xv.clone(), (n, Const, h, w));
    let r = randoms(&mut rng, n * C * oh * ow);
    for max in [true, false] {
        let y = pool2d(
            x.leaky_trace(),
            k,
            s,
            if max { Pool::Max } else { Pool::Avg },
        )
        .unwrap();
        let shape = *y.shape();
        let yv = y.as_vec();
        let grads = (y * dev.tensor_from_vec(r.clone(), shape)).sum().backward();
        let dx = grads.get(&x).as_vec();
        let mut want_dx = vec![0.0f32; xv.len()];
        for p in 0..n * C {
            for oy in 0..oh {
                for ox in 0..ow {
                    let out = (p * oh + oy) * ow + ox;
                    let cells: Vec<usize> = (0..k * k)
                        .map(|t| p * h * w + (oy * s + t / k) * w + ox * s + t % k)
                        .collect();
                    if max {
                        let best = *cells
                            .iter()
                            .max_by(|a, b| xv[**a].total_cmp(&xv[**b]))
                            .unwrap();
                        assert_eq!(yv[out], xv[best]);
                        want_dx[best] += r[out];
                    } else {
                        let mean = cells.iter().map(|&c| xv[c]).sum::<f32>() / (k * k) as f32;
                        assert!((yv[out] - mean).abs() < 1e-5);
                        cells
                            .iter()
                            .for_each(|&c| want_dx[c] += r[out] / (k * k) as f32);
                    }
                }
            }
        }
        assert_close(if max { "max dx" } else { "avg dx" }, &dx, &want_dx, 1e-5);
    }
}

#[test]
fn a_tied_max_sends_its_gradient_to_the_first_tied_cell_on_both_paths() {
    let dev: Cpu = Default::default();
    // A flat background (every cell 1) but one window, where cells 1 and 3 tie at 2.
    let mut xv = vec![1.0f32; C * 4 * 4];
    xv[1] = 2.0;
    xv[5] = 2.0;
    for pool2d in [cpu_pool as PoolFn, composed::pool2d] {
        let x: Images<C> = dev.tensor_from_vec(xv.clone(), (1, Const, 4, 4));
        let y = pool2d(x.leaky_trace(), 2, 2, Pool::Max).unwrap();
        assert_eq!(y.as_vec()[..4], [2.0, 1.0, 1.0, 1.0]);
        let dx = y.sum().backward().get(&x).as_vec();
        let mut want = vec![0.0f32; xv.len()];
        // Window by window, the first maximal cell: 1 (of 0, 1, 4, 5), then 2, 8, 10, and
        // the same in the second channel.
        for i in [1, 2, 8, 10, 16, 18, 24, 26] {
            want[i] = 1.0;
        }
        assert_eq!(dx, want);
    }
}

#[test]
#[should_panic(expected = "does not fit")]
fn a_kernel_larger_than_the_input_is_a_clear_error() {
    let dev: Cpu = Default::default();
    let x: Images<C> = dev.zeros_like(&(1, Const, 2, 2));
    let w: Tensor<Rank4<O, C, K, K>, f32, Cpu> = dev.zeros();
    let b: Tensor<Rank1<O>, f32, Cpu> = dev.zeros();
    let _ = conv2d(x, &w, &b, 1, 0, true);
}
