//! Records metrics on N ranks, gathers them on rank 0 and prints the frame's size and a
//! checksum of every row, so in-process and mpirun runs can be compared.
//!
//! Usage: fogkit-metrics N

use fogkit::metrics::Metrics;

/// What rank `r` records at `step` for metric `m`.
pub fn value(r: usize, step: u64, m: usize) -> f64 {
    (r as f64 + 1.0) * 1000.0 + step as f64 * 0.25 + m as f64
}

fn main() {
    fogkit::timeline::init_logging();
    let n: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: fogkit-metrics N: expected a rank count N");
            std::process::exit(2);
        }
    };
    let res = fogkit::run(n, |bf| -> fogkit::Result<()> {
        let mut m = Metrics::new("run", bf.rank());
        // Ranks record different numbers of steps: the frame must still hold them all.
        for k in 0..(20 + bf.rank() as u64) {
            m.record(k, "loss", value(bf.rank(), k, 0))?;
            m.record(k, "gap", value(bf.rank(), k, 1))?;
        }
        if let Some(df) = m.gather(bf)? {
            let ranks = df.column("rank").and_then(|c| c.u32().cloned());
            let steps = df.column("step").and_then(|c| c.u64().cloned());
            let names = df.column("metric").and_then(|c| c.str().cloned());
            let values = df.column("value").and_then(|c| c.f64().cloned());
            let (Ok(ranks), Ok(steps), Ok(names), Ok(values)) = (ranks, steps, names, values)
            else {
                return Err(fogkit::Error::Data("unexpected column types".into()));
            };
            let mut bad = 0;
            for i in 0..df.height() {
                let m = usize::from(names.get(i) == Some("gap"));
                let want = value(
                    ranks.get(i).unwrap_or(0) as usize,
                    steps.get(i).unwrap_or(0),
                    m,
                );
                if values.get(i) != Some(want) {
                    bad += 1;
                }
            }
            println!("rows {} mismatched {bad}", df.height());
        }
        Ok(())
    });
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
