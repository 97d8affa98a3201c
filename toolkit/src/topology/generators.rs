//! BlueFog's graph generators, with BlueFog's weights. Matrices are shown as `W`
//! (row `i` = what rank `i` receives with).

use super::Topology;
use crate::{Error, Result};

fn is_power_of(mut x: usize, base: usize) -> bool {
    // x = base^k for some k >= 0.
    if x == 0 {
        return false;
    }
    while x % base == 0 {
        x /= base;
    }
    x == 1
}

fn circulant_from_mask(mask: impl Iterator<Item = bool>) -> Topology {
    let mask: Vec<bool> = mask.collect();
    let k = mask.iter().filter(|m| **m).count() as f64;
    let c: Vec<f64> = mask
        .iter()
        .map(|&m| if m { 1.0 / k } else { 0.0 })
        .collect();
    Topology::circulant_recv(&c)
}

/// Exponential graph with base 2 (BlueFog's `ExponentialTwoGraph`): rank `i` sends to
/// `i + 2^k mod n` for every `2^k < n`, and averages itself with what it receives, uniformly.
///
/// For `n = 4`, rank `i` receives from `i - 1` and `i - 2`:
/// ```
/// let w = fogkit::topology::exponential_two(4);
/// let t = 1.0 / 3.0;
/// assert_eq!(w.matrix(), vec![
///     vec![t, 0.0, t, t],
///     vec![t, t, 0.0, t],
///     vec![t, t, t, 0.0],
///     vec![0.0, t, t, t],
/// ]);
/// ```
pub fn exponential_two(n: usize) -> Topology {
    circulant_from_mask((0..n).map(|d| d == 0 || d.is_power_of_two()))
}

/// Exponential graph with any base >= 2 (BlueFog's `ExponentialGraph`): rank `i` sends to
/// `i + base^k mod n` for every `base^k < n`, uniform weights.
///
/// ```
/// let w = fogkit::topology::exponential(10, 3).unwrap();
/// assert_eq!(w.in_neighbors(0), vec![1, 7, 9]); // 0 - 9, 0 - 3, 0 - 1 (mod 10)
/// assert!(fogkit::topology::exponential(10, 1).is_err());
/// ```
pub fn exponential(n: usize, base: usize) -> Result<Topology> {
    if base < 2 {
        return Err(Error::InvalidArgument(format!(
            "exponential graph base must be at least 2, found {base}"
        )));
    }
    Ok(circulant_from_mask(
        (0..n).map(|d| d == 0 || is_power_of(d, base)),
    ))
}

/// Symmetric exponential graph with base 4 (BlueFog's `SymmetricExponentialGraph` default):
/// rank `i` links with `i +- 4^k`, uniform weights.
///
/// For `n = 8`, rank 0 averages itself with ranks 1, 4 and 7, each 1/4.
/// ```
/// let w = fogkit::topology::symmetric_exponential(8);
/// assert_eq!(w.row(0), &[0.25, 0.25, 0.0, 0.0, 0.25, 0.0, 0.0, 0.25]);
/// assert!(w.is_symmetric(0.0));
/// ```
pub fn symmetric_exponential(n: usize) -> Topology {
    symmetric_exponential_mask(n, 4)
}

/// Symmetric exponential graph with any base >= 2: rank `i` links with `i +- base^k`.
pub fn symmetric_exponential_with_base(n: usize, base: usize) -> Result<Topology> {
    if base < 2 {
        return Err(Error::InvalidArgument(format!(
            "symmetric exponential graph base must be at least 2, found {base}"
        )));
    }
    Ok(symmetric_exponential_mask(n, base))
}

fn symmetric_exponential_mask(n: usize, base: usize) -> Topology {
    circulant_from_mask((0..n).map(|d| {
        let index = if d <= n / 2 { d } else { n - d };
        d == 0 || is_power_of(index, base)
    }))
}

/// Direction of a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingStyle {
    /// Each rank talks to both neighbours (weights 1/3).
    Both,
    /// Each rank sends to its left neighbour `i - 1` (weights 1/2).
    Left,
    /// Each rank sends to its right neighbour `i + 1` (weights 1/2).
    Right,
}

/// Bidirectional ring (BlueFog's `RingGraph`): weights 1/3 on self and both neighbours;
/// `n = 2` averages both ranks with 1/2, `n = 1` is `[1]`.
///
/// ```
/// let w = fogkit::topology::ring(5);
/// let t = 1.0 / 3.0;
/// assert_eq!(w.row(0), &[t, t, 0.0, 0.0, t]);
/// ```
pub fn ring(n: usize) -> Topology {
    ring_directed(n, RingStyle::Both)
}

