//! The networks of the deep-learning chapter: an MLP, LeNet-5 and ResNet-20.

use dfdx::nn::modules::{BatchNorm2D, Linear};
use dfdx::prelude::{
    BuildOnDevice, Device, Dtype, Module, ModuleMut, ModuleVisitor, NoneTape, OwnedTape, Storage,
    Tape, TensorCollection, TryAdd,
};
use dfdx::shapes::{Axes2, Const, HasShape};
use dfdx::tensor::{Cpu, Tensor, WithEmptyTape};
use dfdx::tensor_ops::{ReshapeTo, SumTo, TryDiv};

use super::{max_pool2d, Conv2D, ConvDevice, Images};

/// A batch of feature vectors: `[batch, N]`, on device `D` (the CPU unless named).
pub type Features<const N: usize, T = NoneTape, D = Cpu> = Tensor<(usize, Const<N>), f32, D, T>;

/// The 784-128-10 multilayer perceptron (ReLU) for 28x28 digits, built with
/// `dev.build_module::<Mlp, f32>()`; it takes [`Features<784>`].
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{Features, Mlp};
/// let dev: Cpu = Default::default();
/// let mlp = dev.build_module::<Mlp, f32>();
/// let x: Features<784> = dev.zeros_like(&(3, Const));
/// assert_eq!(mlp.forward(x).shape().0, 3);
/// assert_eq!(mlp.num_trainable_params(), 784 * 128 + 128 + 128 * 10 + 10);
/// ```
pub type Mlp = (
    dfdx::nn::builders::Linear<784, 128>,
    dfdx::nn::builders::ReLU,
    dfdx::nn::builders::Linear<128, 10>,
);

/// Reshapes `[batch, C, H, W]` to `[batch, N]`.
///
/// # Panics
/// If `C * H * W != N`.
pub fn flatten<const C: usize, const N: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Images<C, T, D>,
) -> Result<Features<N, T, D>, D::Err> {
    let (n, _, h, w) = *x.shape();
    assert_eq!(
        C * h * w,
        N,
        "flatten: {C}x{h}x{w} images do not make {N} features"
    );
    x.try_reshape_like(&(n, Const::<N>))
}

/// LeNet-5 for 28x28 grey images: conv 5x5 (6, padded) - ReLU - max-pool 2 - conv 5x5 (16) -
/// ReLU - max-pool 2 - 400-120-84-10 with ReLU. 61,706 parameters.
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{Images, LeNet5};
/// let dev: Cpu = Default::default();
/// let net = dev.build_module::<LeNet5, f32>();
/// let x: Images<1> = dev.zeros_like(&(2, Const, 28, 28));
/// assert_eq!(net.forward(x).shape().0, 2);
/// assert_eq!(net.num_trainable_params(), 61_706);
/// ```
#[derive(Clone, Debug)]
pub struct LeNet5<E: Dtype = f32, D: Storage<E> = Cpu> {
    /// 1 -> 6 channels, 5x5, padding 2.
    pub conv1: Conv2D<1, 6, 5, 1, 2, E, D>,
    /// 6 -> 16 channels, 5x5.
    pub conv2: Conv2D<6, 16, 5, 1, 0, E, D>,
    /// 400 -> 120.
    pub fc1: Linear<400, 120, E, D>,
    /// 120 -> 84.
    pub fc2: Linear<120, 84, E, D>,
    /// 84 -> 10.
    pub fc3: Linear<84, 10, E, D>,
}

impl<E, D> TensorCollection<E, D> for LeNet5<E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = LeNet5<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("conv1", |s| &s.conv1, |s| &mut s.conv1),
                Self::module("conv2", |s| &s.conv2, |s| &mut s.conv2),
                Self::module("fc1", |s| &s.fc1, |s| &mut s.fc1),
                Self::module("fc2", |s| &s.fc2, |s| &mut s.fc2),
                Self::module("fc3", |s| &s.fc3, |s| &mut s.fc3),
            ),
            |(mut conv1, conv2, fc1, fc2, fc3)| {
                conv1.input_grad = false;
                LeNet5 {
                    conv1,
                    conv2,
                    fc1,
                    fc2,
                    fc3,
                }
            },
        )
    }
}

impl<E, D> BuildOnDevice<D, E> for LeNet5<E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type Built = Self;
}

impl<D: ConvDevice> dfdx::nn::NonMutableModule for LeNet5<f32, D> {}

impl<D: ConvDevice, T: Tape<f32, D>> Module<Images<1, T, D>> for LeNet5<f32, D> {
    type Output = Features<10, T, D>;
    type Error = D::Err;

