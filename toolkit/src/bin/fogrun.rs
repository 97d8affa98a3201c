//! `fogrun -np N PROGRAM ARGS...`: runs a fogkit program on N processes under mpirun
//! (BlueFog's `bfrun`). See `fogkit::launch`.

fn main() {
    fogkit::timeline::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(fogkit::launch::fogrun_main(&args));
}
