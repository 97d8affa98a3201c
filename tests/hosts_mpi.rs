//! fogkit across hosts: network namespaces on a bridge (`fogkit_tests::hosts`), MPI over
//! TCP between them. Every collective bit for bit against in-process ranks, the ranks'
//! places as laid out, the hierarchical op against its dense definition, one-sided windows
//! over RMA between hosts (their ops, the window optimizers, asynchronous push-sum, a
//! 2.55e7 f32 window), training to the same parameters, and a host cut off mid-run: the job ends, names the host, and leaves
//! no process behind. Needs root (the CI machine is); elsewhere these tests say so and
//! pass without running, unless FOGKIT_REQUIRE_HOSTS=1.

use std::time::{Duration, Instant};

use fogkit::Config;
use fogkit_tests::hosts::{self, Hosts};
use fogkit_tests::process::{
    field, in_process_lines, parameter_sums, run, sorted_lines, start_until, Out,
};
use fogkit_tests::scenario_line;

const FOGRUN: &str = env!("CARGO_BIN_EXE_fogrun-under-test");
const COLLECTIVES: &str = env!("CARGO_BIN_EXE_fogkit-collectives");
const LAYOUT: &str = env!("CARGO_BIN_EXE_fogkit-layout");
const TRAIN: &str = env!("CARGO_BIN_EXE_train");
const WINDOWS: &str = env!("CARGO_BIN_EXE_fogkit-windows");

