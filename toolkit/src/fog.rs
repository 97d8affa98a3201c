//! The rank handle [`Fog`] (BlueFog's `bf`): a facade over ops' engine
//! ([`Comm`](crate::ops::Comm), whose methods it exposes) plus the dfdx device this
//! rank's tensors live on. It holds no state of its own beyond the device.

use std::ops::Deref;

use dfdx::tensor::{Cpu, Tensor, TensorFromVec};

use crate::ops::Comm;
use crate::tensor::Element;
use crate::{Error, Result};

/// One rank's view of the network: its rank, the topology, and every collective (the
/// methods of [`Comm`], which `Fog` derefs to).
///
/// Created by [`run`](crate::run); each rank's closure gets `&Fog`.
pub struct Fog {
    comm: Comm,
    device: Cpu,
}

impl Fog {
    pub(crate) fn new(comm: Comm) -> Self {
        Fog {
            comm,
            device: Cpu::default(),
        }
    }

    /// The dfdx device tensors are made on.
    pub fn device(&self) -> &Cpu {
        &self.device
    }

    /// A 1-D dfdx tensor holding `data`, on this rank's device.
    ///
    /// ```
    /// let v = fogkit::run(2, |bf| bf.tensor_from(&[bf.rank() as f64, 1.0])).unwrap();
    /// assert_eq!(v[1].as_vec(), vec![1.0, 1.0]);
    /// ```
    pub fn tensor_from<E: Element + dfdx::dtypes::Unit>(
        &self,
        data: &[E],
    ) -> Result<Tensor<(usize,), E, Cpu>> {
        self.device
            .try_tensor_from_vec(data.to_vec(), (data.len(),))
            .map_err(|e| Error::Tensor(format!("could not build tensor: {e}")))
    }
}

impl Deref for Fog {
    type Target = Comm;

    fn deref(&self) -> &Comm {
        &self.comm
    }
}
