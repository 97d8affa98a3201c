//! Every misuse returns Err with a message naming what was expected and found; nothing
//! hangs (each test runs under a deadline, collectives under a short timeout).

mod common;

use std::time::Duration;

use common::within;
use fogkit::prelude::*;

fn quick() -> Config {
    Config::default().timeout(Duration::from_millis(500))
}

fn err_text<R: std::fmt::Debug>(r: fogkit::Result<Ranks<R>>) -> (Error, String) {
    let e = r.expect_err("expected an error");
    let s = e.to_string();
    (e, s)
}

#[test]
fn different_collectives_are_a_mismatch() {
    within(20, || {
        let (e, s) = err_text(fogkit::run_with(quick(), 3, |bf| {
            if bf.rank() == 2 {
                bf.barrier().map(|_| 0.0)
            } else {
                bf.allreduce(&[1.0f64]).map(|v| v[0])
            }
        }));
        assert!(matches!(e, Error::Mismatch { call: 0, .. }), "{e:?}");
        assert!(
            s.contains("allreduce(f64 x 1)") && s.contains("rank 2 called barrier"),
            "{s}"
        );
    });
}

#[test]
fn different_lengths_dtypes_roots_reductions_are_mismatches() {
    within(20, || {
        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            bf.neighbor_allreduce(&vec![1.0f64; 3 + bf.rank()])
        }));
        assert!(
            s.contains("f64 x 3") && s.contains("f64 x 4") && s.contains("different length"),
            "{s}"
        );

        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            if bf.rank() == 0 {
                bf.allreduce(&[1.0f32]).map(|_| ())
            } else {
                bf.allreduce(&[1.0f64]).map(|_| ())
            }
        }));
        assert!(s.contains("f32") && s.contains("f64"), "{s}");

        let (_, s) = err_text(fogkit::run_with(quick(), 3, |bf| {
            bf.broadcast(&[1.0f64], bf.rank().min(1))
        }));
        assert!(s.contains("root 0") && s.contains("root 1"), "{s}");

        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            let op = if bf.rank() == 0 {
                ReduceOp::Sum
            } else {
                ReduceOp::Max
            };
            bf.allreduce_op(&[1.0f64], op)
        }));
        assert!(s.contains("different reduction"), "{s}");
    });
}

#[test]
fn different_topologies_are_a_mismatch() {
    within(20, || {
        let (e, s) = err_text(fogkit::run_with(quick(), 4, |bf| {
            let t = if bf.rank() == 3 {
                topology::star(4)
            } else {
                topology::ring(4)
            };
            bf.set_topology(t)
        }));
        assert!(matches!(e, Error::Mismatch { .. }), "{e:?}");
        assert!(
            s.contains("set_topology") && s.contains("rank 3") && s.contains("different topology"),
            "{s}"
        );
    });
}

#[test]
fn unpaired_sends_and_receives_are_a_mismatch() {
    within(20, || {
        // 0 gossips with 1, 1 with 2, 2 with 0: nobody's partner agrees.
        let (_, s) = err_text(fogkit::run_with(quick(), 3, |bf| {
            bf.pair_gossip(&[1.0f64], (bf.rank() + 1) % 3)
        }));
        assert!(
            s.contains("expects data from rank") || s.contains("sends to rank"),
            "{s}"
        );
        // Receiving from a rank that does not send.
        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            let w = if bf.rank() == 0 {
                NeighborWeights::new(0.5).src(1, 0.5)
            } else {
                NeighborWeights::new(1.0)
            };
            bf.neighbor_allreduce_with(&[1.0f64], &w)
        }));
        assert!(
            s.contains("rank 0") && s.contains("expects data from rank 1"),
            "{s}"
        );
    });
}

