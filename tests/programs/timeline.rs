//! The timeline scenario as a program (run under mpirun by `tests/mpirun.rs`, with
//! `FOGKIT_TIMELINE` set): each rank prints its averaged value.

fn main() -> fogkit::Result<()> {
    fogkit::timeline::init_logging();
    let n = fogkit::launched_size().unwrap_or(4);
    let out = fogkit::run(n, fogkit_tests::timeline_step)?;
    for (rank, x) in out.iter() {
        println!("rank {rank}: {x}");
    }
    Ok(())
}
