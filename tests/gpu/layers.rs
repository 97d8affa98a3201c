//! The GPU checks of the layers, the networks and the training loop: each runs on `Cuda`
//! and on `Cpu` from the same values and the results agree within a stated tolerance
//! (relative to 1 + |cpu value|): 1e-4 for one layer's output and gradients (cuBLAS and
//! the CPU's gemm sum in different orders), 1e-3 for a whole network's and for parameters
//! after training steps (the differences compound through the layers).

use fogkit::data::{ImageSet, Rng};
use fogkit::dfdx::prelude::*;
use fogkit::nn::{avg_pool2d, conv2d, max_pool2d, Images, LeNet5, Network, ResNet20};
use fogkit::optim::{gradients, parameters, set_parameters, Method, Optimizer};
use fogkit::prelude::*;
use fogkit::train::{build, train, Training};

/// Layer tolerance.
const LAYER: f32 = 1e-4;
/// Network and training tolerance.
const NETWORK: f32 = 1e-3;

fn randoms(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32).collect()
}

/// `name (worst difference)` and whether every pair is within `tol` (NaN fails; so do
/// lengths that differ or are zero).
fn agree(name: &str, cpu: &[f32], gpu: &[f32], tol: f32) -> (String, bool) {
    let diffs: Vec<f32> = cpu
        .iter()
        .zip(gpu)
        .map(|(c, g)| (c - g).abs() / (1.0 + c.abs()))
        .collect();
    let finite = diffs.iter().all(|d| d.is_finite());
    let worst = diffs.iter().copied().fold(0.0f32, f32::max);
    let ok = finite && worst <= tol && !cpu.is_empty() && cpu.len() == gpu.len();
    (
        format!("{name} (worst {worst:.1e}, {} values)", cpu.len()),
        ok,
    )
}

/// One convolution's output and its gradients for x, weight and bias, on both devices.
#[allow(clippy::too_many_arguments)]
fn conv_case<const C: usize, const O: usize, const K: usize>(
    gpu: &Cuda,
    rng: &mut Rng,
    (n, h, w): (usize, usize, usize),
    stride: usize,
    pad: usize,
    out: &mut Vec<(String, bool)>,
) {
    let cpu = Cpu::default();
    let (xv, wv, bv) = (
        randoms(rng, n * C * h * w),
        randoms(rng, O * C * K * K),
        randoms(rng, O),
    );
    let mut results = Vec::new();
    let mut r = Vec::new();
    macro_rules! run {
        ($dev:expr) => {{
            let dev = $dev;
            let x: Images<C, NoneTape, _> = dev.tensor_from_vec(xv.clone(), (n, Const, h, w));
            let wt: Tensor<Rank4<O, C, K, K>, f32, _> =
                dev.tensor_from_vec(wv.clone(), (Const, Const, Const, Const));
            let b: Tensor<Rank1<O>, f32, _> = dev.tensor_from_vec(bv.clone(), (Const,));
            let y = conv2d(x.leaky_trace(), &wt, &b, stride, pad, true).expect("conv2d");
            if r.is_empty() {
                r = randoms(rng, y.shape().num_elements());
            }
            let rt = dev.tensor_from_vec(r.clone(), *y.shape());
            let yv = y.as_vec();
            let g = (y * rt).sum().backward();
            results.push([
                yv,
                g.get(&x).as_vec(),
                g.get(&wt).as_vec(),
                g.get(&b).as_vec(),
            ]);
        }};
    }
    run!(&cpu);
    run!(gpu);
    let name = format!("conv2d {C}->{O} {K}x{K} stride {stride} pad {pad} on {n}x{h}x{w}");
    for (i, part) in ["output", "dx", "dweight", "dbias"].iter().enumerate() {
        out.push(agree(
            &format!("{name}: {part}"),
            &results[0][i],
            &results[1][i],
            LAYER,
        ));
    }
}

/// Max and average pooling's output and input gradient on both devices.
fn pool_case(gpu: &Cuda, rng: &mut Rng, k: usize, s: usize, out: &mut Vec<(String, bool)>) {
    let cpu = Cpu::default();
    let (n, h, w) = (3, 12, 10);
    let xv = randoms(rng, n * 4 * h * w);
    for max in [true, false] {
        let mut results = Vec::new();
        let mut r = Vec::new();
        macro_rules! run {
            ($dev:expr) => {{
                let dev = $dev;
                let x: Images<4, NoneTape, _> = dev.tensor_from_vec(xv.clone(), (n, Const, h, w));
                let y = if max {
                    max_pool2d(x.leaky_trace(), k, s)
                } else {
                    avg_pool2d(x.leaky_trace(), k, s)
                }
                .expect("pool2d");
                if r.is_empty() {
                    r = randoms(rng, y.shape().num_elements());
                }
                let rt = dev.tensor_from_vec(r.clone(), *y.shape());
                let yv = y.as_vec();
                let g = (y * rt).sum().backward();
                results.push([yv, g.get(&x).as_vec()]);
            }};
        }
        run!(&cpu);
        run!(gpu);
        let name = format!(
            "{} pool {k}x{k} stride {s}",
            if max { "max" } else { "avg" }
        );
        for (i, part) in ["output", "dx"].iter().enumerate() {
            out.push(agree(
                &format!("{name}: {part}"),
                &results[0][i],
                &results[1][i],
                LAYER,
            ));
        }
    }
}

