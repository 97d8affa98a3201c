//! [`Network`]: what the training loop needs of a model (its input shape, logits with
//! and without a tape), and its implementations for the chapter's networks. Pure model
//! code: it never communicates.

use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

use super::models::Train;
use super::{Features, Images, LeNet5, ResNet20};

/// The built 784-128-10 MLP ([`Mlp`](crate::nn::Mlp)'s module type).
pub type MlpNet = (Linear<784, 128, f32, Cpu>, ReLU, Linear<128, 10, f32, Cpu>);

/// A 10-class image classifier the loop can train.
pub trait Network: TensorCollection<f32, Cpu> + BuildModule<Cpu, f32> + Clone {
    /// `(channels, height, width)` of the images it takes.
    const INPUT: (usize, usize, usize);
    /// Its name in tables.
    const NAME: &'static str;
    /// Logits of `n` images (pixels flat, image after image), recording the tape.
    fn train_logits(
        &mut self,
        pixels: Vec<f32>,
        n: usize,
        grads: Gradients<f32, Cpu>,
    ) -> Features<10, Train>;
    /// Logits without a tape (evaluation mode).
    fn logits(&self, pixels: Vec<f32>, n: usize) -> Features<10>;
}

fn images<const C: usize>(dev: &Cpu, pixels: Vec<f32>, n: usize, h: usize, w: usize) -> Images<C> {
    dev.tensor_from_vec(pixels, (n, Const::<C>, h, w))
}

impl Network for MlpNet {
    const INPUT: (usize, usize, usize) = (1, 28, 28);
    const NAME: &'static str = "MLP";
    fn train_logits(
        &mut self,
        pixels: Vec<f32>,
        n: usize,
        grads: Gradients<f32, Cpu>,
    ) -> Features<10, Train> {
        let x: Features<784> = self.0.weight.device().tensor_from_vec(pixels, (n, Const));
        self.forward(x.traced(grads))
    }
    fn logits(&self, pixels: Vec<f32>, n: usize) -> Features<10> {
        let x: Features<784> = self.0.weight.device().tensor_from_vec(pixels, (n, Const));
        self.forward(x)
    }
}

impl Network for LeNet5 {
    const INPUT: (usize, usize, usize) = (1, 28, 28);
    const NAME: &'static str = "LeNet-5";
    fn train_logits(
        &mut self,
        pixels: Vec<f32>,
        n: usize,
        grads: Gradients<f32, Cpu>,
    ) -> Features<10, Train> {
        self.forward(images::<1>(self.fc1.weight.device(), pixels, n, 28, 28).traced(grads))
    }
    fn logits(&self, pixels: Vec<f32>, n: usize) -> Features<10> {
        self.forward(images::<1>(self.fc1.weight.device(), pixels, n, 28, 28))
    }
}

impl Network for ResNet20 {
    const INPUT: (usize, usize, usize) = (3, 32, 32);
    const NAME: &'static str = "ResNet-20";
    fn train_logits(
        &mut self,
        pixels: Vec<f32>,
        n: usize,
        grads: Gradients<f32, Cpu>,
    ) -> Features<10, Train> {
        let x = images::<3>(self.fc.weight.device(), pixels, n, 32, 32).traced(grads);
        self.forward_mut(x)
    }
    fn logits(&self, pixels: Vec<f32>, n: usize) -> Features<10> {
        self.forward(images::<3>(self.fc.weight.device(), pixels, n, 32, 32))
    }
}
