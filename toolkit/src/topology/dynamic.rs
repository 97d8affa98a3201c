//! Dynamic topologies: which peer each rank talks to at iteration `k`.

use super::Topology;

/// One rank's peers at one iteration of a dynamic schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnePeer {
    /// Ranks this rank sends to.
    pub send_to: Vec<usize>,
    /// Ranks this rank receives from.
    pub recv_from: Vec<usize>,
}

impl OnePeer {
    /// Uniform receive weights for this iteration: `(self_weight, [(src, weight)])` with
    /// every weight `1/(|recv_from| + 1)`, as in BlueFog's dynamic-topology examples.
    pub fn uniform_weights(&self) -> (f64, Vec<(usize, f64)>) {
        let w = 1.0 / (self.recv_from.len() + 1) as f64;
        (w, self.recv_from.iter().map(|&r| (r, w)).collect())
    }
}

/// BlueFog's `GetDynamicOnePeerSendRecvRanks`: from a base topology, each rank sends to
/// one out-neighbour per iteration, cycling clockwise through its out-neighbours (sorted
/// by `(dst - rank) mod n`); it receives from every rank whose turn points at it.
///
/// ```
/// use fogkit::topology::{exponential_two, OnePeerSchedule};
/// let s = OnePeerSchedule::new(&exponential_two(8));
/// // Rank 0 sends to 1, 2, 4, 1, ... and receives from 7, 6, 4, 7, ...
/// assert_eq!(s.at(0, 0).send_to, vec![1]);
/// assert_eq!(s.at(0, 1).recv_from, vec![6]);
/// assert_eq!(s.at(0, 2).send_to, vec![4]);
/// assert_eq!(s.at(0, 3).send_to, vec![1]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnePeerSchedule {
    n: usize,
    /// Out-neighbours of each rank, clockwise.
    sorted_out: Vec<Vec<usize>>,
}

impl OnePeerSchedule {
    /// The schedule over `topo`'s out-neighbours.
    pub fn new(topo: &Topology) -> Self {
        let n = topo.size();
        let sorted_out = (0..n)
            .map(|r| {
                let mut out = topo.out_neighbors(r);
                out.sort_by_key(|&d| (d + n - r) % n);
                out
            })
            .collect();
        OnePeerSchedule { n, sorted_out }
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.n
    }

    fn target(&self, rank: usize, k: usize) -> Option<usize> {
        let out = &self.sorted_out[rank];
        (!out.is_empty()).then(|| out[k % out.len()])
    }

    /// Peers of `rank` at iteration `k`.
    pub fn at(&self, rank: usize, k: usize) -> OnePeer {
        OnePeer {
            send_to: self.target(rank, k).into_iter().collect(),
            recv_from: (0..self.n)
                .filter(|&o| o != rank && self.target(o, k) == Some(rank))
                .collect(),
        }
    }
}

/// The one-peer exponential graph (Ying et al., NeurIPS 2021): at iteration `k`, rank `i`
/// sends to `i + 2^(k mod tau)` and receives from `i - 2^(k mod tau)` (mod `n`), where
/// `tau = ceil(log2 n)`. With weights 1/2 and `n` a power of two, `tau` iterations give
/// the exact average.
///
/// ```
/// let p = fogkit::topology::one_peer_exponential_two(8, 3, 1);
/// assert_eq!((p.send_to, p.recv_from), (vec![5], vec![1]));
/// ```
pub fn one_peer_exponential_two(n: usize, rank: usize, k: usize) -> OnePeer {
    if n <= 1 {
        return OnePeer {
            send_to: vec![],
            recv_from: vec![],
        };
    }
    let tau = (usize::BITS - (n - 1).leading_zeros()) as usize; // ceil(log2 n)
    let d = 1usize << (k % tau);
    OnePeer {
        send_to: vec![(rank + d) % n],
        recv_from: vec![(rank + n - d % n) % n],
    }
}

/// The one-peer hypercube (Shi et al.; Ying et al., NeurIPS 2021): at iteration `k`, rank
/// `i` exchanges with `i XOR 2^(k mod tau)`, `tau = log2 n`. Each step's `W` (weights 1/2)
/// is symmetric and doubly stochastic, and `tau` steps give the exact average: the
/// symmetric form of the one-peer exponential graph, for methods that need a symmetric
/// `W` (DecentLaM, D^2). Needs `n` a power of two; `None` otherwise.
///
/// ```
/// let p = fogkit::topology::one_peer_hypercube(8, 3, 1).unwrap();
/// assert_eq!((p.send_to, p.recv_from), (vec![1], vec![1]));
/// assert!(fogkit::topology::one_peer_hypercube(6, 0, 0).is_none());
/// ```
pub fn one_peer_hypercube(n: usize, rank: usize, k: usize) -> Option<OnePeer> {
    if n == 0 || !n.is_power_of_two() || rank >= n {
        return None;
    }
    if n == 1 {
        return Some(OnePeer {
            send_to: vec![],
            recv_from: vec![],
        });
    }
    let tau = n.trailing_zeros() as usize;
    let peer = rank ^ (1 << (k % tau));
    Some(OnePeer {
        send_to: vec![peer],
        recv_from: vec![peer],
    })
}
