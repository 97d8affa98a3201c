//! Layers dfdx offers only on nightly Rust, written here for stable: 2-D convolution and
//! max/average pooling as dfdx ops with their own backward ([`conv2d`], [`max_pool2d`],
//! [`avg_pool2d`] and their layers), and the chapter's networks ([`Mlp`], [`LeNet5`],
//! [`ResNet20`]). Images are `[batch, channels, height, width]` ([`Images`]), on the CPU by
//! default or on any [`ConvDevice`] (`Cuda` with the `cuda` feature, through the ops
//! [`composed`] from dfdx's kernels).
//!
//! This module never communicates: training across ranks is `optim`'s job.
//!
//! ```
//! use fogkit::dfdx::prelude::*;
//! use fogkit::nn::{Images, LeNet5};
//! let dev: Cpu = Default::default();
//! let net = dev.build_module::<LeNet5, f32>();
//! let mut grads = net.alloc_grads();
//! let x: Images<1> = dev.sample_normal_like(&(4, Const, 28, 28));
//! let loss = cross_entropy_with_logits_loss(net.forward(x.traced(grads)), dev.ones_like(&(4, Const)) / 10.0);
//! grads = loss.backward();
//! assert!(grads.get(&net.conv1.weight).as_vec().iter().any(|&g| g != 0.0));
//! ```

pub mod composed;
mod conv;
mod device;
mod gemm;
pub(crate) mod models;
mod network;
mod pool;

use dfdx::prelude::{Const, Cpu, NoneTape, Tensor};

pub use conv::{conv2d, out_size, Conv2D};
pub use device::{ConvDevice, Pool};
pub use models::{flatten, BasicBlock, DownBlock, Features, LeNet5, Mlp, ResNet20};
pub use network::{MlpNet, Network};
pub use pool::{avg_pool2d, max_pool2d, AvgPool2D, MaxPool2D};

/// A batch of images with `C` channels: `[batch, C, height, width]`, `f32` on device `D`
/// (the CPU unless named).
pub type Images<const C: usize, T = NoneTape, D = Cpu> =
    Tensor<(usize, Const<C>, usize, usize), f32, D, T>;

/// The shape of `n` images of `C` channels and `h`x`w` pixels.
pub fn images_shape<const C: usize>(
    n: usize,
    h: usize,
    w: usize,
) -> (usize, Const<C>, usize, usize) {
    (n, Const, h, w)
}
