//! Topologies: weighted directed graphs over ranks, as pure math. This module never
//! communicates, spawns or reads files.
//!
//! A [`Topology`] of `n` ranks is the combination matrix `W` of the talk:
//! `x_i <- sum_j w_ij x_j`. Row `i` holds the weights rank `i` *receives* with (its
//! in-neighbours and its self-weight `w_ii`); column `j` holds what rank `j` *sends*.
//! Generators mirror BlueFog's `topology_util` (e.g. `ExponentialTwoGraph` is
//! [`exponential_two`]), with the same weights.
//!
//! ```
//! use fogkit::topology;
//! let w = topology::ring(5);
//! assert_eq!(w.in_neighbors(0), vec![1, 4]);
//! assert!(w.is_doubly_stochastic(1e-12) && w.is_symmetric(0.0));
//! // rho = ||W - 11^T/n||_2, the mixing rate; 1 - rho is the spectral gap.
//! // For a ring it is max_k |1/3 + 2/3 cos(2 pi k / n)|, here at k = 1.
//! let rho = w.mixing_rate();
//! let k1 = 1.0 / 3.0 + 2.0 / 3.0 * (2.0 * std::f64::consts::PI / 5.0).cos();
//! assert!((rho - k1).abs() < 1e-12);
//! ```

mod dynamic;
mod generators;
mod inner_outer;
#[cfg(feature = "serde")]
mod wire;

pub use dynamic::{one_peer_exponential_two, one_peer_hypercube, OnePeer, OnePeerSchedule};
pub use generators::{
    exponential, exponential_two, fully_connected, mesh_grid_2d, mesh_grid_2d_shape, ring,
    ring_directed, star, star_with_center, symmetric_exponential, symmetric_exponential_with_base,
    RingStyle,
};
pub use inner_outer::{inner_outer_exp2, inner_outer_ring};

use std::fmt;

use crate::{Error, Result};

/// How to weight a graph given only by its edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// Receive weights: each rank averages itself and its in-neighbours equally,
    /// `w_ij = 1/(|N_in(i)| + 1)`. Row-stochastic.
    UniformRecv,
    /// Send weights: each rank splits what it sends equally over itself and its
    /// out-neighbours, `w_ij = 1/(|N_out(j)| + 1)`. Column-stochastic (push-sum).
    UniformSend,
    /// Metropolis-Hastings for undirected graphs: `w_ij = 1/(1 + max(d_i, d_j))` for each
    /// edge, `w_ii = 1 - sum_j w_ij`. Symmetric and doubly stochastic.
    MetropolisHastings,
}

/// A weighted directed graph over `n` ranks with self-loops: the combination matrix `W`.
///
/// With the `serde` feature it serializes as `{"n": N, "w": [...]}` (row-major), and
/// deserializing checks what [`Topology::from_weights`] checks.
#[derive(Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(::serde::Serialize, ::serde::Deserialize),
    serde(try_from = "wire::Weights", into = "wire::Weights")
)]
pub struct Topology {
    n: usize,
    /// Row-major `n x n`; `w[i * n + j]` is the weight rank `i` gives to rank `j`'s value.
    w: Vec<f64>,
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Topology({} ranks) W =", self.n)?;
        for i in 0..self.n {
            let row: Vec<String> = self.row(i).iter().map(|v| format!("{v:.4}")).collect();
            writeln!(f, "  [{}]", row.join(", "))?;
        }
        Ok(())
    }
}

