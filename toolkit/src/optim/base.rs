//! Base local optimizers for the adapt-then-combine and adapt-while-combine forms
//! (BlueFog's wrapped `base_optimizer`): each turns a gradient into a displacement `d`,
//! the local step `x - d`. Their state is their own; they never communicate.

use num_traits::Float;

use crate::tensor::Element;
use crate::{Error, Result};

/// Which local optimizer an ATC or AWC method wraps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Base {
    /// SGD with the optimizer's momentum `beta` (0: none) and Nesterov setting:
    /// `m = beta m + g; d = gamma m` (Nesterov: `d = gamma (g + beta m)`).
    Sgd,
    /// Adam with `beta1` = the optimizer's momentum: `m = b1 m + (1 - b1) g;
    /// v = b2 v + (1 - b2) g^2; d = gamma m_hat / (sqrt(v_hat) + eps)`.
    Adam {
        /// The second-moment decay (0.999 in PyTorch).
        beta2: f64,
        /// Added to the denominator (1e-8 in PyTorch).
        eps: f64,
    },
}

impl Base {
    /// Adam with PyTorch's defaults (`beta2` 0.999, `eps` 1e-8).
    pub const ADAM: Base = Base::Adam {
        beta2: 0.999,
        eps: 1e-8,
    };

    /// The name used in method names (`ATC-SGD`, `AWC-Adam`).
    pub fn name(&self) -> &'static str {
        match self {
            Base::Sgd => "SGD",
            Base::Adam { .. } => "Adam",
        }
    }
}

/// A base optimizer with its state.
#[derive(Clone, Debug)]
pub(crate) struct Local<E> {
    pub(crate) base: Base,
    /// The momentum (SGD) or first moment (Adam).
    pub(crate) m: Vec<E>,
    /// Adam's second moment.
    pub(crate) v: Vec<E>,
    /// Steps taken (Adam's bias correction), as a number so that it can be broadcast.
    pub(crate) t: f64,
}

impl<E: Element + Float> Local<E> {
    pub(crate) fn new(base: Base, n: usize, beta: f64, nesterov: bool) -> Result<Self> {
        if let Base::Adam { beta2, eps } = base {
            if !(0.0..1.0).contains(&beta2) || eps.is_nan() || eps <= 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "Adam expects beta2 in [0, 1) and eps > 0, found beta2 = {beta2} and eps = {eps}"
                )));
            }
            if nesterov {
                return Err(Error::InvalidArgument(
                    "Nesterov momentum is defined for SGD, not for Adam (turn nesterov off)".into(),
                ));
            }
        }
        let moments = beta > 0.0 || matches!(base, Base::Adam { .. });
        Ok(Local {
            base,
            m: if moments {
                vec![E::zero(); n]
            } else {
                Vec::new()
            },
            v: match base {
                Base::Adam { .. } => vec![E::zero(); n],
                Base::Sgd => Vec::new(),
            },
            t: 0.0,
        })
    }

    /// `d` for gradient `g` at step size `gamma`.
    pub(crate) fn displacement(
        &mut self,
        g: &[E],
        gamma: f64,
        beta: f64,
        nesterov: bool,
        d: &mut [E],
    ) {
        let (lr, b) = (E::from_f64(gamma), E::from_f64(beta));
        self.t += 1.0;
        match self.base {
            Base::Sgd if self.m.is_empty() => {
                for (d, &g) in d.iter_mut().zip(g) {
                    *d = lr * g;
                }
            }
            Base::Sgd => {
                for ((d, m), &g) in d.iter_mut().zip(self.m.iter_mut()).zip(g) {
                    *m = b * *m + g;
                    *d = lr * if nesterov { g + b * *m } else { *m };
                }
            }
            Base::Adam { beta2, eps } => {
                let one = E::one();
                let b2 = E::from_f64(beta2);
                let c1 = one - E::from_f64(beta.powf(self.t));
                let c2 = one - E::from_f64(beta2.powf(self.t));
                let eps = E::from_f64(eps);
                let it = d.iter_mut().zip(self.m.iter_mut()).zip(self.v.iter_mut());
                for (((d, m), v), &g) in it.zip(g) {
                    *m = b * *m + (one - b) * g;
                    *v = b2 * *v + (one - b2) * g * g;
                    *d = lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                }
            }
        }
    }
}
