//! Which update rule an optimizer runs ([`Method`], the module's table) and how its step
//! size changes ([`Schedule`]): names and parsing only, no arithmetic.

use super::base::Base;
use super::comm::Communication;
use crate::{Error, Result};

/// Which update rule an [`Optimizer`](crate::optim::Optimizer) runs (see the module's table).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Parallel momentum SGD: gradients averaged over all ranks (the centralized baseline
    /// of the talk; the allreduce form of Goyal et al., 2017).
    PmSgd,
    /// Decentralized SGD, adapt then combine: diffusion (Lopes and Sayed, IEEE TSP 2008;
    /// Chen and Sayed, IEEE TSP 2012), D-PSGD (Lian et al., NeurIPS 2017).
    Dsgd,
    /// Decentralized SGD, combine then adapt: the distributed (sub)gradient method (Nedić
    /// and Ozdaglar, IEEE TAC 2009).
    DsgdCta,
    /// Decentralized momentum SGD, the talk's DmSGD (Gao and Huang, 2020; Singh et al.,
    /// 2020; Yuan et al., ICCV 2021).
    DmSgd,
    /// DecentLaM: momentum without the momentum-incurred bias (Yuan, Chen, Huang, Zhang,
    /// Pan, Xu and Yin, ICCV 2021, arXiv:2104.11981).
    DecentLam,
    /// DmSGD with the momentum averaged as well (Yu, Jin and Yang, ICML 2019).
    DaDmSgd,
    /// DmSGD, adapt while combining (Balu et al., ICASSP 2021).
    AwcDmSgd,
    /// Quasi-global momentum DmSGD (Lin, Karimireddy, Stich and Jaggi, ICML 2021).
    QgDmSgd,
    /// D^2 (Tang, Lian, Yan, Zhang and Liu, ICML 2018), exact for heterogeneous data: the
    /// stochastic form of exact diffusion (Yuan, Ying, Zhao and Sayed, IEEE TSP 2019),
    /// which is also NIDS (Li, Shi and Yan, IEEE TSP 2019). It converges when the smallest eigenvalue of
    /// `W` is above -1/3 (Tang et al., ICML 2018); `step` warns over a static or machine `W`
    /// that breaks it, such as the ring of an even number of ranks (exactly -1/3), whose
    /// lazy form meets it.
    D2,
    /// D^2 with momentum, the D2-DmSGD baseline of DecentLaM's paper (Yuan et al., ICCV
    /// 2021): D^2's recursion with the direction `m = beta m + g` in place of `g`; its
    /// conditions on `W` are D^2's.
    D2DmSgd,
    /// SlowMo over DmSGD: an exact average and a slow momentum step every `period` steps
    /// (Wang, Tantia, Ballas and Rabbat, ICLR 2020).
    SlowMo {
        /// Inner steps per outer step.
        period: usize,
        /// Outer step size (alpha, 1 in the paper's default).
        slow_lr: f64,
        /// Outer momentum (beta_s).
        slow_momentum: f64,
    },
    /// Gossip with periodic global averaging over DmSGD (Chen, Yuan, Zhang, Pan, Xu and
    /// Yin, ICML 2021).
    GossipPga {
        /// Steps between global averages.
        period: usize,
    },
    /// Adapt then combine over any base optimizer: `x = W(x - d)` (BlueFog's
    /// `DistributedAdaptThenCombineOptimizer`; Ying, Yuan, Hu, Chen and Yin, 2021,
    /// arXiv:2111.04287).
    Atc(Base),
    /// Adapt while combine over any base optimizer: `x = W x - d` (BlueFog's
    /// `DistributedAdaptWithCombineOptimizer`).
    Awc(Base),
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
            Method::D2DmSgd => "D2-DmSGD",
            Method::SlowMo { .. } => "SlowMo",
            Method::GossipPga { .. } => "Gossip-PGA",
            Method::Atc(Base::Sgd) => "ATC-SGD",
            Method::Atc(Base::Adam { .. }) => "ATC-Adam",
            Method::Awc(Base::Sgd) => "AWC-SGD",
            Method::Awc(Base::Adam { .. }) => "AWC-Adam",
        }
    }

    /// The talk's methods, D2-DmSGD (added after the committed table, which ran
    /// [`ALL`](Self::ALL)) and the base-optimizer forms (Adam with PyTorch's defaults):
    /// everything [`parse`](Self::parse) accepts.
    pub fn all() -> Vec<Method> {
        let mut v = Method::ALL.to_vec();
        v.extend([
            Method::D2DmSgd,
            Method::Atc(Base::Sgd),
            Method::Atc(Base::ADAM),
            Method::Awc(Base::Sgd),
            Method::Awc(Base::ADAM),
        ]);
        v
    }

    /// Whether the rule needs a symmetric `W` (checked whenever `W` changes).
    pub fn needs_symmetric(&self) -> bool {
        matches!(self, Method::DecentLam | Method::D2 | Method::D2DmSgd)
    }

    /// Why the rule cannot run over `comm`, in words; `None` when it can. (A symmetric `W`
    /// is checked step by step, on the `W` in force.)
    pub fn refuses(&self, comm: &Communication) -> Option<String> {
        match (self, comm) {
            (Method::PmSgd, Communication::Global | Communication::None) => None,
            (Method::PmSgd, c) => Some(format!(
                "PmSGD averages gradients over all ranks: it takes global (or none) \
                 communication, found {c}"
            )),
            _ => None,
        }
    }

    /// The communication the rule uses when it is given none: global for PmSGD, the
    /// static topology for the others.
    pub fn default_communication(&self) -> Communication {
        match self {
            Method::PmSgd => Communication::Global,
            _ => Communication::Static,
        }
    }

    /// Parses a [`name`](Self::name), case-insensitively (defaults for SlowMo, Gossip-PGA
    /// and Adam).
    ///
    /// ```
    /// use fogkit::optim::{Base, Method};
    /// assert_eq!(Method::parse("decentlam").unwrap(), Method::DecentLam);
    /// assert_eq!(Method::parse("awc-adam").unwrap(), Method::Awc(Base::ADAM));
    /// assert!(Method::parse("adam").unwrap_err().to_string().contains("DecentLaM"));
    /// ```
    pub fn parse(name: &str) -> Result<Method> {
        Method::all()
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<&str> = Method::all().iter().map(|m| m.name()).collect();
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
    /// Cosine decay from the base step size to zero at step `total` (and zero after it).
    Cosine {
        /// The step where the step size reaches zero.
        total: usize,
    },
}

impl Schedule {
    /// The factor on the base step size at step `k` after warm-up.
    ///
    /// ```
    /// use fogkit::optim::Schedule;
    /// let c = Schedule::Cosine { total: 4 };
    /// assert_eq!((c.factor(0), c.factor(2), c.factor(4), c.factor(9)), (1.0, 0.5, 0.0, 0.0));
    /// ```
    pub fn factor(&self, k: usize) -> f64 {
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Step { every, factor } => factor.powi((k / every.max(1)) as i32),
            Schedule::Cosine { total } if k >= total => 0.0,
            Schedule::Cosine { total } => {
                0.5 * (1.0 + (std::f64::consts::PI * k as f64 / total as f64).cos())
            }
        }
    }
}
