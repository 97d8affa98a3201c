//! Every collective's values on the local transport.

mod common;

use common::{all_generators, value, within};
use fogkit::dfdx::prelude::*;
use fogkit::prelude::*;

const LEN: usize = 3;

#[test]
fn neighbor_allreduce_equals_dense_w_x_for_every_generator() {
    within(120, || {
        for n in 1..=9 {
            for (name, topo) in all_generators(n) {
                let results = fogkit::run(n, |bf| -> fogkit::Result<_> {
                    bf.set_topology(topo.clone())?;
                    let x: Vec<f64> = (0..LEN).map(|k| value(bf.rank(), k)).collect();
                    let y64 = bf.neighbor_allreduce(&x)?;
                    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    let y32 = bf.neighbor_allreduce(&x32)?;
                    Ok((y64, y32))
                })
                .unwrap();
                for k in 0..LEN {
                    let col: Vec<f64> = (0..n).map(|r| value(r, k)).collect();
                    let dense = topo.apply(&col);
                    for r in 0..n {
                        let (y64, y32) = &results[r];
                        let tol = 1e-13 * (1.0 + dense[r].abs());
                        assert!(
                            (y64[k] - dense[r]).abs() <= tol,
                            "{name} n={n} rank {r} comp {k}: {} vs dense {}",
                            y64[k],
                            dense[r]
                        );
                        assert!(
                            (y32[k] as f64 - dense[r]).abs() <= 1e-5 * (1.0 + dense[r].abs()),
                            "{name} n={n} f32"
                        );
                    }
                }
            }
        }
    });
}

/// The fixed order: self term first, then sources by ascending rank, each `w * x_j`.
#[test]
fn neighbor_allreduce_is_bit_exact_in_the_documented_order() {
    within(60, || {
        let n = 7;
        let topo = topology::exponential_two(n);
        let run_once = || {
            fogkit::run(n, |bf| -> fogkit::Result<_> {
                bf.set_topology(topo.clone())?;
                let mut x = vec![value(bf.rank(), 0) as f32, value(bf.rank(), 1) as f32];
                for _ in 0..20 {
                    x = bf.neighbor_allreduce(&x)?;
                }
                Ok(x)
            })
            .unwrap()
        };
        let a = run_once();
        // Reference: the same formula, sequentially.
        let mut x: Vec<Vec<f32>> = (0..n)
            .map(|r| vec![value(r, 0) as f32, value(r, 1) as f32])
            .collect();
        for _ in 0..20 {
            let prev = x.clone();
            for (r, xr) in x.iter_mut().enumerate() {
                let (sw, srcs) = topo.recv_weights(r);
                for (k, v) in xr.iter_mut().enumerate() {
                    let mut acc = sw as f32 * prev[r][k];
                    for &(j, w) in &srcs {
                        acc += w as f32 * prev[j][k];
                    }
                    *v = acc;
                }
            }
        }
        for r in 0..n {
            assert_eq!(
                a[r].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                x[r].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "rank {r}"
            );
        }
        // And every run gives the same bits.
        assert_eq!(a, run_once());
    });
}

#[test]
fn allreduce_sum_avg_min_max() {
    within(60, || {
        for n in 1..=6 {
            let out = fogkit::run(n, |bf| -> fogkit::Result<_> {
                let x = vec![bf.rank() as f64 + 1.0, -(bf.rank() as f64)];
                Ok([
                    bf.allreduce_op(&x, ReduceOp::Sum)?,
                    bf.allreduce(&x)?,
                    bf.allreduce_op(&x, ReduceOp::Min)?,
                    bf.allreduce_op(&x, ReduceOp::Max)?,
                ])
            })
            .unwrap();
            let s = (n * (n + 1) / 2) as f64;
            let s2 = -((n * (n - 1) / 2) as f64);
            for (_, r) in out {
                assert_eq!(r[0], vec![s, s2]);
                assert_eq!(r[1], vec![s / n as f64, s2 / n as f64]);
                assert_eq!(r[2], vec![1.0, -((n - 1) as f64)]);
                assert_eq!(r[3], vec![n as f64, 0.0]);
            }
        }
    });
}

