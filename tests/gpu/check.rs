//! The GPU checks (feature `cuda`), run where a GPU is by `tests/gpu/run.sh`: every
//! collective and window op on dfdx `Cuda` tensors gives the bits it gives on `Cpu`
//! tensors; one optimizer step of every rule on a model on the GPU lands within 1e-5 of
//! the same step on the CPU (cuBLAS and gemm round differently); convolution, pooling,
//! LeNet-5, ResNet-20 and the training loop on the GPU agree with the CPU (`layers.rs`
//! states the tolerances); and the benchmarks: neighbor_allreduce of 2.55e7 f32 against a
//! device-side copy of the same bytes, and training samples/s against PyTorch
//! (`training.rs`). Prints `ok NAME` or `FAIL NAME: why` per check and a summary; exits 1
//! if any failed. Never skips a check quietly: no GPU is a failure that says so.
//!
//! Usage: gpu_check [--ranks N] [--bench-only | --no-bench] [--torch PYTHON]

use std::time::Instant;

use fogkit::dfdx::prelude::*;
use fogkit::optim::{parameters, set_parameters, Method, Optimizer};
use fogkit::prelude::*;

mod layers;
mod training;

/// rank `r`'s input, element `k` (deterministic, irregular).
fn input(r: usize, k: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| fogkit_tests::value(r, k + i) as f32)
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// GPU 0 (an error, not cudarc's panic, where there is no driver or GPU).
fn gpu() -> fogkit::Result<Cuda> {
    <Cuda as fogkit::nn::ConvDevice>::for_rank(0, 0)
}

/// The elements of several results, one after the other.
fn cat<T: Communicable<Elem = f32>>(parts: &[T]) -> Vec<f32> {
    parts.iter().flat_map(|t| t.flat().into_owned()).collect()
}

/// A window over `x`, put from `x` to the topology's neighbours, then combined.
fn window_round<T: Communicable<Elem = f32>>(
    bf: &Fog,
    name: &str,
    x: &T,
) -> fogkit::Result<Vec<f32>> {
    let win = bf.win_create(name, x, true)?;
    win.neighbor_win_put(x)?;
    bf.barrier()?;
    let combined = win.win_update()?;
    bf.barrier()?;
    win.win_free()?;
    Ok(combined)
}

/// Each collective on a Cuda tensor and on the same Cpu tensor: the same bits.
fn collectives(bf: &Fog) -> fogkit::Result<Vec<(String, bool)>> {
    let (cpu, cuda) = (Cpu::default(), gpu()?);
    let (me, n) = (bf.rank(), bf.size());
    let x = input(me, 0, 1000);
    let xc = cpu.tensor_from_vec(x.clone(), (1000,));
    let xg = cuda.tensor_from_vec(x, (1000,));
    let mut out = Vec::new();
    // Equal bits, and as many values as the op must give (two empty results are no pass).
    let mut same = |name: &str, a: Vec<f32>, b: Vec<f32>, len: usize| {
        let ok = a.len() == len && bits(&a) == bits(&b);
        out.push((format!("{name} (rank {me})"), ok));
    };
    let (a, b) = (bf.allreduce(&xc)?, bf.allreduce(&xg)?);
    same("allreduce", a.as_vec(), b.as_vec(), 1000);
    let (a, b) = (bf.broadcast(&xc, 1 % n)?, bf.broadcast(&xg, 1 % n)?);
    same("broadcast", a.as_vec(), b.as_vec(), 1000);
    let (a, b) = (cat(&bf.allgather(&xc)?), cat(&bf.allgather(&xg)?));
    same("allgather", a, b, n * 1000);
    for (name, t) in [
        ("ring", topology::ring(n)),
        ("exp2", topology::exponential_two(n)),
    ] {
        let degree = t.in_neighbors(me).len();
        bf.set_topology(t)?;
        let (a, b) = (bf.neighbor_allreduce(&xc)?, bf.neighbor_allreduce(&xg)?);
        same(
            &format!("neighbor_allreduce over {name}"),
            a.as_vec(),
            b.as_vec(),
            1000,
        );
        let (a, b) = (
            cat(&bf.neighbor_allgather(&xc)?),
            cat(&bf.neighbor_allgather(&xg)?),
        );
        same(
            &format!("neighbor_allgather over {name}"),
            a,
            b,
            degree * 1000,
        );
        let h = bf.neighbor_allreduce_nonblocking(&xg)?;
        let a = bf.neighbor_allreduce(&xc)?;
        same(
            &format!("neighbor_allreduce_nonblocking over {name}"),
            a.as_vec(),
            h.wait()?.as_vec(),
            1000,
        );
    }
    bf.set_topology(topology::ring(n))?;
    let (a, b) = (
        window_round(bf, "gpu_check_cpu", &xc)?,
        window_round(bf, "gpu_check_cuda", &xg)?,
    );
    same("neighbor_win_put + win_update", a, b, 1000);
    Ok(out)
}