/// The ops whose Cuda kernels dfdx compiles at run time (concatenation along an axis, a
/// copy of a permuted tensor, stack's backward) against the CPU: exact copies, the same bits.
pub fn run_time_kernels(gpu: &Cuda) -> Result<Vec<(String, bool)>, String> {
    fn run<D: Device<f32>>(dev: &D) -> Result<[Vec<f32>; 3], D::Err> {
        let a: Tensor<(usize, usize), f32, D> =
            dev.try_tensor_from_vec((0..6).map(|v| v as f32).collect(), (2, 3))?;
        let b: Tensor<(usize, usize), f32, D> =
            dev.try_tensor_from_vec((6..10).map(|v| v as f32).collect(), (2, 2))?;
        let joined = (a.clone(), b).try_concat_along(Axis::<1>)?.as_vec();
        let t = a.clone().try_permute::<_, Axes2<1, 0>>()?;
        let copied = t.try_reshape_like(&(3usize, 2usize))?.as_vec();
        let c: Tensor<(usize, usize), f32, D> =
            dev.try_tensor_from_vec((0..6).map(|v| v as f32 * 0.5).collect(), (2, 3))?;
        let w: Tensor<(usize, usize, usize), f32, D> =
            dev.try_tensor_from_vec((0..12).map(|v| v as f32).collect(), (2, 2, 3))?;
        let g = vec![a.leaky_trace(), c.leaky_trace()]
            .try_stack()?
            .try_mul(w)?
            .try_sum()?
            .backward();
        let mut grads = g.get(&a).as_vec();
        grads.extend(g.get(&c).as_vec());
        Ok([joined, copied, grads])
    }
    let cpu = run(&Cpu::default()).map_err(|e| format!("{e:?}"))?;
    let gpu = run(gpu).map_err(|e| format!("{e:?}"))?;
    Ok([
        "concat_along",
        "reshape of a permuted tensor",
        "stack backward",
    ]
    .iter()
    .zip(cpu.iter().zip(&gpu))
    .map(|(name, (c, g))| {
        let same = !c.is_empty()
            && c.iter()
                .map(|v| v.to_bits())
                .eq(g.iter().map(|v| v.to_bits()));
        (format!("{name} on the GPU"), same)
    })
    .collect())
}

/// Every layer shape the networks use, and a strided, padded odd case.
pub fn layers(gpu: &Cuda) -> Vec<(String, bool)> {
    let mut rng = Rng::new(11);
    let mut out = Vec::new();
    conv_case::<1, 6, 5>(gpu, &mut rng, (8, 28, 28), 1, 2, &mut out);
    conv_case::<6, 16, 5>(gpu, &mut rng, (8, 14, 14), 1, 0, &mut out);
    conv_case::<3, 16, 3>(gpu, &mut rng, (4, 32, 32), 1, 1, &mut out);
    conv_case::<16, 32, 3>(gpu, &mut rng, (4, 32, 32), 2, 1, &mut out);
    conv_case::<16, 32, 1>(gpu, &mut rng, (4, 32, 32), 2, 0, &mut out);
    conv_case::<2, 3, 3>(gpu, &mut rng, (2, 8, 7), 3, 1, &mut out);
    pool_case(gpu, &mut rng, 2, 2, &mut out);
    pool_case(gpu, &mut rng, 3, 2, &mut out);
    out
}

