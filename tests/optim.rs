//! Every optimizer rule over every communication it accepts, on in-process ranks, against
//! the dense matrix forms for the first steps (constant step size, and warm-up then cosine
//! down to 0); every refused combination returns its error. `mpirun.rs` checks that the
//! MPI transport gives the same bits.

use fogkit::optim::{Communication, Method, Optimizer};
use fogkit::prelude::*;
use fogkit_tests::forms::{self, cases, reference, refusal, Case, D, N, STEPS};
use fogkit_tests::Outcome;

fn all_cases() -> (Vec<Case>, Vec<Vec<Outcome>>) {
    let per_rank = fogkit::run_with(forms::config(), N, fogkit_tests::optim_cases)
        .unwrap()
        .into_vec()
        .unwrap();
    (cases(), per_rank)
}

#[test]
fn every_rule_over_every_communication_it_accepts_matches_its_matrix_form() {
    let (cases, per_rank) = all_cases();
    let mut ran = 0;
    for (c, case) in cases.iter().enumerate() {
        let got: Vec<&Outcome> = per_rank.iter().map(|r| &r[c]).collect();
        if refusal(case).is_some() {
            continue;
        }
        let want = reference(case);
        for (i, traj) in got.iter().enumerate() {
            let traj = match traj {
                Ok(t) => t,
                Err(e) => panic!("{}: rank {i} refused: {e}", case.label()),
            };
            for k in 0..STEPS {
                for d in 0..D {
                    let (g, e) = (traj[k][d], want[k][i][d]);
                    assert!(g.is_finite(), "{}: step {k}, rank {i}: {g}", case.label());
                    assert!(
                        (g - e).abs() <= 1e-12 * e.abs().max(1.0),
                        "{}: step {k}, rank {i}: {g} vs {e}",
                        case.label()
                    );
                }
            }
        }
        ran += 1;
    }
    // 19 rules and variants; the refused ones are counted in the next test.
    assert!(ran > 300, "only {ran} cases ran");
}

#[test]
fn every_refused_combination_returns_its_error_naming_both() {
    let (cases, per_rank) = all_cases();
    let mut refused = 0;
    for (c, case) in cases.iter().enumerate() {
        let Some(why) = refusal(case) else { continue };
        for (i, r) in per_rank.iter().enumerate() {
            match &r[c] {
                Ok(_) => panic!("{}: rank {i} ran; expected {why:?}", case.label()),
                Err(e) => {
                    assert!(e.contains(why), "{}: {e}", case.label());
                    assert!(e.contains(case.method.name()), "{}: {e}", case.label());
                }
            }
        }
        refused += 1;
    }
    // PmSGD over the 9 neighbour communications (x2 step sizes) and the two with local
    // steps; DecentLaM (with and without Nesterov), D2 and D2-DmSGD over the 4 asymmetric
    // ones (x2);
    // DecentLaM's momentum (with and without Nesterov) over the singular one-peer
    // hypercube (x2).
    assert_eq!(refused, 9 * 2 + 2 + 4 * 4 * 2 + 2 * 2, "refused cases");
    let e = &per_rank[0][cases
        .iter()
        .position(|c| c.method == Method::DecentLam && c.comm_name == "one-peer exp2")
        .unwrap()];
    let e = e.as_ref().unwrap_err();
    assert!(e.contains("one-peer-exp2") && e.contains("step 0"), "{e}");
}

#[test]
fn decentlam_checks_w_whenever_it_changes_not_only_at_its_first_step() {
    let r = fogkit::run(4, |bf: &Fog| -> fogkit::Result<usize> {
        bf.set_topology(topology::ring(4))?;
        let mut opt = Optimizer::new(Method::DecentLam).lr(0.1).momentum(0.5);
        let mut x = vec![0.0f64];
        for k in 0..6 {
            if k == 3 {
                bf.set_topology(topology::exponential_two(4))?;
            }
            let g = vec![x[0] - bf.rank() as f64];
            if let Err(e) = opt.step(bf, &mut x, &g) {
                assert!(e.to_string().contains("needs a symmetric W"), "{e}");
                return Ok(k);
            }
        }
        Ok(99)
    })
    .unwrap();
    assert_eq!(r.into_vec().unwrap(), vec![3; 4]);
}

