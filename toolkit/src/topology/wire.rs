//! `Topology` as data (feature `serde`): it serializes as `{"n": N, "w": [row-major N x N]}`
//! and deserializes only through [`Topology::from_weights`]'s checks, so a file can never
//! produce a topology that `from_weights` would refuse (a matrix that is not square, or a
//! weight that is not finite). This module never touches the network or the file system.

use serde::{Deserialize, Serialize};

use super::Topology;
use crate::{Error, Result};

/// The wire form: the rank count and the row-major weights, unchecked.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Weights {
    n: usize,
    w: Vec<f64>,
}

impl From<Topology> for Weights {
    fn from(t: Topology) -> Self {
        Weights { n: t.n, w: t.w }
    }
}

impl TryFrom<Weights> for Topology {
    type Error = Error;

    /// Refuses a weight list that is not `n x n`, and whatever `from_weights` refuses.
    fn try_from(raw: Weights) -> Result<Self> {
        let Weights { n, w } = raw;
        if n.checked_mul(n) != Some(w.len()) {
            return Err(Error::Topology(format!(
                "a topology of {n} ranks expects {n} x {n} weights, found {}",
                w.len()
            )));
        }
        Topology::from_weights(w.chunks(n.max(1)).map(<[f64]>::to_vec).collect())
    }
}
