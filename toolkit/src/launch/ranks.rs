//! [`Ranks`]: what [`run`](crate::run) gives back, each rank's result where it was
//! computed. In-process that is every rank's; under `mpirun` each process holds its own
//! rank's only, and asking for another rank's is an error, never someone else's value.

use std::fmt;
use std::ops::Index;

use crate::{Error, Result};

/// Each rank's result, held where it was computed: all of them for in-process ranks,
/// this process's rank's under `mpirun`.
///
/// ```
/// let xs = fogkit::run(3, |bf| Ok(bf.rank() * 10)).unwrap();
/// assert_eq!(xs[2], 20);                       // by rank
/// assert_eq!(xs.size(), 3);
/// for (rank, x) in xs.iter() {                 // the results held here
///     println!("rank {rank}: {x}");            // every rank once, in-process or not
/// }
/// assert_eq!(xs.into_vec().unwrap(), vec![0, 10, 20]); // all of them, when all are here
/// ```
#[derive(Clone, PartialEq)]
pub struct Ranks<R> {
    size: usize,
    first: usize,
    values: Vec<R>,
}

impl<R> Ranks<R> {
    /// `values` of ranks `first..first + values.len()` in a job of `size` ranks.
    pub(crate) fn new(size: usize, first: usize, values: Vec<R>) -> Self {
        Ranks {
            size,
            first,
            values,
        }
    }

    /// Ranks in the job.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether every rank's result is held here (in-process ranks).
    pub fn is_complete(&self) -> bool {
        self.values.len() == self.size
    }

    /// `rank`'s result, if it is held here.
    pub fn get(&self, rank: usize) -> Option<&R> {
        rank.checked_sub(self.first)
            .and_then(|i| self.values.get(i))
    }

    /// The results held here with their ranks, in rank order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &R)> {
        self.values
            .iter()
            .enumerate()
            .map(move |(i, v)| (self.first + i, v))
    }

    /// `rank`'s result, moved out, if it is held here (e.g. rank 0's gathered metrics).
    ///
    /// ```
    /// let xs = fogkit::run(2, |bf| Ok(vec![bf.rank(); 2])).unwrap();
    /// assert_eq!(xs.take(1), Some(vec![1, 1]));
    /// ```
    pub fn take(self, rank: usize) -> Option<R> {
        let i = rank.checked_sub(self.first)?;
        self.values.into_iter().nth(i)
    }

    /// The results held here with their ranks, in rank order.
    pub fn into_here(self) -> Vec<(usize, R)> {
        let first = self.first;
        self.values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (first + i, v))
            .collect()
    }

    /// Every rank's result in rank order, or an error when some are held by other
    /// processes (under `mpirun`: gather them inside the closure, e.g. with `allgather`).
    pub fn into_vec(self) -> Result<Vec<R>> {
        if self.is_complete() {
            Ok(self.values)
        } else {
            Err(Error::InvalidArgument(format!(
                "expected all {} ranks' results in this process, found only {}: under mpirun \
                 each process holds its own rank's (gather inside the closure instead)",
                self.size,
                self.held()
            )))
        }
    }

    fn held(&self) -> String {
        match self.values.len() {
            0 => "none".into(),
            1 => format!("rank {}'s", self.first),
            k => format!("ranks {}..{}", self.first, self.first + k),
        }
    }
}

impl<R> Index<usize> for Ranks<R> {
    type Output = R;

    /// `rank`'s result. Panics, naming both, when it is held by another process.
    fn index(&self, rank: usize) -> &R {
        match self.get(rank) {
            Some(v) => v,
            None => panic!(
                "rank {rank}'s result is not in this process (a job of {} ranks; this process \
                 holds {}): use get() or iter()",
                self.size,
                self.held()
            ),
        }
    }
}

impl<R: PartialEq> PartialEq<Vec<R>> for Ranks<R> {
    /// Equal when every rank's result is here and they equal `other` in rank order.
    fn eq(&self, other: &Vec<R>) -> bool {
        self.is_complete() && self.values == *other
    }
}

impl<R: fmt::Debug> fmt::Debug for Ranks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_complete() {
            f.debug_list().entries(&self.values).finish()
        } else {
            f.debug_map().entries(self.iter()).finish()
        }
    }
}

impl<R> IntoIterator for Ranks<R> {
    type Item = (usize, R);
    type IntoIter = std::vec::IntoIter<(usize, R)>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_here().into_iter()
    }
}
