//! `fogkit-kernel`: fogkit's Jupyter kernel (kernelspec "Rust (fogkit)"), on the `evcxr`
//! crate. fogkit and its prelude are loaded before the first cell; `:engines 4` moves
//! the cells onto 4 MPI engines (see `session`).
//!
//! ```text
//! fogkit-kernel --connection-file FILE      the kernel (started by Jupyter)
//! fogkit-kernel --cells CELL...             runs cells here and prints what they show
//! fogkit-kernel --engine ADDR --token T     one MPI engine (started by the kernel)
//! ```

mod engine;
mod engines;
mod job;
mod link;
mod local;
mod server;
mod session;
mod slot;
mod wire;

use local::Out;

const USAGE: &str = "usage: fogkit-kernel --connection-file FILE [--toolkit DIR]
       fogkit-kernel --cells CELL... [--toolkit DIR]
       fogkit-kernel --engine ADDR --token TOKEN";

fn main() {
    // evcxr re-runs this binary as its cell process and as its compiler wrapper.
    if std::env::var_os("EVCXR_IS_RUNTIME").is_some() {
        job::die_with_parent();
    }
    evcxr::runtime_hook();
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(run(&args));
}

fn run(args: &[String]) -> i32 {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let toolkit = value("--toolkit")
        .or_else(|| std::env::var("FOGKIT_TOOLKIT").ok())
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/..").to_string());
    let toolkit = std::fs::canonicalize(&toolkit)
        .map(|p| p.display().to_string())
        .unwrap_or(toolkit);
    match args.first().map(String::as_str) {
        Some("--engine") => {
            let (Some(addr), Some(token)) = (value("--engine"), value("--token")) else {
                eprintln!("{USAGE}");
                return 2;
            };
            slot::take("engine");
            engine::main(&addr, &token)
        }
        Some("--connection-file") => {
            let Some(file) = value("--connection-file") else {
                eprintln!("{USAGE}");
                return 2;
            };
            job::adopt_orphans();
            slot::take("kernel");
            match server::serve(std::path::Path::new(&file), toolkit) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("fogkit-kernel: {e}");
                    1
                }
            }
        }
        Some("--cells") => {
            job::adopt_orphans();
            slot::take("kernel");
            cells(args[1..].iter().take_while(|a| *a != "--toolkit"), toolkit)
        }
        Some("--version") => {
            println!("fogkit-kernel {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            0
        }
        found => {
            eprintln!(
                "fogkit-kernel: expected --connection-file, --cells or --engine, found {}\n{USAGE}",
                found.unwrap_or("nothing")
            );
            2
        }
    }
}

/// Runs cells in a session without Jupyter, printing their outputs: exit code 1 if a
/// cell failed.
fn cells<'a>(cells: impl Iterator<Item = &'a String>, toolkit: String) -> i32 {
    let mut session = session::Session::new(toolkit);
    let mut print = |o: Out| match o {
        Out::Stream { name, text } if name == "stderr" => eprint!("{text}"),
        Out::Stream { text, .. } => print!("{text}"),
        Out::Display { data } => match data.get("text/plain") {
            Some(serde_json::Value::String(t)) => println!("{t}"),
            _ => println!("({})", data.keys().cloned().collect::<Vec<_>>().join(", ")),
        },
    };
    let mut code = 0;
    let times = std::env::var_os("FOGKIT_CELL_TIMES").is_some();
    let start = std::time::Instant::now();
    if times {
        let r = session.warm(&mut print);
        eprintln!("[kernel ready in {:.2} s]", start.elapsed().as_secs_f64());
        if let Err(f) = r {
            eprintln!("error: {}: {}", f.ename, f.evalue);
        }
    }
    for (i, cell) in cells.enumerate() {
        let started = std::time::Instant::now();
        let r = session.execute(cell, &mut print);
        if times {
            eprintln!("[cell {i}: {:.2} s]", started.elapsed().as_secs_f64());
        }
        if let Err(f) = r {
            eprintln!("error: {}: {}", f.ename, f.evalue);
            for l in f.traceback.iter().skip(1) {
                eprintln!("{l}");
            }
            code = 1;
        }
    }
    session.end();
    code
}
