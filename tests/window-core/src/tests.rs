//! Threads standing in for ranks: each moves units of mass between regions with
//! read-modify-write accesses; the totals are checked exactly, so a lost update or a torn
//! region fails the test, and Miri fails it on any data race or bad pointer.

use std::time::Duration;

use crate::local_window::Windows;
use crate::seam::Region;
use crate::shared_window::{segment_bytes, Segments, LOCK_BYTES};

/// Ranks (threads) and moves per rank: small, Miri runs every instruction.
const N: usize = 3;
const MOVES: usize = if cfg!(miri) { 12 } else { 2000 };

fn read(r: &mut dyn Region, at: usize) -> f64 {
    let mut b = [0u8; 8];
    r.read(at * 8, &mut b).expect("inside the region");
    f64::from_le_bytes(b)
}

fn write(r: &mut dyn Region, at: usize, v: f64) {
    r.write(at * 8, &v.to_le_bytes())
        .expect("inside the region");
}

/// Runs a closure on one rank's region, as a transport's access does.
type Access<'a> = dyn Fn(usize, &mut dyn FnMut(&mut dyn Region)) + Sync + 'a;

/// One rank's moves: take a unit from its own region's word 0, add it to word 1 + me of
/// `target(k)` (through `direct` every other time, as ops combines in place).
fn moves(me: usize, access: &Access<'_>) {
    for k in 0..MOVES {
        access(me, &mut |r| {
            let v = read(r, 0);
            write(r, 0, v - 1.0);
        });
        let target = (me + 1 + k % (N - 1)) % N;
        access(target, &mut |r| {
            if k % 2 == 0 {
                let d = r.direct().expect("in-memory regions are direct");
                let w = &mut d[(1 + me) * 8..(2 + me) * 8];
                let v = f64::from_le_bytes(w.try_into().expect("8 bytes")) + 1.0;
                w.copy_from_slice(&v.to_le_bytes());
            } else {
                let v = read(r, 1 + me);
                write(r, 1 + me, v + 1.0);
            }
        });
    }
}

/// Every rank moves its units at once, one thread each; then the totals are checked.
fn move_concurrently_and_check(access: &Access<'_>) {
    std::thread::scope(|s| {
        for me in 0..N {
            s.spawn(move || moves(me, access));
        }
    });
    check_totals(|r, at| {
        let mut v = 0.0;
        access(r, &mut |reg| v = read(reg, at));
        v
    });
}

/// Every rank gave MOVES units, and each received what its senders sent.
fn check_totals(value: impl Fn(usize, usize) -> f64) {
    let mut total = 0.0;
    for r in 0..N {
        assert_eq!(value(r, 0), -(MOVES as f64), "rank {r} gave every unit");
        for s in 0..N {
            total += value(r, 1 + s);
        }
        total += value(r, 0);
    }
    assert_eq!(total, 0.0, "mass was created or lost");
    // Rank s sends to (s + 1 + k % (N - 1)) % N: half its moves to each other rank.
    for r in 0..N {
        for s in (0..N).filter(|&s| s != r) {
            assert_eq!(value(r, 1 + s), (MOVES / 2) as f64, "from {s} into {r}");
        }
    }
}

#[test]
fn local_regions_keep_every_unit_under_concurrent_moves() {
    let wins = Windows::default();
    let bytes = (1 + N) * 8;
    std::thread::scope(|s| {
        for me in 0..N {
            let wins = &wins;
            s.spawn(move || {
                wins.open(N, 7, me, bytes).expect("open");
            });
        }
    });
    let access = |target: usize, f: &mut dyn FnMut(&mut dyn Region)| {
        wins.access(N, 7, target, &mut |r| {
            f(r);
            Ok(())
        })
        .expect("access");
    };
    move_concurrently_and_check(&access);
    std::thread::scope(|s| {
        for me in 0..N {
            let wins = &wins;
            s.spawn(move || wins.close(7, me).expect("close"));
        }
    });
    let gone = wins
        .access(N, 7, 0, &mut |_| Ok(()))
        .err()
        .map(|e| e.to_string());
    assert!(
        gone.as_deref()
            .is_some_and(|e| e.contains("closed or never created")),
        "{gone:?}"
    );
}

#[test]
fn local_regions_refuse_accesses_outside() {
    let wins = Windows::default();
    wins.open(1, 1, 0, 16).expect("open");
    let e = wins
        .access(1, 1, 0, &mut |r| r.read(9, &mut [0u8; 8]))
        .err();
    assert!(e.is_some_and(|e| e.to_string().contains("expected to lie inside")));
    let e = wins.access(1, 1, 3, &mut |_| Ok(())).err();
    assert!(e.is_some_and(|e| e.to_string().contains("a rank below 1, found 3")));
    assert!(wins.open(1, 1, 0, 16).is_err(), "opened twice");
}

#[test]
fn shared_segments_keep_every_unit_under_concurrent_moves() {
    // One allocation standing in for the memory the processes map, segments one after
    // another as MPI_Win_allocate_shared places them.
    let region = (1 + N) * 8;
    let seg = segment_bytes(region);
    assert_eq!(seg % LOCK_BYTES, 0);
    let mut memory = vec![0u64; N * seg / 8];
    let start = memory.as_mut_ptr() as *mut u8;
    // SAFETY: every segment lies inside `memory`, which outlives the threads below.
    let segments = Segments {
        bases: (0..N).map(|r| unsafe { start.add(r * seg) }).collect(),
    };
    let patience = Duration::from_secs(60);
    let access = |target: usize, f: &mut dyn FnMut(&mut dyn Region)| {
        segments
            .access(0, target, region, patience, String::new, &mut |r| {
                f(r);
                Ok(())
            })
            .expect("access");
    };
    move_concurrently_and_check(&access);
    // Every lock word is free again.
    for r in 0..N {
        assert_eq!(memory[r * seg / 8], 0, "rank {r}'s lock word");
    }
}
