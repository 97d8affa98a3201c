//! [`Network`]: what the training loop needs of a model (its input shape, logits with
//! and without a tape), and its implementations for the chapter's networks on any
//! [`ConvDevice`]. Pure model code: it never communicates.

use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

use super::models::Train;
use super::{ConvDevice, Features, Images, LeNet5, ResNet20};

/// The built 784-128-10 MLP ([`Mlp`](crate::nn::Mlp)'s module type), on device `D`.
pub type MlpNet<D = Cpu> = (Linear<784, 128, f32, D>, ReLU, Linear<128, 10, f32, D>);

/// A 10-class image classifier the loop can train on device `D`.
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// use fogkit::nn::{LeNet5, Network};
/// let dev: Cpu = Default::default();
/// let net = dev.build_module::<LeNet5, f32>();
/// let logits = net.logits(vec![0.5; 2 * 28 * 28], 2).unwrap();
/// assert_eq!(logits.shape().0, 2);
/// ```
pub trait Network<D: ConvDevice = Cpu>:
    TensorCollection<f32, D> + BuildModule<D, f32> + Clone
{
    /// `(channels, height, width)` of the images it takes.
    const INPUT: (usize, usize, usize);
    /// Its name in tables.
    const NAME: &'static str;
    /// Logits of `n` images (pixels flat, image after image), recording the tape.
    fn train_logits(
        &mut self,
        pixels: Vec<f32>,
        n: usize,
        grads: Gradients<f32, D>,
    ) -> Result<Features<10, Train<D>, D>, D::Err>;
    /// Logits without a tape (evaluation mode).
    fn logits(&self, pixels: Vec<f32>, n: usize) -> Result<Features<10, NoneTape, D>, D::Err>;
}

fn images<const C: usize, D: ConvDevice>(
    dev: &D,
    pixels: Vec<f32>,
    n: usize,
    (h, w): (usize, usize),
) -> Result<Images<C, NoneTape, D>, D::Err> {
    dev.try_tensor_from_vec(pixels, (n, Const::<C>, h, w))
}

impl<D: ConvDevice> Network<D> for MlpNet<D> {
    const INPUT: (usize, usize, usize) = (1, 28, 28);
    const NAME: &'static str = "MLP";
    fn train_logits(
        &mut self,
        pixels: Vec<f32>,
        n: usize,
        grads: Gradients<f32, D>,
    ) -> Result<Features<10, Train<D>, D>, D::Err> {
        let x: Features<784, NoneTape, D> = self
            .0
            .weight
            .device()
            .try_tensor_from_vec(pixels, (n, Const))?;
        self.try_forward(x.traced(grads))
    }
    fn logits(&self, pixels: Vec<f32>, n: usize) -> Result<Features<10, NoneTape, D>, D::Err> {
        let x: Features<784, NoneTape, D> = self
            .0
            .weight
            .device()
            .try_tensor_from_vec(pixels, (n, Const))?;
        self.try_forward(x)
    }
}

impl<D: ConvDevice> Network<D> for LeNet5<f32, D> {
    const INPUT: (usize, usize, usize) = (1, 28, 28);
    const NAME: &'static str = "LeNet-5";
    fn train_logits(
        &mut self,
        pixels: Vec<f32>,
        n: usize,
        grads: Gradients<f32, D>,
    ) -> Result<Features<10, Train<D>, D>, D::Err> {
        let x = images::<1, D>(self.fc1.weight.device(), pixels, n, (28, 28))?;
        self.try_forward(x.traced(grads))
    }
    fn logits(&self, pixels: Vec<f32>, n: usize) -> Result<Features<10, NoneTape, D>, D::Err> {
        self.try_forward(images::<1, D>(
            self.fc1.weight.device(),
            pixels,
            n,
            (28, 28),
        )?)
    }
}

impl<D: ConvDevice> Network<D> for ResNet20<f32, D> {
    const INPUT: (usize, usize, usize) = (3, 32, 32);
    const NAME: &'static str = "ResNet-20";
    fn train_logits(
        &mut self,
        pixels: Vec<f32>,
        n: usize,
        grads: Gradients<f32, D>,
    ) -> Result<Features<10, Train<D>, D>, D::Err> {
        let x = images::<3, D>(self.fc.weight.device(), pixels, n, (32, 32))?.traced(grads);
        self.try_forward_mut(x)
    }
    fn logits(&self, pixels: Vec<f32>, n: usize) -> Result<Features<10, NoneTape, D>, D::Err> {
        self.try_forward(images::<3, D>(
            self.fc.weight.device(),
            pixels,
            n,
            (32, 32),
        )?)
    }
}