/// Ring in one direction or both (BlueFog's `RingGraph(size, connect_style)`).
///
/// ```
/// use fogkit::topology::{ring_directed, RingStyle};
/// let w = ring_directed(4, RingStyle::Right); // i sends to i + 1
/// assert_eq!(w.in_neighbors(0), vec![3]);
/// assert_eq!(w.out_neighbors(0), vec![1]);
/// ```
pub fn ring_directed(n: usize, style: RingStyle) -> Topology {
    match n {
        0 => Topology::from_raw(0, vec![]),
        1 => Topology::from_raw(1, vec![1.0]),
        2 => Topology::from_raw(2, vec![0.5; 4]),
        _ => {
            let mut c = vec![0.0; n];
            match style {
                RingStyle::Both => {
                    c[0] = 1.0 / 3.0;
                    c[1] = 1.0 / 3.0;
                    c[n - 1] = 1.0 / 3.0;
                }
                RingStyle::Left => {
                    c[0] = 0.5;
                    c[n - 1] = 0.5;
                }
                RingStyle::Right => {
                    c[0] = 0.5;
                    c[1] = 0.5;
                }
            }
            Topology::circulant_recv(&c)
        }
    }
}

/// Star around rank 0 (BlueFog's `StarGraph`): the centre averages everyone with `1/n`;
/// a leaf keeps `1 - 1/n` of itself and takes `1/n` from the centre.
///
/// ```
/// let w = fogkit::topology::star(4);
/// assert_eq!(w.row(0), &[0.25, 0.25, 0.25, 0.25]);
/// assert_eq!(w.row(2), &[0.25, 0.0, 0.75, 0.0]);
/// ```
pub fn star(n: usize) -> Topology {
    star_at(n, 0)
}

/// Star around `center`; errors when `center >= n`.
pub fn star_with_center(n: usize, center: usize) -> Result<Topology> {
    if center >= n {
        return Err(Error::InvalidArgument(format!(
            "star centre must be a rank below {n}, found {center}"
        )));
    }
    Ok(star_at(n, center))
}

fn star_at(n: usize, c: usize) -> Topology {
    let mut w = vec![0.0; n * n];
    let inv = 1.0 / n as f64;
    for i in 0..n {
        w[i * n + i] = 1.0 - inv;
        w[c * n + i] = inv;
        w[i * n + c] = inv;
    }
    Topology::from_raw(n, w)
}

/// 2-D mesh grid (BlueFog's `MeshGrid2DGraph`) with the most square shape `rows x cols`
/// (`rows <= cols`, `rows` the largest divisor of `n` not above `sqrt(n)`); weights by the
/// Metropolis-Hastings rule `1/max(d_i + 1, d_j + 1)` counting self, self-weight the rest.
///
/// For 3 x 3: a corner keeps 1/2, an edge rank 3/10, the centre 1/5.
/// ```
/// let w = fogkit::topology::mesh_grid_2d(9);
/// let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-15);
/// assert!(close(w.row(0), &[0.5, 0.25, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]));
/// assert!(close(w.row(1), &[0.25, 0.3, 0.25, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0]));
/// assert!(close(w.row(4), &[0.0, 0.2, 0.0, 0.2, 0.2, 0.2, 0.0, 0.2, 0.0]));
/// ```
pub fn mesh_grid_2d(n: usize) -> Topology {
    if n == 0 {
        return Topology::from_raw(0, vec![]);
    }
    let mut rows = (n as f64).sqrt() as usize;
    while rows * rows > n {
        rows -= 1;
    }
    while n % rows != 0 {
        rows -= 1;
    }
    mesh_grid_2d_shape(rows, n / rows)
}

/// 2-D mesh grid of `rows x cols` ranks (rank `r * cols + c` at row `r`, column `c`).
pub fn mesh_grid_2d_shape(rows: usize, cols: usize) -> Topology {
    let n = rows * cols;
    let mut adj = vec![vec![false; n]; n];
    for i in 0..n {
        if (i + 1) % cols != 0 {
            adj[i][i + 1] = true;
            adj[i + 1][i] = true;
        }
        if i + cols < n {
            adj[i][i + cols] = true;
            adj[i + cols][i] = true;
        }
    }
    // Undirected by construction, so Metropolis-Hastings cannot fail.
    Topology::from_adjacency(&adj, super::Weighting::MetropolisHastings)
        .unwrap_or_else(|_| Topology::from_raw(0, vec![]))
}

/// Every rank averages everyone with `1/n` (BlueFog's `FullyConnectedGraph`): one step
/// reaches the exact average.
///
/// ```
/// let w = fogkit::topology::fully_connected(3);
/// assert!(w.mixing_rate() < 1e-12);
/// ```
pub fn fully_connected(n: usize) -> Topology {
    Topology::from_raw(n, vec![1.0 / n as f64; n * n])
}
