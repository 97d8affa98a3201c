//! Runs every optimizer case (`fogkit_tests::forms`) on 8 ranks in machines of 4 and
//! prints one line per rank: `rank R optim HEX count C`, to compare across transports.
//!
//! Usage: fogkit-optim

fn main() {
    match fogkit::run_with(
        fogkit_tests::forms::config(),
        fogkit_tests::forms::N,
        fogkit_tests::optim_line,
    ) {
        Ok(lines) => {
            for (_, line) in lines.iter() {
                println!("{line}");
            }
        }
        Err(e) => {
            eprintln!("fogkit-optim: {e}");
            std::process::exit(1);
        }
    }
}
