//! Which update rule an optimizer runs ([`Method`], the module's table) and how its step
//! size changes ([`Schedule`]): names and parsing only, no arithmetic.

use crate::{Error, Result};

/// Which update rule an [`Optimizer`] runs (see the module's table).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Parallel momentum SGD: gradients averaged over all ranks.
    PmSgd,
    /// Decentralized SGD, adapt then combine.
    Dsgd,
    /// Decentralized SGD, combine then adapt.
    DsgdCta,
    /// Decentralized momentum SGD.
    DmSgd,
    /// DecentLaM: momentum without the momentum-incurred bias.
    DecentLam,
    /// DmSGD with the momentum averaged as well.
    DaDmSgd,
    /// DmSGD, adapt while combining.
    AwcDmSgd,
    /// Quasi-global momentum DmSGD.
    QgDmSgd,
    /// D^2 (exact for heterogeneous data).
    D2,
    /// SlowMo over DmSGD: an exact average and a slow momentum step every `period` steps.
    SlowMo {
        /// Inner steps per outer step.
        period: usize,
        /// Outer step size (alpha, 1 in the paper's default).
        slow_lr: f64,
        /// Outer momentum (beta_s).
        slow_momentum: f64,
    },
    /// Gossip with periodic global averaging over DmSGD.
    GossipPga {
        /// Steps between global averages.
        period: usize,
    },
}

impl Method {
    /// The talk's methods and baselines, with SlowMo (period 8, alpha 1, beta_s 0.5) and
    /// Gossip-PGA (period 8).
    pub const ALL: [Method; 11] = [
        Method::PmSgd,
        Method::Dsgd,
        Method::DsgdCta,
        Method::DmSgd,
        Method::DecentLam,
        Method::DaDmSgd,
        Method::AwcDmSgd,
        Method::QgDmSgd,
        Method::D2,
        Method::SlowMo {
            period: 8,
            slow_lr: 1.0,
            slow_momentum: 0.5,
        },
        Method::GossipPga { period: 8 },
    ];

    /// The name used in tables and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Method::PmSgd => "PmSGD",
            Method::Dsgd => "DSGD",
            Method::DsgdCta => "DSGD-CTA",
            Method::DmSgd => "DmSGD",
            Method::DecentLam => "DecentLaM",
            Method::DaDmSgd => "DA-DmSGD",
            Method::AwcDmSgd => "AWC-DmSGD",
            Method::QgDmSgd => "QG-DmSGD",
            Method::D2 => "D2",
            Method::SlowMo { .. } => "SlowMo",
            Method::GossipPga { .. } => "Gossip-PGA",
        }
    }

    /// Parses a [`name`](Self::name), case-insensitively (defaults for SlowMo and Gossip-PGA).
    ///
    /// ```
    /// use fogkit::optim::Method;
    /// assert_eq!(Method::parse("decentlam").unwrap(), Method::DecentLam);
    /// assert!(Method::parse("adam").unwrap_err().to_string().contains("DecentLaM"));
    /// ```
    pub fn parse(name: &str) -> Result<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
                Error::InvalidArgument(format!(
                    "unknown method {name:?}: expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// Whether the method uses the momentum `beta`.
    pub fn has_momentum(&self) -> bool {
        !matches!(self, Method::Dsgd | Method::DsgdCta | Method::D2)
    }
}

/// How the step size changes after warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// The base step size throughout.
    Constant,
    /// Multiplied by `factor` every `every` steps.
    Step {
        /// Steps between decays.
        every: usize,
        /// Decay factor.
        factor: f64,
    },
    /// Cosine decay from the base step size to zero at step `total`.
    Cosine {
        /// The last step.
        total: usize,
    },
}