    fn try_forward(&self, x: Images<1, T, D>) -> Result<Features<10, T, D>, D::Err> {
        // ReLU after pooling: max-pooling commutes with ReLU (values and gradients alike)
        // and leaves it a quarter of the cells.
        let x = max_pool2d(self.conv1.try_forward(x)?, 2, 2)?.try_relu()?;
        let x = max_pool2d(self.conv2.try_forward(x)?, 2, 2)?.try_relu()?;
        let x = self
            .fc1
            .try_forward(flatten::<16, 400, D, T>(x)?)?
            .try_relu()?;
        let x = self.fc2.try_forward(x)?.try_relu()?;
        self.fc3.try_forward(x)
    }
}

/// Implements `TensorCollection` and `BuildOnDevice` for a struct of named sub-modules.
macro_rules! collection {
    ($name:ident < $($c:ident),* > { $($field:ident),* } $(, |$m:ident| $post:block)?) => {
        impl<$(const $c: usize,)* E, D> TensorCollection<E, D> for $name<$($c,)* E, D>
        where
            E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
            D: Device<E>,
        {
            type To<E2: Dtype, D2: Device<E2>> = $name<$($c,)* E2, D2>;

            fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
                visitor: &mut V,
            ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
                visitor.visit_fields(
                    ($(Self::module(stringify!($field), |s| &s.$field, |s| &mut s.$field),)*),
                    |($($field,)*)| {
                        #[allow(unused_mut)]
                        let mut built = $name { $($field,)* };
                        $(let $m = &mut built; $post)?
                        built
                    },
                )
            }
        }

        impl<$(const $c: usize,)* E, D> BuildOnDevice<D, E> for $name<$($c,)* E, D>
        where
            E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
            D: Device<E>,
        {
            type Built = Self;
        }
    };
}

/// A ResNet basic block keeping `C` channels: two 3x3 convolutions with batch norm, plus
/// the input.
#[derive(Clone, Debug)]
pub struct BasicBlock<const C: usize, E: Dtype = f32, D: Storage<E> = Cpu> {
    /// First 3x3 convolution.
    pub conv1: Conv2D<C, C, 3, 1, 1, E, D>,
    /// Its batch norm.
    pub bn1: BatchNorm2D<C, E, D>,
    /// Second 3x3 convolution.
    pub conv2: Conv2D<C, C, 3, 1, 1, E, D>,
    /// Its batch norm.
    pub bn2: BatchNorm2D<C, E, D>,
}
collection!(BasicBlock<C> { conv1, bn1, conv2, bn2 });

/// A ResNet block from `I` to `O` channels at half the resolution; the shortcut is a
/// strided 1x1 convolution with batch norm (option B of the ResNet paper).
#[derive(Clone, Debug)]
pub struct DownBlock<const I: usize, const O: usize, E: Dtype = f32, D: Storage<E> = Cpu> {
    /// First 3x3 convolution, stride 2.
    pub conv1: Conv2D<I, O, 3, 2, 1, E, D>,
    /// Its batch norm.
    pub bn1: BatchNorm2D<O, E, D>,
    /// Second 3x3 convolution.
    pub conv2: Conv2D<O, O, 3, 1, 1, E, D>,
    /// Its batch norm.
    pub bn2: BatchNorm2D<O, E, D>,
    /// The shortcut's 1x1 convolution, stride 2.
    pub proj: Conv2D<I, O, 1, 2, 0, E, D>,
    /// The shortcut's batch norm.
    pub bnp: BatchNorm2D<O, E, D>,
}
collection!(DownBlock<I, O> { conv1, bn1, conv2, bn2, proj, bnp });

// Training (`forward_mut`, batch statistics) and evaluation (`forward`, running statistics)
// differ only in how batch norm is called.
macro_rules! block_forward {
    (basic $s:ident, $x:ident, $bn:ident) => {{
        let skip = $x.with_empty_tape();
        let y = $s.bn1.$bn($s.conv1.try_forward($x)?)?.try_relu()?;
        let y = $s.bn2.$bn($s.conv2.try_forward(y)?)?;
        y.try_add(skip)?.try_relu()
    }};
    (down $s:ident, $x:ident, $bn:ident) => {{
        let skip = $s.bnp.$bn($s.proj.try_forward($x.with_empty_tape())?)?;
        let y = $s.bn1.$bn($s.conv1.try_forward($x)?)?.try_relu()?;
        let y = $s.bn2.$bn($s.conv2.try_forward(y)?)?;
        y.try_add(skip)?.try_relu()
    }};
}

/// The tape of a training forward pass.
pub(crate) type Train<D = Cpu> = OwnedTape<f32, D>;

impl<const C: usize, D: ConvDevice> ModuleMut<Images<C, Train<D>, D>> for BasicBlock<C, f32, D> {
    type Output = Images<C, Train<D>, D>;
    type Error = D::Err;
    fn try_forward_mut(&mut self, x: Images<C, Train<D>, D>) -> Result<Self::Output, D::Err> {
        block_forward!(basic self, x, try_forward_mut)
    }
}

