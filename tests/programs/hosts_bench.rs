//! The several-hosts benchmark: makes 4 test hosts (network namespaces on a bridge, see
//! `fogkit_tests::hosts`), runs `mpi_bench --ops 25500000` on them with one rank each
//! (TCP between hosts; ranks grouped 2 x 2 for the hierarchical op), prints its table
//! and removes the hosts. Needs root.
//!
//! Run: `cargo build --release -p fogkit-tests --features mpi --bin hosts_bench --bin
//! mpi_bench --bin fogrun-under-test && target/release/hosts_bench [LEN] [--quick]`.

use std::process::Command;

use fogkit_tests::hosts::Hosts;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let len = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "25500000".into());
    let dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|p| p.to_path_buf()))
        .unwrap_or_default();
    let (fogrun, bench) = (dir.join("fogrun-under-test"), dir.join("mpi_bench"));
    for exe in [&fogrun, &bench] {
        if !exe.is_file() {
            eprintln!(
                "hosts_bench: expected {} (build it as the doc says)",
                exe.display()
            );
            std::process::exit(2);
        }
    }
    let hosts = match Hosts::create(4) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("hosts_bench: cannot create test hosts: {e}");
            std::process::exit(2);
        }
    };
    let opts = hosts.fogrun_args(1).unwrap_or_else(|e| {
        eprintln!("hosts_bench: {e}");
        std::process::exit(2)
    });
    let mut cmd = Command::new(&fogrun);
    cmd.args(["-np", "4"])
        .args(&opts)
        .arg(&bench)
        .args(["--ops", &len])
        .env("FOGKIT_LOCAL_SIZE", "2");
    if args.iter().any(|a| a == "--quick") {
        cmd.arg("--quick");
    }
    println!(
        "4 test hosts x 1 rank, TCP over veth links ({})",
        hosts.subnet()
    );
    let code = match cmd.status() {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("hosts_bench: could not start fogrun: {e}");
            1
        }
    };
    drop(hosts);
    std::process::exit(code);
}
