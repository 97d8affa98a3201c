//! Runs the shared scenario on N ranks and prints one line per rank:
//! `rank R digest HEX count C`. Failure modes for tests: `--panic-rank R` (rank R
//! panics), `--kill-rank R` (rank R kills its process), `--fail-rank R` (rank R returns
//! an error), `--mismatch` (rank 1 calls a different collective).
//!
//! Usage: fogkit-collectives N [--panic-rank R]

use fogkit_tests::scenario_line;

fn main() {
    fogkit::timeline::init_logging();
    let args: Vec<String> = std::env::args().collect();
    let n: usize = match args.get(1).map(|s| s.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!(
                "usage: fogkit-collectives N [--panic-rank R]: expected a rank count N, found {:?}",
                args.get(1)
            );
            std::process::exit(2);
        }
    };
    let panic_rank: Option<usize> = args
        .iter()
        .position(|a| a == "--panic-rank")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok());
    let kill_rank: Option<usize> = args
        .iter()
        .position(|a| a == "--kill-rank")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok());
    let fail_rank: Option<usize> = args
        .iter()
        .position(|a| a == "--fail-rank")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok());
    let mismatch = args.iter().any(|a| a == "--mismatch");
    let res = fogkit::run(n, |bf| {
        if mismatch {
            // Rank 1 calls allreduce while the others call neighbor_allreduce.
            let x = [bf.rank() as f64];
            if bf.rank() == 1 {
                bf.allreduce(&x)?;
            } else {
                bf.neighbor_allreduce(&x)?;
            }
        }
        if Some(bf.rank()) == kill_rank {
            bf.barrier()?;
            // Die the hard way, as a crashed or killed process would.
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::thread::sleep(std::time::Duration::from_secs(30));
        }
        if Some(bf.rank()) == fail_rank {
            bf.barrier()?;
            return Err(fogkit::Error::InvalidArgument(format!(
                "rank {} returns an error on purpose",
                bf.rank()
            )));
        }
        bf.barrier()?;
        let sleeper = std::env::var("FOGKIT_TEST_SLEEP_RANK")
            .ok()
            .and_then(|s| s.parse().ok());
        if Some(bf.rank()) == sleeper {
            // Stay alive but never join the next collective.
            std::thread::sleep(std::time::Duration::from_secs(20));
        }
        if Some(bf.rank()) == panic_rank {
            panic!("rank {} was told to panic", bf.rank());
        }
        if bf.rank() == 0 {
            eprintln!("transport: {}", bf.transport_description());
        }
        scenario_line(bf)
    });
    match res {
        Ok(rows) => {
            for (_, line) in rows {
                println!("{line}");
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