impl Topology {
    /// Builds a topology from a row-major `n x n` weight matrix, `w[i][j]` being the weight
    /// rank `i` receives rank `j`'s value with.
    ///
    /// ```
    /// let t = fogkit::topology::Topology::from_weights(vec![vec![0.5, 0.5], vec![0.5, 0.5]]).unwrap();
    /// assert_eq!(t.weight(0, 1), 0.5);
    /// assert!(fogkit::topology::Topology::from_weights(vec![vec![1.0, 0.0]]).is_err());
    /// ```
    pub fn from_weights(rows: Vec<Vec<f64>>) -> Result<Self> {
        let n = rows.len();
        let mut w = Vec::with_capacity(n * n);
        for (i, row) in rows.into_iter().enumerate() {
            if row.len() != n {
                return Err(Error::Topology(format!(
                    "weight matrix must be square: expected {n} entries in row {i}, found {}",
                    row.len()
                )));
            }
            if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                return Err(Error::Topology(format!(
                    "weight w[{i}][{j}] must be finite, found {}",
                    row[j]
                )));
            }
            w.extend(row);
        }
        Ok(Topology { n, w })
    }

    /// Builds a topology from an adjacency matrix (`adj[i][j]` true when rank `i` receives
    /// from rank `j`; the diagonal is ignored, self-loops are always present), weighted
    /// by `weighting`.
    ///
    /// ```
    /// use fogkit::topology::{Topology, Weighting};
    /// // A path 0 - 1 - 2.
    /// let adj = vec![vec![false, true, false], vec![true, false, true], vec![false, true, false]];
    /// let t = Topology::from_adjacency(&adj, Weighting::MetropolisHastings).unwrap();
    /// assert_eq!(t.weight(0, 1), 1.0 / 3.0);
    /// assert!((t.weight(0, 0) - 2.0 / 3.0).abs() < 1e-15);
    /// assert!(t.is_doubly_stochastic(1e-12));
    /// ```
    pub fn from_adjacency(adj: &[Vec<bool>], weighting: Weighting) -> Result<Self> {
        let n = adj.len();
        for (i, row) in adj.iter().enumerate() {
            if row.len() != n {
                return Err(Error::Topology(format!(
                    "adjacency matrix must be square: expected {n} entries in row {i}, found {}",
                    row.len()
                )));
            }
        }
        let edge = |i: usize, j: usize| i != j && adj[i][j];
        let in_deg: Vec<usize> = (0..n)
            .map(|i| (0..n).filter(|&j| edge(i, j)).count())
            .collect();
        let out_deg: Vec<usize> = (0..n)
            .map(|j| (0..n).filter(|&i| edge(i, j)).count())
            .collect();
        let mut w = vec![0.0; n * n];
        match weighting {
            Weighting::UniformRecv => {
                for i in 0..n {
                    let v = 1.0 / (in_deg[i] + 1) as f64;
                    w[i * n + i] = v;
                    for j in (0..n).filter(|&j| edge(i, j)) {
                        w[i * n + j] = v;
                    }
                }
            }
            Weighting::UniformSend => {
                for j in 0..n {
                    let v = 1.0 / (out_deg[j] + 1) as f64;
                    w[j * n + j] = v;
                    for i in (0..n).filter(|&i| edge(i, j)) {
                        w[i * n + j] = v;
                    }
                }
            }
            Weighting::MetropolisHastings => {
                if let Some((i, j)) = (0..n)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .find(|&(i, j)| adj[i][j] != adj[j][i] && i != j)
                {
                    return Err(Error::Topology(format!(
                        "Metropolis-Hastings weights need an undirected graph: expected \
                         adj[{j}][{i}] == adj[{i}][{j}], found {} and {}",
                        adj[j][i], adj[i][j]
                    )));
                }
                for i in 0..n {
                    let mut sum = 0.0;
                    for j in (0..n).filter(|&j| edge(i, j)) {
                        let v = 1.0 / (1 + in_deg[i].max(in_deg[j])) as f64;
                        w[i * n + j] = v;
                        sum += v;
                    }
                    w[i * n + i] = 1.0 - sum;
                }
            }
        }
        Ok(Topology { n, w })
    }

    /// Circulant topology: rank `i` receives from rank `(i - d) mod n` with weight `c[d]`,
    /// i.e. `w[i][(i - d) mod n] = c[d]` (rank `i` sends to `i + d`).
    pub(crate) fn circulant_recv(c: &[f64]) -> Self {
        let n = c.len();
        let mut w = vec![0.0; n * n];
        for i in 0..n {
            for (d, &v) in c.iter().enumerate() {
                w[i * n + (i + n - d) % n] = v;
            }
        }
        Topology { n, w }
    }

    pub(crate) fn from_raw(n: usize, w: Vec<f64>) -> Self {
        debug_assert_eq!(w.len(), n * n);
        Topology { n, w }
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.n
    }

    /// `w_ij`: the weight rank `i` gives to rank `j`'s value.
    pub fn weight(&self, i: usize, j: usize) -> f64 {
        self.w[i * self.n + j]
    }

    /// Row `i` of `W` (rank `i`'s receive weights, self included).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.w[i * self.n..(i + 1) * self.n]
    }

    /// `W` as nested rows.
    pub fn matrix(&self) -> Vec<Vec<f64>> {
        (0..self.n).map(|i| self.row(i).to_vec()).collect()
    }

    /// Ranks that `rank` receives from (`w_rank,j != 0`, `j != rank`), ascending.
    pub fn in_neighbors(&self, rank: usize) -> Vec<usize> {
        (0..self.n)
            .filter(|&j| j != rank && self.weight(rank, j) != 0.0)
            .collect()
    }

    /// Ranks that `rank` sends to (`w_i,rank != 0`, `i != rank`), ascending.
    pub fn out_neighbors(&self, rank: usize) -> Vec<usize> {
        (0..self.n)
            .filter(|&i| i != rank && self.weight(i, rank) != 0.0)
            .collect()
    }

    /// BlueFog's `GetRecvWeights`: (self weight, [(in-neighbour, weight)]).
    pub fn recv_weights(&self, rank: usize) -> (f64, Vec<(usize, f64)>) {
        let nbrs = self
            .in_neighbors(rank)
            .into_iter()
            .map(|j| (j, self.weight(rank, j)))
            .collect();
        (self.weight(rank, rank), nbrs)
    }

    /// BlueFog's `GetSendWeights`: (self weight, [(out-neighbour, weight)]).
    pub fn send_weights(&self, rank: usize) -> (f64, Vec<(usize, f64)>) {
        let nbrs = self
            .out_neighbors(rank)
            .into_iter()
            .map(|i| (i, self.weight(i, rank)))
            .collect();
        (self.weight(rank, rank), nbrs)
    }

    /// Every row sums to one (within `tol`): averaging keeps a consensus fixed.
    pub fn is_row_stochastic(&self, tol: f64) -> bool {
        (0..self.n).all(|i| (self.row(i).iter().sum::<f64>() - 1.0).abs() <= tol)
    }

    /// Every column sums to one (within `tol`): averaging keeps the sum fixed (push-sum).
    pub fn is_column_stochastic(&self, tol: f64) -> bool {
        (0..self.n)
            .all(|j| ((0..self.n).map(|i| self.weight(i, j)).sum::<f64>() - 1.0).abs() <= tol)
    }

    /// Row and column stochastic: averaging keeps the global mean.
    pub fn is_doubly_stochastic(&self, tol: f64) -> bool {
        self.is_row_stochastic(tol) && self.is_column_stochastic(tol)
    }

    /// `|w_ij - w_ji| <= tol` for all pairs.
    pub fn is_symmetric(&self, tol: f64) -> bool {
        (0..self.n).all(|i| (0..i).all(|j| (self.weight(i, j) - self.weight(j, i)).abs() <= tol))
    }

    /// Every rank reaches every other along edges (`j -> i` when `w_ij != 0`).
    pub fn is_connected(&self) -> bool {
        self.unreachable().is_none()
    }

    /// Symmetric with all eigenvalues above `1e-12` (DecentLaM's assumption A.3).
    pub fn is_positive_definite(&self) -> bool {
        self.is_symmetric(1e-12)
            && crate::linalg::symmetric_eigenvalues(&self.w, self.n)
                .iter()
                .all(|&l| l > 1e-12)
    }

    /// Eigenvalues of a symmetric `W`, ascending; `None` when `W` is not symmetric.
    pub fn eigenvalues(&self) -> Option<Vec<f64>> {
        self.is_symmetric(1e-12)
            .then(|| crate::linalg::symmetric_eigenvalues(&self.w, self.n))
    }

    /// The mixing rate `rho = ||W - 11^T/n||_2` (largest singular value). Consensus error
    /// shrinks at least like `rho^k`; `1 - rho` is the spectral gap.
    pub fn mixing_rate(&self) -> f64 {
        let n = self.n;
        if n == 0 {
            return 0.0;
        }
        let inv = 1.0 / n as f64;
        let m: Vec<f64> = self.w.iter().map(|v| v - inv).collect();
        // M^T M is symmetric positive semi-definite; its largest eigenvalue is rho^2.
        let mut mtm = vec![0.0; n * n];
        for a in 0..n {
            for b in a..n {
                let s: f64 = (0..n).map(|k| m[k * n + a] * m[k * n + b]).sum();
                mtm[a * n + b] = s;
                mtm[b * n + a] = s;
            }
        }
        let top = crate::linalg::symmetric_eigenvalues(&mtm, n)
            .last()
            .copied()
            .unwrap_or(0.0);
        top.max(0.0).sqrt()
    }

    /// `1 - rho`.
    pub fn spectral_gap(&self) -> f64 {
        1.0 - self.mixing_rate()
    }

    /// Iterations of `x <- W x` after which `rho^k <= eps`: the number the mixing rate
    /// promises for shrinking the consensus error by `eps`. `None` when `rho >= 1`.
    pub fn iterations_to(&self, eps: f64) -> Option<usize> {
        let rho = self.mixing_rate();
        if rho >= 1.0 {
            None
        } else if rho <= 0.0 {
            Some(1)
        } else {
            Some((eps.ln() / rho.ln()).ceil().max(1.0) as usize)
        }
    }

    /// A stable 64-bit fingerprint of the weights (FNV-1a over the bits), used to check
    /// that all ranks set the same topology.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |x: u64| {
            for b in x.to_le_bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(self.n as u64);
        for v in &self.w {
            eat(v.to_bits());
        }
        h
    }

    /// Checks that this topology can drive `neighbor_allreduce` on `ranks` ranks: the size
    /// matches, every rank's receive weights sum to one, and the graph is connected.
    pub fn validate_for(&self, ranks: usize) -> Result<()> {
        if self.n != ranks {
            return Err(Error::Topology(format!(
                "expected a topology of {ranks} ranks (the number running), found one of {}",
                self.n
            )));
        }
        for i in 0..self.n {
            let s: f64 = self.row(i).iter().sum();
            if (s - 1.0).abs() > 1e-9 {
                return Err(Error::Topology(format!(
                    "expected the receive weights of rank {i} (row {i} of W) to sum to 1, found {s}"
                )));
            }
        }
        if let Some((from, to)) = self.unreachable() {
            return Err(Error::Topology(format!(
                "expected a connected graph, found that rank {to} can never receive from rank {from}"
            )));
        }
        Ok(())
    }

    /// A pair `(from, to)` such that information from `from` never reaches `to`.
    fn unreachable(&self) -> Option<(usize, usize)> {
        if self.n == 0 {
            return None;
        }
        // Forward from 0 along j -> i, then backward.
        let reach = |forward: bool| {
            let mut seen = vec![false; self.n];
            let mut stack = vec![0usize];
            seen[0] = true;
            while let Some(u) = stack.pop() {
                for (v, s) in seen.iter_mut().enumerate() {
                    let w = if forward {
                        self.weight(v, u)
                    } else {
                        self.weight(u, v)
                    };
                    if !*s && w != 0.0 {
                        *s = true;
                        stack.push(v);
                    }
                }
            }
            seen
        };
        if let Some(to) = reach(true).iter().position(|s| !s) {
            return Some((0, to));
        }
        reach(false).iter().position(|s| !s).map(|from| (from, 0))
    }

    /// `W x` computed densely (row by row, in index order): the reference that
    /// `neighbor_allreduce` must match.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        (0..self.n)
            .map(|i| self.row(i).iter().zip(x).map(|(w, v)| w * v).sum())
            .collect()
    }

    /// `(I + W) / 2`: the lazy version, positive (semi-)definite when `W` is symmetric and
    /// doubly stochastic, as DecentLaM requires.
    pub fn lazy(&self) -> Topology {
        let n = self.n;
        let mut w: Vec<f64> = self.w.iter().map(|v| v * 0.5).collect();
        for i in 0..n {
            w[i * n + i] += 0.5;
        }
        Topology { n, w }
    }
}