#[test]
fn broadcast_from_every_root() {
    within(60, || {
        let n = 5;
        for root in 0..n {
            let out = fogkit::run(n, |bf| bf.broadcast(&[bf.rank() as f32, 7.0], root))
                .unwrap()
                .into_vec()
                .unwrap();
            assert!(out.iter().all(|v| *v == [root as f32, 7.0]));
        }
    });
}

#[test]
fn allgather_and_neighbor_allgather() {
    within(60, || {
        let n = 6;
        let out = fogkit::run(n, |bf| -> fogkit::Result<_> {
            let x = vec![bf.rank() as f64; bf.rank() % 3 + 1];
            bf.set_topology(topology::exponential_two(bf.size()))?;
            Ok((
                bf.allgather(&x)?,
                bf.neighbor_allgather(&x)?,
                bf.in_neighbor_ranks(),
            ))
        })
        .unwrap();
        for (_, (all, nbrs, ranks)) in out {
            assert_eq!(all.len(), n);
            for (r, v) in all.iter().enumerate() {
                assert_eq!(*v, vec![r as f64; r % 3 + 1]);
            }
            assert_eq!(nbrs.len(), ranks.len());
            for (v, &r) in nbrs.iter().zip(&ranks) {
                assert_eq!(*v, vec![r as f64; r % 3 + 1]);
            }
        }
        // Dynamic: each rank gathers from the rank before it only.
        let out = fogkit::run(4, |bf| {
            let (n, r) = (bf.size(), bf.rank());
            bf.neighbor_allgather_with(&[r as f32], &[(r + n - 1) % n], &[(r + 1) % n])
        })
        .unwrap();
        assert_eq!(
            out,
            vec![vec![[3.0]], vec![[0.0]], vec![[1.0]], vec![[2.0]]]
        );
    });
}

#[test]
fn pair_gossip_pairs() {
    within(60, || {
        let out = fogkit::run(4, |bf| {
            bf.pair_gossip(&vec![bf.rank() as f64 * 4.0], bf.rank() ^ 1)
        })
        .unwrap();
        assert_eq!(out, vec![vec![2.0], vec![2.0], vec![10.0], vec![10.0]]);
        let out = fogkit::run(2, |bf| {
            bf.pair_gossip_with(&[1.0 + bf.rank() as f64], 1 - bf.rank(), 0.75, 0.25)
        })
        .unwrap();
        assert_eq!(out, vec![[1.25], [1.75]]);
    });
}

#[test]
fn dynamic_one_peer_and_push_sum_weights() {
    within(60, || {
        // One-peer exponential graph: exact average after log2(n) rounds.
        for n in [2usize, 4, 8, 16] {
            let out = fogkit::run(n, |bf| -> fogkit::Result<_> {
                let mut x = vec![bf.rank() as f64, (bf.rank() * bf.rank()) as f64];
                for k in 0..n.trailing_zeros() as usize {
                    let p = topology::one_peer_exponential_two(bf.size(), bf.rank(), k);
                    x = bf.neighbor_allreduce_with(&x, &NeighborWeights::from_one_peer(&p))?;
                }
                Ok(x)
            })
            .unwrap();
            let mean0 = (n - 1) as f64 / 2.0;
            let mean1 = (0..n).map(|r| (r * r) as f64).sum::<f64>() / n as f64;
            for (_, x) in out {
                assert_eq!(x[0], mean0);
                assert!((x[1] - mean1).abs() < 1e-12);
            }
        }
        // Push-sum style: keep half, send half (scaled by the sender) to the next rank.
        let n = 5;
        let out = fogkit::run(n, |bf| {
            let (r, n) = (bf.rank(), bf.size());
            let w = NeighborWeights::new(0.5)
                .src((r + n - 1) % n, 1.0)
                .dst_weighted((r + 1) % n, 0.5);
            bf.neighbor_allreduce_with(&[r as f64 + 1.0], &w)
        })
        .unwrap();
        for (r, x) in out.iter() {
            let prev = ((r + n - 1) % n) as f64 + 1.0;
            assert_eq!(x[0], 0.5 * (r as f64 + 1.0) + 1.0 * (0.5 * prev));
        }
        let total: f64 = out.iter().map(|(_, x)| x[0]).sum();
        assert_eq!(total, 15.0);
        // Per-call weights on the static topology's neighbours (no dst given).
        let out = fogkit::run(3, |bf| -> fogkit::Result<_> {
            bf.set_topology(topology::fully_connected(3))?;
            let mut w = NeighborWeights::new(0.0);
            for j in bf.in_neighbor_ranks() {
                w = w.src(j, 0.5);
            }
            bf.neighbor_allreduce_with(&[bf.rank() as f64], &w)
        })
        .unwrap();
        assert_eq!(out, vec![[1.5], [1.0], [0.5]]);
    });
}

