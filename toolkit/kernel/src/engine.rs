//! One MPI engine (`fogkit-kernel --engine ADDR --token T`, started by the kernel
//! through `fogrun`): connects back to the kernel, runs the set-up and then every cell it
//! is sent in its own evaluation context, and streams the outputs back. Its cells call
//! fogkit on the MPI transport (fogkit's `mpi` feature), so a handle made in one cell
//! lives on in the next. It never outlives its kernel: when the connection closes, it
//! kills its cell process and exits.

use std::io::BufReader;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::link;
use crate::local::{Local, Out, Setup};

/// Runs the engine until the kernel goes away; returns the process's exit code.
pub fn main(addr: &str, token: &str) -> i32 {
    let rank = fogkit_rank();
    match serve(addr, token, rank) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("fogkit engine {rank}: {e}");
            2
        }
    }
}

fn fogkit_rank() -> usize {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .unwrap_or(0)
}

fn serve(addr: &str, token: &str, rank: usize) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .map_err(|e| format!("could not reach the kernel at {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let writer = Arc::new(Mutex::new(stream.try_clone().map_err(|e| e.to_string())?));
    let size: usize = std::env::var("OMPI_COMM_WORLD_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let send = |v: &Value| {
        let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
        link::send(&mut *w, v).map_err(|e| format!("the kernel's connection failed: {e}"))
    };
    send(
        &json!({"hello": {"token": token, "rank": rank, "size": size, "host": host,
        "pid": std::process::id()}}),
    )?;

    let mut reader = BufReader::new(stream);
    let setup = match link::recv(&mut reader).map_err(|e| e.to_string())? {
        Some(v) => Setup {
            init: v["init"]
                .as_array()
                .ok_or_else(|| format!("expected the set-up from the kernel, found {v}"))?
                .iter()
                .filter_map(|l| l.as_str().map(String::from))
                .collect(),
        },
        None => return Ok(()),
    };
    // A failed send shows as the connection closing, below.
    let mut emit = |o: Out| drop(send(&link::out(&o)));
    let mut local = match Local::start(&setup, &mut emit) {
        Ok(l) => {
            send(&json!({"done": true}))?;
            l
        }
        Err(f) => {
            send(&link::failed(&f))?;
            return Err(f.evalue);
        }
    };
    // The kernel's connection closing (the kernel stopped the engines, or died) ends
    // this engine even in the middle of a cell: a watcher on a second handle sees it.
    let child = local.child();
    let (cells_tx, cells_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        while let Ok(Some(v)) = link::recv(&mut reader) {
            if let Some(code) = v["cell"].as_str() {
                if cells_tx.send(code.to_string()).is_err() {
                    break;
                }
            }
        }
        let mut c = child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = c.kill();
        let _ = c.wait();
        std::process::exit(0);
    });
    for code in cells_rx {
        let mut emit = |o: Out| drop(send(&link::out(&o)));
        let r = local.eval(&code, &mut emit);
        match r {
            Ok(()) => send(&json!({"done": true}))?,
            Err(f) => send(&link::failed(&f))?,
        }
    }
    local.kill();
    Ok(())
}