#[test]
fn nesterov_where_a_method_does_not_define_it_is_an_error_not_ignored() {
    for method in [Method::QgDmSgd, Method::Dsgd, Method::D2, Method::D2DmSgd] {
        let r = fogkit::run(2, move |bf: &Fog| {
            let mut opt = Optimizer::new(method).nesterov(true);
            let mut x = vec![1.0f64];
            opt.step(bf, &mut x, &[0.5])
        });
        let e = r.unwrap_err().to_string();
        assert!(e.contains("Nesterov") && e.contains(method.name()), "{e}");
    }
}

#[test]
fn a_cosine_schedule_down_to_zero_keeps_every_rule_finite() {
    // 40 steps with the step size at 0 from step 20 on: nothing divides by it.
    for method in Method::all() {
        let xs = fogkit::run(4, move |bf: &Fog| -> fogkit::Result<Vec<f64>> {
            bf.set_topology(topology::ring(4))?;
            let comm = method.default_communication();
            let mut opt = Optimizer::new(method)
                .lr(0.1)
                .momentum(0.5)
                .communication(comm)
                .schedule(fogkit::optim::Schedule::Cosine { total: 20 });
            let mut x = vec![0.0f64, 1.0];
            for _ in 0..40 {
                let g: Vec<f64> = x.iter().map(|v| v - bf.rank() as f64).collect();
                opt.step(bf, &mut x, &g)?;
            }
            Ok(x)
        })
        .unwrap();
        for (r, x) in xs.iter() {
            assert!(
                x.iter().all(|v| v.is_finite()),
                "{}: rank {r}: {x:?}",
                method.name()
            );
        }
    }
}

#[test]
fn local_steps_and_gradient_accumulation_do_what_they_say() {
    // Accumulating 2 gradients of 1 and 3 is one step with their mean, 2.
    let x = fogkit::run(2, |bf: &Fog| -> fogkit::Result<(f64, usize)> {
        let mut opt = Optimizer::new(Method::Dsgd)
            .lr(0.5)
            .accumulate(2)
            .communication(Communication::None);
        let mut x = vec![0.0f64];
        opt.step(bf, &mut x, &[1.0])?;
        assert_eq!(x[0], 0.0);
        opt.step(bf, &mut x, &[3.0])?;
        Ok((x[0], opt.steps()))
    })
    .unwrap();
    assert_eq!(x[0], (-1.0, 1));
}

#[test]
fn the_engine_counts_what_each_communication_sends_per_step() {
    use fogkit::optim::Dynamic;
    // 8 ranks, 1000 f64 each: static exp2 sends to 3 neighbours a step, a one-peer schedule
    // to 1 (a third of the bytes), none nothing.
    let per_step = |method: Method, comm: Communication| -> Vec<u64> {
        fogkit::run(8, move |bf: &Fog| -> fogkit::Result<u64> {
            bf.set_topology(topology::exponential_two(8))?;
            let mut opt = Optimizer::new(method).communication(comm.clone());
            let mut x = vec![0.0f64; 1000];
            let g = vec![1.0f64; 1000];
            opt.step(bf, &mut x, &g)?; // the first step sets up; count the next 4
            let before = bf.bytes_sent();
            for _ in 0..4 {
                opt.step(bf, &mut x, &g)?;
            }
            Ok((bf.bytes_sent() - before) / 4)
        })
        .unwrap()
        .into_vec()
        .unwrap()
    };
    let v = 8000;
    assert_eq!(
        per_step(Method::DmSgd, Communication::Static),
        vec![3 * v; 8]
    );
    assert_eq!(
        per_step(
            Method::DmSgd,
            Communication::Dynamic(Dynamic::OnePeerExponential)
        ),
        vec![v; 8]
    );
    assert_eq!(
        per_step(
            Method::DecentLam,
            Communication::Dynamic(Dynamic::LazyOnePeerHypercube)
        ),
        vec![v; 8]
    );
    assert_eq!(per_step(Method::DmSgd, Communication::None), vec![0; 8]);
    // A short vector is averaged in one round: each rank sends it to the 7 others.
    assert_eq!(
        per_step(Method::PmSgd, Communication::Global),
        vec![7 * v; 8]
    );
}

