//! [`ConvDevice`]: the dfdx devices fogkit's layers and networks run on, and how each
//! convolves, pools and is made for a rank. `Cpu` uses fogkit's direct code (`conv.rs`,
//! `pool.rs`); `Cuda` (feature `cuda`), like any other device by default, the ops composed
//! from dfdx's kernels ([`composed`](super::composed)). It never communicates.

use dfdx::prelude::*;

use super::{composed, conv, pool, Images};

/// Which reduction a pooling window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// The window's maximum.
    Max,
    /// The window's mean.
    Avg,
}

/// A dfdx device with 2-D convolution and pooling: what the layers in [`nn`](super) and
/// the training loop need of a device.
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{ConvDevice, Images, Pool};
/// let dev = Cpu::for_rank(0, 7).unwrap();
/// let x: Images<1> = dev.ones_like(&(1, Const, 4, 4));
/// assert_eq!(Cpu::pool2d(x, 2, 2, Pool::Avg).unwrap().as_vec(), [1.0; 4]);
/// ```
pub trait ConvDevice: Device<f32> {
    /// `y = conv(x, weight) + bias`; see [`conv2d`](super::conv2d). By default the ops
    /// [`composed`] from dfdx's kernels.
    fn conv2d<const C: usize, const O: usize, const K: usize, T: Tape<f32, Self>>(
        x: Images<C, T, Self>,
        weight: &Tensor<Rank4<O, C, K, K>, f32, Self>,
        bias: &Tensor<Rank1<O>, f32, Self>,
        stride: usize,
        padding: usize,
        input_grad: bool,
    ) -> Result<Images<O, T, Self>, Self::Err> {
        composed::conv2d(x, weight, bias, stride, padding, input_grad)
    }

    /// `k`x`k` windows moved by `stride`, each reduced by `pool`; see
    /// [`max_pool2d`](super::max_pool2d). By default the ops [`composed`] from dfdx's
    /// kernels.
    fn pool2d<const C: usize, T: Tape<f32, Self>>(
        x: Images<C, T, Self>,
        k: usize,
        stride: usize,
        pool: Pool,
    ) -> Result<Images<C, T, Self>, Self::Err> {
        composed::pool2d(x, k, stride, pool)
    }

    /// The device a rank trains on, its random numbers drawn from `seed`; `local_rank` (the
    /// rank among those on its machine) chooses the GPU, several ranks sharing one when
    /// there are more ranks than GPUs.
    ///
    /// # Errors
    /// When the device cannot be made (no GPU, no driver).
    fn for_rank(local_rank: usize, seed: u64) -> crate::Result<Self>;
}

impl ConvDevice for Cpu {
    fn conv2d<const C: usize, const O: usize, const K: usize, T: Tape<f32, Self>>(
        x: Images<C, T, Self>,
        weight: &Tensor<Rank4<O, C, K, K>, f32, Self>,
        bias: &Tensor<Rank1<O>, f32, Self>,
        stride: usize,
        padding: usize,
        input_grad: bool,
    ) -> Result<Images<O, T, Self>, CpuError> {
        conv::cpu_conv2d(x, weight, bias, stride, padding, input_grad)
    }

    fn pool2d<const C: usize, T: Tape<f32, Self>>(
        x: Images<C, T, Self>,
        k: usize,
        stride: usize,
        pool: Pool,
    ) -> Result<Images<C, T, Self>, CpuError> {
        pool::cpu_pool2d(x, k, stride, pool)
    }

    fn for_rank(_local_rank: usize, seed: u64) -> crate::Result<Self> {
        Ok(Cpu::seed_from_u64(seed))
    }
}

/// dfdx's CUDA device: convolution and pooling composed from dfdx's kernels.
#[cfg(feature = "cuda")]
impl ConvDevice for Cuda {
    fn for_rank(local_rank: usize, seed: u64) -> crate::Result<Self> {
        // cudarc's `CudaDevice::count` and `::new` panic when the driver cannot start:
        // start it here, where that is an error.
        use cudarc::driver::result;
        let gpus = result::init()
            .and_then(|()| result::device::get_count())
            .map_err(|e| {
                crate::Error::Tensor(format!("expected a CUDA driver and a GPU, found: {e:?}"))
            })?;
        if gpus < 1 {
            return Err(crate::Error::Tensor(
                "expected at least one CUDA GPU, found none".into(),
            ));
        }
        let ordinal = local_rank % gpus as usize;
        Cuda::try_build(ordinal, seed).map_err(|e| {
            crate::Error::Tensor(format!("could not open GPU {ordinal} of {gpus}: {e:?}"))
        })
    }
}
