//! Splitting a data set's samples across ranks: identically distributed (iid), or
//! heterogeneous by label with a Dirichlet(alpha) share of each class per rank, the usual
//! way to make ranks' data differ (small alpha: each rank sees few classes).

use super::Rng;
use crate::{Error, Result};

/// Sample indices `0..len` shuffled and dealt to `ranks` ranks in near-equal parts (the
/// first `len % ranks` get one more).
///
/// ```
/// let parts = fogkit::data::partition_iid(10, 3, 1);
/// assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 3, 3]);
/// ```
pub fn partition_iid(len: usize, ranks: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..len).collect();
    Rng::new(seed).shuffle(&mut idx);
    let ranks = ranks.max(1);
    let (base, extra) = (len / ranks, len % ranks);
    let mut parts = Vec::with_capacity(ranks);
    let mut start = 0;
    for r in 0..ranks {
        let end = start + base + usize::from(r < extra);
        parts.push(idx[start..end].to_vec());
        start = end;
    }
    parts
}

/// Heterogeneous split by label: for each class, proportions over ranks are drawn from
/// Dirichlet(`alpha`, ..., `alpha`) and the class's samples (shuffled) are cut by them.
/// Every sample goes to exactly one rank. Errors on `alpha <= 0` or no ranks.
///
/// ```
/// let labels: Vec<u8> = (0..1000).map(|i| (i % 10) as u8).collect();
/// let parts = fogkit::data::partition_dirichlet(&labels, 4, 0.1, 7).unwrap();
/// assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 1000);
/// ```
pub fn partition_dirichlet(
    labels: &[u8],
    ranks: usize,
    alpha: f64,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    if ranks == 0 || !(alpha > 0.0 && alpha.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "partition: expected at least one rank and alpha > 0, found {ranks} ranks and alpha {alpha}"
        )));
    }
    let mut rng = Rng::new(seed);
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut parts = vec![Vec::new(); ranks];
    for c in 0..classes {
        let mut members: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] as usize == c)
            .collect();
        if members.is_empty() {
            continue;
        }
        rng.shuffle(&mut members);
        let draws: Vec<f64> = (0..ranks).map(|_| rng.gamma(alpha)).collect();
        let total: f64 = draws.iter().sum();
        let mut start = 0;
        let mut acc = 0.0;
        for (r, d) in draws.iter().enumerate() {
            acc += d;
            let end = if r + 1 == ranks {
                members.len()
            } else {
                ((acc / total) * members.len() as f64).round() as usize
            }
            .clamp(start, members.len());
            parts[r].extend_from_slice(&members[start..end]);
            start = end;
        }
    }
    for p in &mut parts {
        p.sort_unstable();
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iid_covers_every_sample_once() {
        let parts = partition_iid(1003, 8, 5);
        let mut all: Vec<usize> = parts.concat();
        all.sort();
        assert_eq!(all, (0..1003).collect::<Vec<_>>());
    }

    #[test]
    fn small_alpha_concentrates_classes() {
        let labels: Vec<u8> = (0..10_000).map(|i| (i % 10) as u8).collect();
        let classes_per_rank = |alpha: f64| -> f64 {
            let parts = partition_dirichlet(&labels, 8, alpha, 3).unwrap();
            let mut all: Vec<usize> = parts.concat();
            all.sort();
            assert_eq!(all, (0..10_000).collect::<Vec<_>>());
            // Classes holding at least 5% of a rank's samples, averaged over ranks.
            parts
                .iter()
                .map(|p| {
                    (0..10)
                        .filter(|&c| {
                            let k = p.iter().filter(|&&i| labels[i] == c).count();
                            k * 20 >= p.len().max(1)
                        })
                        .count() as f64
                })
                .sum::<f64>()
                / 8.0
        };
        let skewed = classes_per_rank(0.1);
        let even = classes_per_rank(100.0);
        assert!(skewed < 4.0, "alpha 0.1: {skewed} classes per rank");
        assert!(even > 9.5, "alpha 100: {even} classes per rank");
        assert!(partition_dirichlet(&labels, 0, 1.0, 1).is_err());
        assert!(partition_dirichlet(&labels, 2, 0.0, 1).is_err());
    }
}