/// A network's logits (evaluation) and its parameters' gradients after one training
/// forward and backward, on both devices from the same parameters.
fn network_case<N1: Network<Cpu>, N2: Network<Cuda>>(
    gpu: &Cuda,
    batch: usize,
) -> Vec<(String, bool)> {
    let cpu = Cpu::seed_from_u64(5);
    let mut mc = N1::build(&cpu);
    let mut mg = N2::build(gpu);
    let mut out = Vec::new();
    if let Err(e) = set_parameters(&mut mg, &parameters(&mc)) {
        return vec![(format!("{}: copy parameters: {e}", N1::NAME), false)];
    }
    let (c, h, w) = N1::INPUT;
    let mut rng = Rng::new(3);
    let pixels = randoms(&mut rng, batch * c * h * w);
    let labels: Vec<usize> = (0..batch).map(|_| rng.below(10)).collect();
    let mut target = vec![0.0f32; batch * 10];
    labels
        .iter()
        .enumerate()
        .for_each(|(i, &l)| target[i * 10 + l] = 1.0);
    let (lc, lg) = (
        mc.logits(pixels.clone(), batch),
        mg.logits(pixels.clone(), batch),
    );
    match (lc, lg) {
        (Ok(a), Ok(b)) => out.push(agree(
            &format!("{} logits", N1::NAME),
            &a.as_vec(),
            &b.as_vec(),
            NETWORK,
        )),
        (a, b) => out.push((
            format!("{} logits: {:?} / {:?}", N1::NAME, a.err(), b.err()),
            false,
        )),
    }
    let mut gc = mc.alloc_grads();
    let mut gg = mg.alloc_grads();
    let yc = mc
        .train_logits(pixels.clone(), batch, gc)
        .expect("cpu logits");
    let yg = mg.train_logits(pixels, batch, gg).expect("gpu logits");
    let tc = cpu.tensor_from_vec(target.clone(), (batch, Const::<10>));
    let tg = gpu.tensor_from_vec(target, (batch, Const::<10>));
    gc = cross_entropy_with_logits_loss(yc, tc).backward();
    gg = cross_entropy_with_logits_loss(yg, tg).backward();
    match (gradients(&mc, &mut gc), gradients(&mg, &mut gg)) {
        (Ok(a), Ok(b)) => out.push(agree(&format!("{} gradients", N1::NAME), &a, &b, NETWORK)),
        (a, b) => out.push((
            format!("{} gradients: {:?} / {:?}", N1::NAME, a.err(), b.err()),
            false,
        )),
    }
    out
}

/// LeNet-5 and ResNet-20 on both devices.
pub fn networks(gpu: &Cuda) -> Vec<(String, bool)> {
    let mut out = network_case::<LeNet5, LeNet5<f32, Cuda>>(gpu, 16);
    out.extend(network_case::<ResNet20, ResNet20<f32, Cuda>>(gpu, 8));
    out
}

/// Random images and labels of `shape`, the same for a seed.
pub fn synthetic(len: usize, shape: (usize, usize, usize), seed: u64) -> ImageSet {
    let mut rng = Rng::new(seed);
    ImageSet {
        pixels: randoms(&mut rng, len * shape.0 * shape.1 * shape.2),
        labels: (0..len).map(|_| rng.below(10) as u8).collect(),
        shape,
    }
}

/// Trains LeNet-5 with DecentLaM on a ring for a few steps on `D`; returns its parameters
/// and training loss (collective).
fn train_on<D: fogkit::nn::ConvDevice, M: Network<D>>(bf: &Fog) -> fogkit::Result<(Vec<f32>, f64)> {
    bf.set_topology(topology::ring(bf.size()))?;
    let share = synthetic(128, M::INPUT, 10 + bf.rank() as u64);
    let test = synthetic(32, M::INPUT, 99);
    let mut model: M = build(bf, 4)?;
    let mut opt = Optimizer::new(Method::DecentLam).lr(0.05).momentum(0.9);
    let cfg = Training {
        epochs: 1,
        batch: 16,
        seed: 1,
        steps_per_epoch: Some(4),
    };
    let log = train(bf, &mut model, &mut opt, &share, &test, &cfg, |_| {})?;
    Ok((parameters(&model), log[0].train_loss))
}

/// `train` on the GPU and on the CPU, 2 ranks, 4 steps: parameters and loss agree.
pub fn training() -> Vec<(String, bool)> {
    let cpu = fogkit::run(2, train_on::<Cpu, LeNet5>);
    let gpu = fogkit::run(2, train_on::<Cuda, LeNet5<f32, Cuda>>);
    match (cpu, gpu) {
        (Ok(c), Ok(g)) => c
            .iter()
            .zip(g.iter())
            .flat_map(|((r, (pc, lc)), (_, (pg, lg)))| {
                [
                    agree(
                        &format!("train LeNet-5 4 steps (rank {r}): parameters"),
                        pc,
                        pg,
                        NETWORK,
                    ),
                    agree(
                        &format!("train LeNet-5 4 steps (rank {r}): loss"),
                        &[*lc as f32],
                        &[*lg as f32],
                        NETWORK,
                    ),
                ]
            })
            .collect(),
        (c, g) => vec![(
            format!(
                "train LeNet-5 on both devices: {:?} / {:?}",
                c.err(),
                g.err()
            ),
            false,
        )],
    }
}