#[test]
fn dfdx_tensors_keep_their_shape() {
    within(60, || {
        let out = fogkit::run(4, |bf| -> fogkit::Result<_> {
            bf.set_topology(topology::fully_connected(4))?;
            let r = bf.rank() as f32;
            let t: Tensor<Rank2<2, 3>, f32, Cpu> = bf.device().tensor([[r; 3], [2.0 * r; 3]]);
            let avg = bf.neighbor_allreduce(&t)?;
            let sum = bf.allreduce_op(&t, ReduceOp::Sum)?;
            let all = bf.allgather(&t)?;
            let b = bf.broadcast(&t, 3)?;
            let dynamic: Tensor<(usize, Const<2>), f64, Cpu> = bf
                .device()
                .tensor_from_vec(vec![r as f64; 6], (3, Const::<2>));
            let d = bf.allreduce(&dynamic)?;
            let h = bf.neighbor_allreduce_nonblocking(&t)?;
            let nb = h.wait()?;
            Ok((
                avg.array(),
                sum.array(),
                all[2].array(),
                b.array(),
                d.shape().0,
                d.as_vec(),
                nb.array(),
            ))
        })
        .unwrap();
        for (_, (avg, sum, all2, b, rows, d, nb)) in out {
            assert_eq!(avg, [[1.5; 3], [3.0; 3]]);
            assert_eq!(sum, [[6.0; 3], [12.0; 3]]);
            assert_eq!(all2, [[2.0; 3], [4.0; 3]]);
            assert_eq!(b, [[3.0; 3], [6.0; 3]]);
            assert_eq!((rows, d), (3, vec![1.5; 6]));
            assert_eq!(nb, avg);
        }
        // A 1-D tensor from the handle, as in the design sketch.
        let out = fogkit::run(2, |bf| -> fogkit::Result<_> {
            let x = bf.tensor_from(&[bf.rank() as f64])?;
            Ok(bf.allreduce(&x)?.as_vec())
        })
        .unwrap();
        assert_eq!(out, vec![vec![0.5], vec![0.5]]);
    });
}

#[test]
fn nonblocking_ops_keep_order_and_match_blocking() {
    within(60, || {
        let out = fogkit::run(4, |bf| -> fogkit::Result<_> {
            let x: Vec<f64> = (0..100).map(|k| value(bf.rank(), k)).collect();
            let h1 = bf.neighbor_allreduce_nonblocking(&x)?;
            let h2 = bf.allreduce_nonblocking(&x, ReduceOp::Sum)?;
            let h3 = bf.broadcast_nonblocking(&x, 2)?;
            let me = [bf.rank() as f64];
            let h4 = bf.allgather_nonblocking(&me)?;
            let h5 = bf.pair_gossip_nonblocking(&me, bf.rank() ^ 1)?;
            let blocking = bf.neighbor_allreduce(&x)?;
            while !h5.poll() {
                std::thread::yield_now();
            }
            let r5 = h5.wait()?;
            let r3 = h3.wait()?;
            let r1 = h1.wait()?;
            let r2 = h2.wait()?;
            let r4 = h4.wait()?;
            Ok((
                r1 == blocking,
                r2 == bf.allreduce_op(&x, ReduceOp::Sum)?,
                r3 == bf.broadcast(&x, 2)?,
                r4,
                r5,
            ))
        })
        .unwrap();
        for (r, (a, b, c, d, e)) in out {
            assert!(a && b && c);
            assert_eq!(d, vec![[0.0], [1.0], [2.0], [3.0]]);
            let peer = (r ^ 1) as f64;
            assert_eq!(e, [(r as f64 + peer) / 2.0]);
        }
    });
}