/// Two steps of `method` on a Linear(8, 4) model on both devices: parameters within 1e-5.
fn optimizer_step(bf: &Fog, method: Method) -> fogkit::Result<(String, bool)> {
    let (cpu, cuda) = (Cpu::default(), gpu()?);
    bf.set_topology(topology::ring(bf.size()))?;
    let mut mc = cpu.build_module::<Linear<8, 4>, f32>();
    fogkit::optim::broadcast_parameters(bf, &mut mc, 0)?;
    let mut mg = cuda.build_module::<Linear<8, 4>, f32>();
    set_parameters(&mut mg, &parameters(&mc))?;
    let mut oc = Optimizer::new(method).lr(0.05);
    let mut og = Optimizer::new(method).lr(0.05);
    let x = input(bf.rank(), 7, 16 * 8);
    let y = input(bf.rank(), 11, 16 * 4);
    for _ in 0..2 {
        let xc = cpu.tensor_from_vec(x.clone(), (16, Const::<8>));
        let yc = cpu.tensor_from_vec(y.clone(), (16, Const::<4>));
        let mut gc = mse_loss(mc.forward(xc.leaky_trace()), yc).backward();
        oc.update(bf, &mut mc, &mut gc)?;
        let xg = cuda.tensor_from_vec(x.clone(), (16, Const::<8>));
        let yg = cuda.tensor_from_vec(y.clone(), (16, Const::<4>));
        let mut gg = mse_loss(mg.forward(xg.leaky_trace()), yg).backward();
        og.update(bf, &mut mg, &mut gg)?;
    }
    let (a, b) = (parameters(&mc), parameters(&mg));
    // NaN anywhere is a failure (a max over differences would drop it).
    let diffs: Vec<f32> = a
        .iter()
        .zip(&b)
        .map(|(u, v)| (u - v).abs() / (1.0 + u.abs()))
        .collect();
    let finite = diffs.iter().all(|d| d.is_finite());
    let worst = diffs.iter().copied().fold(0.0f32, f32::max);
    Ok((
        format!(
            "{} step on the GPU (rank {}, worst {worst:.1e})",
            method.name(),
            bf.rank()
        ),
        finite && worst <= 1e-5 && a.len() == 8 * 4 + 4 && b.len() == a.len(),
    ))
}

