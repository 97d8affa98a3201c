//! The one error type of fogkit. Every message says what was expected and what was found.

use std::time::Duration;

/// Result with [`Error`] as its error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in fogkit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A topology that cannot be used as asked (wrong size, weights, connectivity).
    #[error("invalid topology: {0}")]
    Topology(String),

    /// An argument outside what the call accepts.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Ranks called collectives that do not fit together (different op, length, root,
    /// data type or topology, or send/receive sets that do not pair up).
    #[error("collective mismatch at call #{call}: {detail}")]
    Mismatch {
        /// Index of the collective call (0-based, counted per rank) where it was seen.
        call: u64,
        /// What each side called.
        detail: String,
    },

    /// A rank waited longer than the configured timeout for others to join a collective.
    #[error(
        "rank {rank} timed out after {waited:?} in {op} (call #{call}): {} did not join{detail}",
        who(missing)
    )]
    Timeout {
        /// The rank that gave up waiting.
        rank: usize,
        /// The collective it was in.
        op: String,
        /// Index of the collective call.
        call: u64,
        /// How long it waited.
        waited: Duration,
        /// Ranks that had not arrived.
        missing: Vec<usize>,
        /// What the missing ranks were doing, when known.
        detail: String,
    },

    /// A rank panicked; its message is kept.
    #[error("rank {rank} panicked: {message}")]
    RankPanicked {
        /// The rank that panicked.
        rank: usize,
        /// Its panic message.
        message: String,
    },

    /// A rank's closure returned an error of the caller's own ([`Error::other`]).
    #[error("rank {rank} failed: {source}")]
    RankFailed {
        /// The rank whose closure returned `Err`.
        rank: usize,
        /// That error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// This rank cannot finish a collective because another rank is gone
    /// (it panicked, failed, or returned before joining).
    #[error("rank {rank} cannot finish {op}: {reason}")]
    PeerLost {
        /// The rank reporting.
        rank: usize,
        /// The collective it was in.
        op: String,
        /// What happened to the other rank.
        reason: String,
    },

    /// A tensor could not be read or rebuilt (shape or length does not fit).
    #[error("tensor: {0}")]
    Tensor(String),

    /// Training diverged: the mean loss of an epoch was not finite.
    #[error("training diverged in epoch {epoch} (mean loss {loss}): lower the step size")]
    Diverged {
        /// The epoch (from 1).
        epoch: usize,
        /// Its mean loss over steps and ranks.
        loss: f64,
    },

    /// Reading or writing data (metrics files, figures) failed.
    #[error("{0}")]
    Data(String),

    /// An error from the caller's own code inside a rank's closure ([`Error::other`]);
    /// `run` reports it as [`Error::RankFailed`] with the rank.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Other(Box::new(e))
    }
}

fn who(missing: &[usize]) -> String {
    if missing.is_empty() {
        "some rank(s)".to_string()
    } else {
        format!("rank(s) {missing:?}")
    }
}

impl Error {
    /// Wraps an error of the caller's own (a message, an I/O error, any error type) so a
    /// rank's closure can return it; `run` reports it with the rank.
    ///
    /// ```
    /// let r = fogkit::run(2, |bf| {
    ///     if bf.rank() == 1 {
    ///         return Err(fogkit::Error::other("my data file is missing"));
    ///     }
    ///     Ok(())
    /// });
    /// assert_eq!(r.unwrap_err().to_string(), "rank 1 failed: my data file is missing");
    /// ```
    pub fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        // A fogkit error passed through stays itself (its kind decides how it is reported).
        match e.into().downcast::<Error>() {
            Ok(fe) => *fe,
            Err(other) => Error::Other(other),
        }
    }

    /// True for errors that only report another rank's failure (not a root cause).
    pub fn is_consequence(&self) -> bool {
        matches!(self, Error::PeerLost { .. })
    }

    /// A copy of this error for another rank's view (errors are shared between ranks
    /// when one rank detects a problem on behalf of all).
    pub(crate) fn share(&self) -> Error {
        match self {
            Error::Topology(s) => Error::Topology(s.clone()),
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::Mismatch { call, detail } => Error::Mismatch {
                call: *call,
                detail: detail.clone(),
            },
            Error::Timeout {
                rank,
                op,
                call,
                waited,
                missing,
                detail,
            } => Error::Timeout {
                rank: *rank,
                op: op.clone(),
                call: *call,
                waited: *waited,
                missing: missing.clone(),
                detail: detail.clone(),
            },
            Error::RankPanicked { rank, message } => Error::RankPanicked {
                rank: *rank,
                message: message.clone(),
            },
            Error::RankFailed { rank, source } => Error::RankFailed {
                rank: *rank,
                source: source.to_string().into(),
            },
            Error::PeerLost { rank, op, reason } => Error::PeerLost {
                rank: *rank,
                op: op.clone(),
                reason: reason.clone(),
            },
            Error::Tensor(s) => Error::Tensor(s.clone()),
            Error::Diverged { epoch, loss } => Error::Diverged {
                epoch: *epoch,
                loss: *loss,
            },
            Error::Data(s) => Error::Data(s.clone()),
            Error::Other(e) => Error::Other(e.to_string().into()),
        }
    }
}
