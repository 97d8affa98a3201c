//! Runs the shared scenario on N ranks and prints one line per rank:
//! `rank R digest HEX count C`. With `--panic-rank R`, rank R panics midway instead.
//!
//! Usage: fogkit-collectives N [--panic-rank R]

use fogkit_tests::{digest, scenario};

fn main() {
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
    let res = fogkit::run(n, |bf| {
        bf.barrier()?;
        if Some(bf.rank()) == panic_rank {
            panic!("rank {} was told to panic", bf.rank());
        }
        let bits = scenario(bf)?;
        Ok::<_, fogkit::Error>((bf.rank(), digest(&bits), bits.len()))
    });
    match res {
        Ok(rows) => {
            for (r, d, c) in rows {
                println!("rank {r} digest {d:016x} count {c}");
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