#[test]
fn into_forms_write_callers_buffer() {
    within(60, || {
        let out = fogkit::run(3, |bf| -> fogkit::Result<_> {
            bf.set_topology(topology::fully_connected(3))?;
            let x = [bf.rank() as f64 * 3.0; 4];
            let mut y = [0.0; 4];
            bf.neighbor_allreduce_into(&x, &mut y)?;
            let mut z = [0.0; 4];
            bf.neighbor_allreduce_with_into(&x, &mut z, &NeighborWeights::new(1.0))?;
            let bad = bf.neighbor_allreduce_into(&x, &mut [0.0; 3]);
            Ok((y, z, bad.is_err()))
        })
        .unwrap();
        for (r, (y, z, bad)) in out {
            assert_eq!(y, [3.0; 4]);
            assert_eq!(z, [r as f64 * 3.0; 4]);
            assert!(bad);
        }
    });
}

#[test]
fn handle_basics() {
    within(30, || {
        let out = fogkit::run(1, |bf| -> fogkit::Result<_> {
            assert_eq!((bf.rank(), bf.size(), bf.transport_name()), (0, 1, "local"));
            bf.barrier()?;
            bf.neighbor_allreduce(&[2.0f64])
        })
        .unwrap();
        assert_eq!(out, vec![[2.0]]);
    });
}

/// Large vectors take the reduce-scatter + allgather path; the bits must still be those of
/// a rank-order reduction, for lengths that do not divide evenly.
#[test]
fn large_allreduce_is_the_rank_order_reduction() {
    within(120, || {
        for n in [1usize, 2, 3, 5, 7] {
            let len = 40_000 + n; // above the one-round threshold, not a multiple of n
            let out = fogkit::run(n, |bf| -> fogkit::Result<_> {
                let x: Vec<f32> = (0..len).map(|k| value(bf.rank(), k) as f32).collect();
                Ok((bf.allreduce(&x)?, bf.allreduce_op(&x, ReduceOp::Max)?))
            })
            .unwrap()
            .into_vec()
            .unwrap();
            for k in [0, 1, len / 3, len / 2, len - 2, len - 1] {
                let mut sum = value(0, k) as f32;
                let mut max = sum;
                for r in 1..n {
                    let v = value(r, k) as f32;
                    sum += v;
                    if v > max {
                        max = v;
                    }
                }
                for (avg, mx) in &out {
                    assert_eq!(avg[k].to_bits(), (sum / n as f32).to_bits(), "n={n} k={k}");
                    assert_eq!(mx[k], max);
                }
            }
            assert!(out.iter().all(|o| o == &out[0]));
        }
    });
}

#[test]
fn hierarchical_neighbor_allreduce_matches_its_definition() {
    within(60, || {
        // 8 ranks as 4 machines of 2; machine ring over 4 machines.
        let cfg = Config::default().local_size(2);
        let out = fogkit::run_with(cfg, 8, |bf| -> fogkit::Result<_> {
            assert_eq!((bf.local_size(), bf.machine_size()), (2, 4));
            assert_eq!(bf.machine_rank() * 2 + bf.local_rank(), bf.rank());
            bf.set_machine_topology(topology::ring(4))?;
            let x = vec![value(bf.rank(), 0), value(bf.rank(), 1)];
            bf.hierarchical_neighbor_allreduce(&x)
        })
        .unwrap();
        let ring = topology::ring(4);
        for k in 0..2 {
            let machine_avg: Vec<f64> = (0..4)
                .map(|m| (value(2 * m, k) + value(2 * m + 1, k)) / 2.0)
                .collect();
            let want = ring.apply(&machine_avg);
            for (r, o) in out.iter() {
                assert!(
                    (o[k] - want[r / 2]).abs() < 1e-13,
                    "rank {r}: {} vs {}",
                    o[k],
                    want[r / 2]
                );
            }
        }
        let e = fogkit::run_with(Config::default().local_size(3), 8, |_| Ok::<_, Error>(()));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("must divide the 8 ranks, found 3"));
    });
}