#[test]
fn a_rank_that_never_arrives_times_out_with_its_rank() {
    within(20, || {
        let start = std::time::Instant::now();
        let (e, s) = err_text(fogkit::run_with(quick(), 3, |bf| {
            if bf.rank() == 1 {
                std::thread::sleep(Duration::from_millis(1500));
            }
            bf.barrier()
        }));
        assert!(
            matches!(&e, Error::Timeout { missing, .. } if missing == &vec![1]),
            "{e:?}"
        );
        assert!(
            s.contains("rank(s) [1] did not join") && s.contains("barrier"),
            "{s}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn a_panicking_rank_fails_the_run_with_its_message() {
    within(20, || {
        // The default (long) timeout: the others must be released by the panic itself.
        let start = std::time::Instant::now();
        let (e, s) = err_text(fogkit::run(4, |bf| -> fogkit::Result<()> {
            if bf.rank() == 2 {
                std::thread::sleep(Duration::from_millis(100));
                panic!("boom on purpose");
            }
            for _ in 0..3 {
                bf.barrier()?;
            }
            Ok(())
        }));
        assert!(matches!(&e, Error::RankPanicked { rank: 2, .. }), "{e:?}");
        assert!(s.contains("rank 2 panicked: boom on purpose"), "{s}");
        assert!(start.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn a_rank_that_returns_early_releases_the_others() {
    within(20, || {
        let (e, s) = err_text(fogkit::run(3, |bf| -> fogkit::Result<()> {
            if bf.rank() == 0 {
                return Ok(());
            }
            bf.allreduce(&[1.0f64])?;
            Ok(())
        }));
        assert!(matches!(e, Error::PeerLost { .. }), "{e:?}");
        assert!(
            s.contains("rank 0 returned from its closure") && s.contains("allreduce"),
            "{s}"
        );
    });
}

#[test]
fn a_user_error_names_its_rank() {
    within(20, || {
        let (e, s) = err_text(fogkit::run(3, |bf| {
            if bf.rank() == 1 {
                Err(Error::other("my data file is missing"))
            } else {
                Ok(())
            }
        }));
        assert!(matches!(e, Error::RankFailed { rank: 1, .. }), "{e:?}");
        assert!(s.contains("rank 1 failed: my data file is missing"), "{s}");
    });
}

#[test]
fn bad_topologies_are_rejected() {
    within(20, || {
        let (e, s) = err_text(fogkit::run_with(quick(), 4, |bf| {
            bf.set_topology(topology::ring(5))
        }));
        assert!(matches!(e, Error::Topology(_)), "{e:?}");
        assert!(
            s.contains("expected a topology of 4 ranks") && s.contains("found one of 5"),
            "{s}"
        );

        let w = Topology::from_weights(vec![vec![0.6, 0.6], vec![0.5, 0.5]]).unwrap();
        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            bf.set_topology(w.clone())
        }));
        assert!(
            s.contains("rank 0") && s.contains("sum to 1, found 1.2"),
            "{s}"
        );

        let split = Topology::from_weights(vec![
            vec![1.0, 0.0, 0.0],
            vec![0.0, 0.5, 0.5],
            vec![0.0, 0.5, 0.5],
        ])
        .unwrap();
        let (_, s) = err_text(fogkit::run_with(quick(), 3, |bf| {
            bf.set_topology(split.clone())
        }));
        assert!(s.contains("connected"), "{s}");
    });
}

#[test]
fn bad_arguments_are_rejected() {
    within(20, || {
        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            bf.pair_gossip(&[1.0f64], bf.rank())
        }));
        assert!(s.contains("peer must be another rank below 2"), "{s}");
        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            bf.broadcast(&[1.0f64], 9)
        }));
        assert!(s.contains("root must be a rank below 2, found 9"), "{s}");
        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            bf.neighbor_allreduce_with(&[1.0f64], &NeighborWeights::new(0.5).src(7, 0.5))
        }));
        assert!(s.contains("src_weights") && s.contains("found 7"), "{s}");
        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            bf.neighbor_allreduce_with(&[1.0f64], &NeighborWeights::new(f64::NAN))
        }));
        assert!(s.contains("self_weight must be finite"), "{s}");
        let (_, s) = err_text(fogkit::run(0, |_| Ok::<_, Error>(())));
        assert!(s.contains("at least 1 rank"), "{s}");
        // A tensor rebuilt from the wrong number of elements.
        let (_, s) = err_text(fogkit::run_with(quick(), 2, |bf| {
            let t = bf.tensor_from(&vec![1.0f32; 1 + bf.rank()])?;
            let mut all = bf.allgather(&t)?;
            Ok::<_, Error>(all.remove(0).as_vec())
        }));
        // Rank 0's tensor has 1 element; rank 1's value (2 elements) cannot take its shape.
        assert!(
            s.contains("expected 1 elements") && s.contains("found 2"),
            "{s}"
        );
    });
}

#[test]
fn after_an_error_every_later_call_fails_fast() {
    within(20, || {
        let (e, _) = err_text(fogkit::run_with(quick(), 2, |bf| -> fogkit::Result<()> {
            let first = if bf.rank() == 0 {
                bf.barrier()
            } else {
                bf.allreduce(&[1.0f64]).map(|_| ())
            };
            assert!(first.is_err());
            // The world is poisoned: these return at once instead of timing out.
            let t = std::time::Instant::now();
            assert!(bf.barrier().is_err());
            assert!(bf.neighbor_allreduce(&[1.0f64]).is_err());
            assert!(t.elapsed() < Duration::from_millis(400));
            first
        }));
        assert!(matches!(e, Error::Mismatch { .. }), "{e:?}");
    });
}

#[test]
fn nonblocking_mismatch_surfaces_on_wait() {
    within(20, || {
        let (e, _) = err_text(fogkit::run_with(quick(), 2, |bf| {
            let x = [bf.rank() as f64];
            let h = if bf.rank() == 0 {
                bf.neighbor_allreduce_nonblocking(&x)?
            } else {
                bf.allreduce_nonblocking(&x, ReduceOp::Sum)?
            };
            h.wait()
        }));
        assert!(matches!(e, Error::Mismatch { .. }), "{e:?}");
    });
}

#[test]
fn a_descriptor_with_an_op_code_the_receiver_does_not_know_is_a_mismatch() {
    use fogkit::ops::Op;
    use fogkit::transport::{descriptor, CallInfo};
    let mut d = descriptor::encode(3, &CallInfo::bare(Op::Barrier), &[], &[], 4);
    assert!(descriptor::decode::<Op>(&d, 4, 2).is_ok());
    d[1] = 999; // the op code's word
    let e = descriptor::decode::<Op>(&d, 4, 2).unwrap_err();
    assert!(matches!(e, Error::Mismatch { call: 3, .. }), "{e:?}");
    assert!(e.to_string().contains("rank 2 called op code 999"), "{e}");
}