/// Test hosts, or `None` (after saying why) where this machine cannot make them.
fn hosts(n: usize) -> Option<Hosts> {
    if let Err(why) = hosts::available() {
        if std::env::var("FOGKIT_REQUIRE_HOSTS").as_deref() == Ok("1") {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
        return None;
    }
    Some(Hosts::create(n).unwrap_or_else(|e| panic!("cannot create {n} test hosts: {e}")))
}

/// `fogrun -np np` over `h` with `slots` ranks per host.
fn fogrun_on(h: &Hosts, slots: usize, program: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let np = (h.len() * slots).to_string();
    let opts = h.fogrun_args(slots).expect("hostfile");
    let mut a: Vec<&str> = vec!["-np", &np];
    a.extend(opts.iter().map(String::as_str));
    a.push(program);
    a.extend_from_slice(args);
    run(FOGRUN, &a, env, 240)
}

/// Everything a job over `hosts x slots` must equal: collectives, layout, training.
fn same_as_in_process(n_hosts: usize, slots: usize) {
    let Some(h) = hosts(n_hosts) else { return };
    let n = n_hosts * slots;
    let what = format!("{n_hosts} hosts x {slots}");

    let o = fogrun_on(&h, slots, COLLECTIVES, &[&n.to_string()], &[]);
    assert_eq!(o.code, 0, "{what}: {}", o.stderr);
    let cfg = Config::default().local_size(slots);
    let mut want = fogkit::run_with(cfg, n, scenario_line)
        .unwrap()
        .into_vec()
        .unwrap();
    want.sort();
    assert_eq!(sorted_lines(&o.stdout, "rank "), want, "{what}");

    let o = fogrun_on(&h, slots, LAYOUT, &[], &[]);
    assert_eq!(o.code, 0, "{what}: {}", o.stderr);
    let want: Vec<String> = (0..n)
        .map(|r| {
            format!(
                "rank {r} on {}: local {} of {slots}, machine {} of {n_hosts}; hierarchical ok",
                h.hostname(r / slots),
                r % slots,
                r / slots
            )
        })
        .collect();
    assert_eq!(sorted_lines(&o.stdout, "rank "), want, "{what}");

    // One-sided windows between hosts go over MPI RMA epochs (shared memory only within
    // a host): every op against hand-computed values, and the bits of in-process ranks.
    let o = fogrun_on(&h, slots, WINDOWS, &[&n.to_string()], &[]);
    assert_eq!(o.code, 0, "{what} windows: {}", o.stderr);
    let want = in_process_lines(n, fogkit_tests::windows::window_line);
    assert_eq!(sorted_lines(&o.stdout, "rank "), want, "{what} windows");
    let o = fogrun_on(&h, slots, WINDOWS, &[&n.to_string(), "--optimizers"], &[]);
    assert_eq!(o.code, 0, "{what} window optimizers: {}", o.stderr);
    let want = in_process_lines(n, fogkit_tests::window_training::window_optimizer_line);
    assert_eq!(
        sorted_lines(&o.stdout, "rank "),
        want,
        "{what} window optimizers"
    );
    // Asynchronous push-sum between hosts, rank 1 five times slower: the average to 1e-8.
    let o = fogrun_on(&h, slots, WINDOWS, &[&n.to_string(), "--async", "2"], &[]);
    assert_eq!(o.code, 0, "{what} push-sum: {}", o.stderr);
    let lines = sorted_lines(&o.stdout, "rank ");
    assert_eq!(lines.len(), n, "{}", o.stdout);
    for l in &lines {
        assert!(field(l, "error") < 1e-8, "{what} push-sum: {l}");
    }

    let args = [
        "--model", "mlp", "--data", "mnist", "--steps", "4", "--batch", "16", "--epochs", "1",
    ];
    let n_s = n.to_string();
    let local = run(TRAIN, &args, &[("FOGKIT_RANKS", &n_s)], 240);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let over = fogrun_on(&h, slots, TRAIN, &args, &[]);
    assert_eq!(over.code, 0, "{what}: {}", over.stderr);
    let sums = parameter_sums;
    assert!(sums(&local.stdout).is_some(), "{}", local.stdout);
    assert_eq!(sums(&over.stdout), sums(&local.stdout), "{what}");
    drop(h);
}

#[test]
fn two_hosts_of_two_ranks_equal_in_process_ranks_bit_for_bit() {
    same_as_in_process(2, 2);
}

#[test]
fn four_hosts_of_one_rank_equal_in_process_ranks_bit_for_bit() {
    same_as_in_process(4, 1);
}

#[test]
fn a_window_of_2_55e7_f32_moves_between_hosts_without_deadlock() {
    // 102 MB per rank over RMA in pieces, between 2 hosts; every element checked by each
    // rank, the run's deadline bounds the time.
    let Some(h) = hosts(2) else { return };
    let o = fogrun_on(&h, 1, WINDOWS, &["2", "--large", "25500000"], &[]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(sorted_lines(&o.stdout, "rank ").len(), 2, "{}", o.stdout);
    drop(h);
}

#[test]
fn windows_between_hosts_over_an_osc_that_refuses_threads_fail_saying_what_to_change() {
    // Open MPI 4's osc/pt2pt refuses MPI_THREAD_MULTIPLE (fogrun leaves it out unless the
    // user names an osc, as here): every rank's window creation fails with a message, the
    // job ends, nothing aborts without saying why.
    let Some(h) = hosts(2) else { return };
    let opts = h.fogrun_args(1).expect("hostfile");
    let mut a: Vec<&str> = vec!["-np", "2", "--mca", "osc", "pt2pt"];
    a.extend(opts.iter().map(String::as_str));
    a.extend([WINDOWS, "2"]);
    let o = run(FOGRUN, &a, &[], 120);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stderr
            .contains("MPI could not make an RMA window. Between hosts the likely cause")
            && o.stderr.contains("--mca osc ^pt2pt"),
        "{}",
        o.stderr
    );
    drop(h);
}

#[test]
fn a_host_cut_off_mid_run_ends_the_job_naming_it_and_leaves_nothing_behind() {
    let Some(h) = hosts(2) else { return };
    let deadline = 5;
    let opts = h.fogrun_args(2).expect("hostfile");
    let mut args: Vec<&str> = vec!["-np", "4"];
    args.extend(opts.iter().map(String::as_str));
    args.extend([LAYOUT, "--loop"]);
    let d = deadline.to_string();
    let job = start_until(FOGRUN, &args, &[("FOGKIT_TIMEOUT", &d)], "looping", 4, 120);
    std::thread::sleep(Duration::from_millis(500));
    h.cut(1).expect("cut host 1");
    let limit = deadline + 15;
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.end_within(limit)));
    // The cut host's ranks cannot hear from mpirun: they must end on their own deadline.
    let t = Instant::now();
    let ranks_left = loop {
        let left: Vec<(u32, String)> = h
            .processes(1)
            .into_iter()
            .filter(|(_, c)| c.contains(LAYOUT))
            .collect();
        if left.is_empty() || t.elapsed() > Duration::from_secs(deadline + 10) {
            break left;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    h.restore(1).expect("restore host 1");
    assert!(
        ranks_left.is_empty(),
        "ranks still running on the cut-off host: {ranks_left:?}"
    );
    let (code, took, stderr) =
        ended.unwrap_or_else(|_| panic!("the job outlived the cut by {limit} s"));
    assert_ne!(code, 0, "a lost host must fail the job: {stderr}");
    assert!(
        stderr.contains(&h.hostname(1)) && stderr.contains(h.addr(1)),
        "the message names the lost host ({} at {}): {stderr}",
        h.hostname(1),
        h.addr(1)
    );
    eprintln!("the job ended {took:?} after the cut");
    // With the link back, nothing of the job may be left on any host.
    let gone = Instant::now();
    loop {
        let left: Vec<(u32, String)> = (0..h.len()).flat_map(|i| h.processes(i)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            gone.elapsed() < Duration::from_secs(30),
            "processes left on the hosts 30 s after the link came back: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
