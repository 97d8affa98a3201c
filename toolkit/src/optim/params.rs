//! A model's trainable tensors as one flat vector, visited through dfdx's
//! `TensorCollection` (any model, no code per model). One flat vector is also one fused
//! buffer per exchange: a model's many small tensors travel together. Any element type
//! and device dfdx offers (a device's values are copied to and from the host vector).

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorRef,
};
use dfdx::prelude::{Device, Dtype, Gradients, Shape, Tensor};
use dfdx::shapes::HasShape;

use crate::{Error, Result};

/// Reads parameters (or their gradients) in visiting order into a reused buffer.
struct Read<'a, E: Dtype, D: Device<E>> {
    out: &'a mut Vec<E>,
    grads: Option<&'a mut Gradients<E, D>>,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for Read<'_, E, D> {
    type Viewer = ViewTensorRef;
    type Err = Error;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        t: &Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>> {
        if opts.do_gradient_update {
            let at = self.out.len();
            self.out.resize(at + t.shape().num_elements(), E::default());
            match &mut self.grads {
                None => t.copy_into(&mut self.out[at..]),
                Some(g) => {
                    g.try_alloc_for(t)
                        .map_err(|e| Error::Tensor(format!("gradient buffer: {e:?}")))?;
                    g.get(t).copy_into(&mut self.out[at..]);
                }
            }
        }
        Ok(None)
    }
}

/// Writes parameters from a flat slice in visiting order.
struct Write<'a, E> {
    src: &'a [E],
    at: usize,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for Write<'_, E> {
    type Viewer = ViewTensorMut;
    type Err = Error;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        t: &mut Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>> {
        if opts.do_gradient_update {
            let n = t.shape().num_elements();
            let part = self.src.get(self.at..self.at + n).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "a parameter vector of {} values is too short for this model (needs more than {})",
                    self.src.len(),
                    self.at
                ))
            })?;
            t.copy_from(part);
            self.at += n;
        }
        Ok(None)
    }
}

/// The model's trainable values, tensor after tensor, as one vector (batch-norm running
/// statistics are not trainable and are left out).
///
/// ```
/// use fogkit::dfdx::prelude::*;
/// let dev: Cpu = Default::default();
/// let mut model = dev.build_module::<Linear<2, 1>, f32>();
/// let mut flat = fogkit::optim::parameters(&model);
/// assert_eq!(flat.len(), 3);
/// flat.iter_mut().for_each(|v| *v = 1.0);
/// fogkit::optim::set_parameters(&mut model, &flat).unwrap();
/// assert_eq!(model.weight.array(), [[1.0, 1.0]]);
/// ```
pub fn parameters<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(model: &M) -> Vec<E> {
    let mut out = Vec::new();
    // Reading values cannot fail: only gradient lookups report errors.
    let _ = read_into(model, None, &mut out);
    out
}

/// Parameters (`grads: None`) or gradients into `out`, replacing its contents.
pub(crate) fn read_into<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: Option<&mut Gradients<E, D>>,
    out: &mut Vec<E>,
) -> Result<()> {
    out.clear();
    let mut read = Read { out, grads };
    M::iter_tensors(&mut RecursiveWalker {
        m: model,
        f: &mut read,
    })?;
    Ok(())
}

/// The gradients of the model's trainable values, in [`parameters`] order (zeros for a
/// tensor the loss did not reach).
pub fn gradients<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
) -> Result<Vec<E>> {
    let mut out = Vec::new();
    read_into(model, Some(grads), &mut out)?;
    Ok(out)
}

/// Sets the model's trainable values from a vector in [`parameters`] order; its length must
/// match exactly.
pub fn set_parameters<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &mut M,
    flat: &[E],
) -> Result<()> {
    let mut write = Write { src: flat, at: 0 };
    M::iter_tensors(&mut RecursiveWalker {
        m: model,
        f: &mut write,
    })?;
    if write.at != flat.len() {
        return Err(Error::InvalidArgument(format!(
            "a parameter vector of {} values does not fit this model ({} parameters)",
            flat.len(),
            write.at
        )));
    }
    Ok(())
}
