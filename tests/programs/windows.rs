//! Runs the window cases on N ranks (in-process, or one per process under mpirun) and
//! prints one line per rank: `rank R digest HEX count C`; with `--async SECS`, runs
//! asynchronous push-sum with rank 1 five times slower and prints
//! `rank R error E iterations I`; with `--stress`, the stress loop (`rank R drift D`); with
//! `--large LEN`, one window of LEN f32 (`rank R put S s`); with `--optimizers`, the window
//! optimizers in lockstep (`rank R dsgd HEX win_put HEX push_sum HEX`); with `--train-slow
//! SECS`, the push-sum optimizer with rank 1 five times slower (`rank R distance D start S
//! steps K`, D from the optimum, S the optimum's own size).
//!
//! Usage: fogkit-windows N [--async SECS | --stress | --large LEN | --optimizers |
//! --train-slow SECS]

use std::time::Duration;

use fogkit_tests::window_training::{push_sum_with_a_slow_rank, window_optimizer_line, x_star};
use fogkit_tests::windows::{async_push_sum, window_line, window_stress};

fn main() {
    fogkit::timeline::init_logging();
    let args: Vec<String> = std::env::args().collect();
    let n: usize = match args.get(1).map(|s| s.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!(
                "usage: fogkit-windows N [--async SECS | --stress | --large LEN | --optimizers \
                 | --train-slow SECS]: expected a rank count N, found {:?}",
                args.get(1)
            );
            std::process::exit(2);
        }
    };
    let flag = |name: &str| args.iter().position(|a| a == name).map(|i| args.get(i + 1));
    let res = if let Some(secs) = flag("--async") {
        let Some(secs) = secs.and_then(|s| s.parse::<f64>().ok()) else {
            eprintln!("usage: --async SECS expected a number of seconds, found {secs:?}");
            std::process::exit(2);
        };
        fogkit::run(n, |bf| {
            let run = async_push_sum(
                bf,
                Duration::from_secs_f64(secs),
                Duration::from_micros(500),
                1 % n,
                5,
            )?;
            Ok(format!(
                "rank {} error {:e} iterations {}",
                bf.rank(),
                run.error,
                run.iterations
            ))
        })
    } else if let Some(len) = flag("--large") {
        let Some(len) = len.and_then(|s| s.parse::<usize>().ok()) else {
            eprintln!("usage: --large LEN expected a number of f32, found {len:?}");
            std::process::exit(2);
        };
        fogkit::run(n, |bf| {
            let secs = fogkit_tests::windows::window_large(bf, len)?;
            Ok(format!("rank {} put {secs:.3} s", bf.rank()))
        })
    } else if let Some(secs) = flag("--train-slow") {
        let Some(secs) = secs.and_then(|s| s.parse::<f64>().ok()) else {
            eprintln!("usage: --train-slow SECS expected a number of seconds, found {secs:?}");
            std::process::exit(2);
        };
        fogkit::run(n, |bf| {
            let (x, steps) = push_sum_with_a_slow_rank(bf, Duration::from_secs_f64(secs))?;
            let x_star = x_star(bf.size(), 0.0);
            let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|d| d * d).sum::<f64>().sqrt();
            let d = norm(&mut x.iter().zip(&x_star).map(|(a, b)| a - b));
            let start = norm(&mut x_star.iter().copied());
            Ok(format!(
                "rank {} distance {d:e} start {start:e} steps {steps}",
                bf.rank()
            ))
        })
    } else if flag("--optimizers").is_some() {
        fogkit::run(n, window_optimizer_line)
    } else if flag("--stress").is_some() {
        fogkit::run(n, |bf| {
            let d = window_stress(bf, 10, 20, 7)?;
            Ok(format!("rank {} drift {d:e}", bf.rank()))
        })
    } else {
        fogkit::run(n, window_line)
    };
    match res {
        Ok(lines) => {
            for (_, line) in lines.iter() {
                println!("{line}");
            }
        }
        Err(e) => {
            eprintln!("fogkit-windows: {e}");
            std::process::exit(1);
        }
    }
}
