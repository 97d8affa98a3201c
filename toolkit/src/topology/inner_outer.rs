//! BlueFog's machine-aware one-peer schedules (`GetInnerOuterRingDynamicSendRecvRanks`
//! and `GetInnerOuterExp2DynamicSendRecvRanks`): at each iteration one local rank of
//! every machine talks to the same local rank of another machine, and the other local
//! ranks talk inside their machine. Pure functions of `(size, local_size, rank, k)`.

use super::OnePeer;

/// The machine layout the schedules need: at least two machines of `local` ranks each,
/// more than two (on one machine the rank that goes outside would send to itself).
fn layout(n: usize, local: usize, rank: usize) -> Option<(usize, usize, usize)> {
    (local > 2 && n % local == 0 && n / local >= 2 && rank < n)
        .then(|| (n / local, rank / local, rank % local))
}

fn one(send: usize, recv: usize) -> OnePeer {
    OnePeer {
        send_to: vec![send],
        recv_from: vec![recv],
    }
}

/// Inner ring, outer ring: at iteration `k`, local rank `k mod local` of each machine sends
/// to the same local rank of the next machine (and receives from the previous one); the
/// others send to the next local rank of their machine, skipping the one that went outside.
/// `None` unless `local > 2` divides `n` into at least two machines.
///
/// ```
/// use fogkit::topology::inner_outer_ring;
/// // 2 machines of 3: at k = 0 local rank 0 crosses; ranks 1 and 2 swap within machine 0.
/// let p = inner_outer_ring(6, 3, 0, 0).unwrap();
/// assert_eq!((p.send_to, p.recv_from), (vec![3], vec![3]));
/// let p = inner_outer_ring(6, 3, 1, 0).unwrap();
/// assert_eq!((p.send_to, p.recv_from), (vec![2], vec![2]));
/// ```
pub fn inner_outer_ring(n: usize, local: usize, rank: usize, k: usize) -> Option<OnePeer> {
    let (machines, m, l) = layout(n, local, rank)?;
    let outside = k % local;
    if l == outside {
        let next = (m + 1) % machines;
        let prev = (m + machines - 1) % machines;
        return Some(one(next * local + l, prev * local + l));
    }
    let mut to = (l + 1) % local;
    if to == outside {
        to = (to + 1) % local;
    }
    let mut from = (l + local - 1) % local;
    if from == outside {
        from = (from + local - 1) % local;
    }
    Some(one(m * local + to, m * local + from))
}

/// `floor(log2 x)` for `x >= 1`.
fn log2_floor(x: usize) -> usize {
    (usize::BITS - 1 - x.max(1).leading_zeros()) as usize
}

/// Inner exponential-two, outer exponential-two: as [`inner_outer_ring`], but the rank that
/// goes outside jumps `2^j` machines and the inner ranks jump `2^j` local ranks (skipping
/// the outgoing one), `j` cycling with `k`. `None` unless `local > 2` divides `n` into at
/// least two machines.
///
/// ```
/// use fogkit::topology::inner_outer_exp2;
/// // 4 machines of 4: at k = 1 local rank 1 of machine 0 goes to machine 2.
/// let p = inner_outer_exp2(16, 4, 1, 1).unwrap();
/// assert_eq!((p.send_to, p.recv_from), (vec![9], vec![9]));
/// ```
pub fn inner_outer_exp2(n: usize, local: usize, rank: usize, k: usize) -> Option<OnePeer> {
    let (machines, m, l) = layout(n, local, rank)?;
    let outside = k % local;
    if l == outside {
        let out_len = if machines > 1 {
            log2_floor(machines - 1)
        } else {
            0
        };
        let d = (1usize << (k % (out_len + 1))) % machines.max(1);
        let next = (m + d) % machines;
        let prev = (m + machines - d) % machines;
        return Some(one(next * local + l, prev * local + l));
    }
    let in_len = log2_floor(local - 2);
    let jump = 1usize << (k % (in_len + 1));
    let mut fwd = jump;
    if fwd >= (outside + local - l) % local {
        fwd += 1;
    }
    let mut back = jump;
    if back >= (l + local - outside) % local {
        back += 1;
    }
    Some(one(
        m * local + (l + fwd) % local,
        m * local + (l + local - back % local) % local,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rank's receive list is exactly the ranks whose send points at it.
    fn consistent(n: usize, f: impl Fn(usize, usize) -> OnePeer) {
        for k in 0..12 {
            let all: Vec<OnePeer> = (0..n).map(|r| f(r, k)).collect();
            for r in 0..n {
                let senders: Vec<usize> = (0..n).filter(|&o| all[o].send_to.contains(&r)).collect();
                assert_eq!(all[r].recv_from, senders, "rank {r} at k {k}");
                assert!(!all[r].send_to.contains(&r));
            }
        }
    }

    #[test]
    fn inner_outer_schedules_are_consistent() {
        for (n, local) in [(6, 3), (12, 3), (8, 4), (16, 4), (12, 4), (20, 5)] {
            consistent(n, |r, k| inner_outer_ring(n, local, r, k).unwrap());
            consistent(n, |r, k| inner_outer_exp2(n, local, r, k).unwrap());
        }
        assert!(inner_outer_ring(8, 2, 0, 0).is_none());
        // One machine: nobody to go outside to.
        assert!(inner_outer_ring(4, 4, 0, 0).is_none());
        assert!(inner_outer_exp2(8, 8, 0, 0).is_none());
        assert!(inner_outer_exp2(10, 4, 0, 0).is_none());
    }
}