impl<const C: usize, D: ConvDevice> Module<Images<C, NoneTape, D>> for BasicBlock<C, f32, D> {
    type Output = Images<C, NoneTape, D>;
    type Error = D::Err;
    fn try_forward(&self, x: Images<C, NoneTape, D>) -> Result<Self::Output, D::Err> {
        block_forward!(basic self, x, try_forward)
    }
}

impl<const I: usize, const O: usize, D: ConvDevice> ModuleMut<Images<I, Train<D>, D>>
    for DownBlock<I, O, f32, D>
{
    type Output = Images<O, Train<D>, D>;
    type Error = D::Err;
    fn try_forward_mut(&mut self, x: Images<I, Train<D>, D>) -> Result<Self::Output, D::Err> {
        block_forward!(down self, x, try_forward_mut)
    }
}

impl<const I: usize, const O: usize, D: ConvDevice> Module<Images<I, NoneTape, D>>
    for DownBlock<I, O, f32, D>
{
    type Output = Images<O, NoneTape, D>;
    type Error = D::Err;
    fn try_forward(&self, x: Images<I, NoneTape, D>) -> Result<Self::Output, D::Err> {
        block_forward!(down self, x, try_forward)
    }
}

/// ResNet-20 for 32x32 colour images (CIFAR-10): a 3x3 stem with 16 channels, three stages
/// of three basic blocks (16, 32, 64 channels; the last two stages start at half the
/// resolution), global average pooling and a 64-10 linear layer. Train with
/// `forward_mut` (batch statistics), evaluate with `forward` (running statistics).
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{Images, ResNet20};
/// let dev: Cpu = Default::default();
/// let net = dev.build_module::<ResNet20, f32>();
/// let x: Images<3> = dev.zeros_like(&(2, Const, 32, 32));
/// assert_eq!(net.forward(x).shape().0, 2);
/// assert_eq!(net.num_trainable_params(), 273_258);
/// ```
#[derive(Clone, Debug)]
pub struct ResNet20<E: Dtype = f32, D: Storage<E> = Cpu> {
    /// 3 -> 16 channels, 3x3.
    pub stem: Conv2D<3, 16, 3, 1, 1, E, D>,
    /// The stem's batch norm.
    pub bn: BatchNorm2D<16, E, D>,
    /// Three blocks at 16 channels.
    pub stage1: (
        BasicBlock<16, E, D>,
        BasicBlock<16, E, D>,
        BasicBlock<16, E, D>,
    ),
    /// Down to 32 channels, then two blocks.
    pub stage2: (
        DownBlock<16, 32, E, D>,
        BasicBlock<32, E, D>,
        BasicBlock<32, E, D>,
    ),
    /// Down to 64 channels, then two blocks.
    pub stage3: (
        DownBlock<32, 64, E, D>,
        BasicBlock<64, E, D>,
        BasicBlock<64, E, D>,
    ),
    /// 64 -> 10.
    pub fc: Linear<64, 10, E, D>,
}
// The stem sees raw pixels: no input gradient.
collection!(ResNet20<> { stem, bn, stage1, stage2, stage3, fc }, |m| { m.stem.input_grad = false; });

/// Global average pooling: `[batch, C, H, W]` to `[batch, C]`.
fn mean_hw<const C: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Images<C, T, D>,
) -> Result<Features<C, T, D>, D::Err> {
    let (_, _, h, w) = *x.shape();
    x.try_sum::<(usize, Const<C>), Axes2<2, 3>>()?
        .try_div((h * w) as f32)
}

macro_rules! resnet_forward {
    ($s:ident, $x:ident, $f:ident) => {{
        let x = $s.stem.try_forward($x)?;
        let x = $s.bn.$f(x)?.try_relu()?;
        let x = $s.stage1.$f(x)?;
        let x = $s.stage2.$f(x)?;
        let x = $s.stage3.$f(x)?;
        $s.fc.try_forward(mean_hw(x)?)
    }};
}

impl<D: ConvDevice> ModuleMut<Images<3, Train<D>, D>> for ResNet20<f32, D> {
    type Output = Features<10, Train<D>, D>;
    type Error = D::Err;
    fn try_forward_mut(&mut self, x: Images<3, Train<D>, D>) -> Result<Self::Output, D::Err> {
        resnet_forward!(self, x, try_forward_mut)
    }
}

impl<D: ConvDevice> Module<Images<3, NoneTape, D>> for ResNet20<f32, D> {
    type Output = Features<10, NoneTape, D>;
    type Error = D::Err;
    fn try_forward(&self, x: Images<3, NoneTape, D>) -> Result<Self::Output, D::Err> {
        resnet_forward!(self, x, try_forward)
    }
}