#[test]
fn machine_schedules_on_one_machine_are_refused_by_every_rank_at_once() {
    use fogkit::optim::Dynamic;
    // fogkit::run puts all ranks on one machine: nobody to go outside to.
    let e = fogkit::run(4, |bf: &Fog| {
        let mut opt = Optimizer::new(Method::DmSgd)
            .communication(Communication::Dynamic(Dynamic::InnerOuterRing));
        let mut x = vec![0.0f64];
        opt.step(bf, &mut x, &[1.0])
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("at least 2 machines"), "{e}");
}

#[test]
fn broadcast_optimizer_state_refuses_mismatches_without_hanging_and_syncs_accumulation() {
    use fogkit::optim::broadcast_optimizer_state;
    // Another method on rank 1 (same state shape as DecentLaM's): an error on every rank.
    let r = fogkit::run(2, |bf: &Fog| {
        let method = if bf.rank() == 1 {
            Method::DaDmSgd
        } else {
            Method::DecentLam
        };
        let mut opt = Optimizer::<f64>::new(method);
        broadcast_optimizer_state(bf, &mut opt, &[0.0], 0)
    });
    assert!(r.unwrap_err().to_string().contains("another method"));
    // Rank 1's optimizer cannot start: both ranks return, none waits for it.
    let r = fogkit::run(2, |bf: &Fog| {
        let lr = if bf.rank() == 1 { -1.0 } else { 0.1 };
        let mut opt = Optimizer::<f64>::new(Method::DmSgd).lr(lr);
        broadcast_optimizer_state(bf, &mut opt, &[0.0], 0)
    });
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("lr = -1") || e.contains("could not start"),
        "{e}"
    );
    // Rank 0 has accumulated one gradient of two; after the broadcast both ranks step on
    // the same call (with DmSGD's exchange), and agree.
    let xs = fogkit::run(2, |bf: &Fog| -> fogkit::Result<Vec<f64>> {
        let mut opt = Optimizer::<f64>::new(Method::DmSgd).lr(0.1).accumulate(2);
        let mut x = vec![1.0f64];
        if bf.rank() == 0 {
            opt.step(bf, &mut x, &[5.0])?;
        }
        broadcast_optimizer_state(bf, &mut opt, &x, 0)?;
        opt.step(bf, &mut x, &[1.0])?;
        opt.step(bf, &mut x, &[1.0])?;
        Ok(x)
    })
    .unwrap();
    assert_eq!(opt_steps_agree(&xs), vec![0.9]);
}

fn opt_steps_agree(xs: &fogkit::Ranks<Vec<f64>>) -> Vec<f64> {
    let v: Vec<Vec<f64>> = xs.iter().map(|(_, x)| x.clone()).collect();
    assert!(v.windows(2).all(|w| w[0] == w[1]), "{v:?}");
    v[0].clone()
}

#[test]
fn a_begun_exchange_whose_step_never_came_is_not_used_later() {
    // begin, no step (the batch was skipped on every rank), a step to x = 5, then begin and
    // step: the exchange must carry x = 5, not the stale x = 0.
    let xs = fogkit::run(2, |bf: &Fog| -> fogkit::Result<Vec<f64>> {
        bf.set_topology(topology::fully_connected(2))?;
        let mut opt = Optimizer::<f64>::new(Method::DsgdCta).lr(0.5);
        let mut x = vec![0.0f64];
        opt.begin(bf, &x)?;
        x[0] = 5.0;
        assert!(opt.begin(bf, &x)?);
        opt.step(bf, &mut x, &[0.0])?; // x = W x - 0.5 * 0 = 5
        Ok(x)
    })
    .unwrap();
    assert_eq!(opt_steps_agree(&xs), vec![5.0]);
}

#[test]
fn turning_momentum_off_after_the_first_step_is_an_error_not_ignored() {
    let e = fogkit::run(1, |bf: &Fog| {
        let mut opt = Optimizer::<f64>::new(Method::DmSgd).momentum(0.9);
        let mut x = vec![0.0f64];
        opt.step(bf, &mut x, &[1.0])?;
        let mut opt = opt.momentum(0.0);
        opt.step(bf, &mut x, &[1.0])
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs a new optimizer"), "{e}");
}