/// neighbor_allreduce of `len` f32 per rank over a ring on the GPU, against a kernel that
/// reads and writes the same bytes on the device in place (scale by 1: what a copy moves).
fn bench(bf: &Fog, len: usize) -> fogkit::Result<(f64, f64)> {
    let cuda = gpu()?;
    let sync = || {
        cuda.try_synchronize()
            .map_err(|e| fogkit::Error::Tensor(format!("{e:?}")))
    };
    bf.set_topology(topology::ring(bf.size()))?;
    let x = cuda.tensor_from_vec(vec![1.0f32 + bf.rank() as f32; len], (len,));
    let mut w = cuda.tensor_from_vec(vec![1.0f32; len], (len,));
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        bf.barrier()?;
        let t = Instant::now();
        let y = bf.neighbor_allreduce(&x)?;
        sync()?;
        best.0 = best.0.min(t.elapsed().as_secs_f64());
        drop(y);
        // The ranks share one context and its stream: time the copy with all of them here.
        bf.barrier()?;
        let t = Instant::now();
        w = w * 1.0; // `w` is the only owner of its memory: the kernel works in place
        sync()?;
        best.1 = best.1.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let ranks = match args
        .iter()
        .position(|a| a == "--ranks")
        .map(|i| args.get(i + 1))
    {
        None => 4,
        Some(Some(n)) if n.parse::<usize>().is_ok_and(|n| n > 0) => n.parse().unwrap_or(4),
        Some(v) => {
            eprintln!("gpu_check: --ranks expected a positive number, found {v:?}");
            std::process::exit(2);
        }
    };
    let torch = match args
        .iter()
        .position(|a| a == "--torch")
        .map(|i| args.get(i + 1))
    {
        None => None,
        Some(Some(py)) if !py.starts_with("--") => Some(py.clone()),
        Some(v) => {
            eprintln!("gpu_check: --torch expected a python command, found {v:?}");
            std::process::exit(2);
        }
    };
    if flag("--bench-only") && flag("--no-bench") {
        eprintln!("gpu_check: expected at most one of --bench-only and --no-bench, found both");
        std::process::exit(2);
    }
    let mut t = Tally::default();
    if !flag("--bench-only") {
        // A first use of the run-time compiled kernels (dfdx compiles concatenation,
        // strided copies and stack's backward with NVRTC, against headers it looks for
        // where they were at build time: run.sh puts them there).
        t.guard(
            "dfdx's run-time kernels (concat, strided reshape, stack)",
            || {
                let g = gpu().map_err(|e| e.to_string())?;
                layers::run_time_kernels(&g)
            },
        );
        t.guard("collectives", || match fogkit::run(ranks, collectives) {
            Ok(r) => Ok(r.iter().flat_map(|(_, v)| v.iter().cloned()).collect()),
            Err(e) => Err(e.to_string()),
        });
        for m in Method::all() {
            t.guard(m.name(), || {
                match fogkit::run(ranks, |bf| optimizer_step(bf, m)) {
                    Ok(r) => Ok(r.iter().map(|(_, v)| v.clone()).collect()),
                    Err(e) => Err(e.to_string()),
                }
            });
        }
        t.guard("layers", || {
            Ok(layers::layers(&gpu().map_err(|e| e.to_string())?))
        });
        t.guard("networks", || {
            Ok(layers::networks(&gpu().map_err(|e| e.to_string())?))
        });
        t.guard("train", || Ok(layers::training()));
    }
    if !flag("--no-bench") {
        for n in [2, 4] {
            t.guard(&format!("bench with {n} ranks"), || {
                let r = fogkit::run(n, |bf| bench(bf, 25_500_000)).map_err(|e| e.to_string())?;
                let (ar, copy) = r
                    .iter()
                    .map(|(_, t)| *t)
                    .fold((0.0f64, 0.0f64), |a, t| (a.0.max(t.0), a.1.max(t.1)));
                println!(
                    "bench neighbor_allreduce 2.55e7 f32, {n} ranks on one GPU: {:.2} ms; \
                     device copy of the same bytes {:.2} ms; ratio {:.3}",
                    ar * 1e3,
                    copy * 1e3,
                    copy / ar
                );
                Ok(Vec::new())
            });
        }
        t.guard("training bench", || {
            Ok(training::bench(4, torch.as_deref())
                .into_iter()
                .map(|e| (e, false))
                .collect())
        });
    }
    println!("gpu checks: {} passed, {} failed", t.passed, t.failed);
    std::process::exit(if t.failed == 0 { 0 } else { 1 });
}

/// The checks' results, printed as they come (a later crash loses none of them).
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
            println!("ok {name}");
        } else {
            self.failed += 1;
            println!("FAIL {name}");
        }
    }

    /// Runs a group of checks; an error or a panic in it is one failure that says so.
    fn guard(&mut self, group: &str, f: impl FnOnce() -> Result<Vec<(String, bool)>, String>) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(Ok(results)) => results.iter().for_each(|(n, ok)| self.record(n, *ok)),
            Ok(Err(e)) => self.record(&format!("{group}: {e}"), false),
            Err(p) => {
                let why = p
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                self.record(&format!("{group}: panicked: {why}"), false)
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}
