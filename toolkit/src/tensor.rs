//! What can be communicated: `f32`/`f64` slices, `Vec`s, arrays, and dfdx tensors of any
//! shape on any dfdx device (values are read in logical order and rebuilt on the same
//! device with the same shape).
//!
//! ```
//! use fogkit::tensor::Communicable;
//! use dfdx::prelude::*;
//! let dev: Cpu = Default::default();
//! let t = dev.tensor([[1.0f32, 2.0], [3.0, 4.0]]);
//! let flat = t.flat();
//! assert_eq!(&flat[..], &[1.0, 2.0, 3.0, 4.0]);
//! let back = t.rebuild(flat.into_owned()).unwrap();
//! assert_eq!(back.array(), [[1.0, 2.0], [3.0, 4.0]]);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::ops::{Add, Div, Mul};

use dfdx::shapes::{HasShape, Shape};
use dfdx::tensor::{Storage, Tensor, TensorFromVec};

use crate::{Error, Result};

/// Element types that travel between ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A scalar that fogkit can average: `f32` or `f64`.
pub trait Element:
    sealed::Sealed
    + bytemuck::Pod
    + Copy
    + Send
    + Sync
    + PartialOrd
    + fmt::Debug
    + Default
    + Add<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + 'static
{
    /// The tag compared across ranks.
    const DTYPE: Dtype;
    /// Converts a weight (always given as `f64`) to this type.
    fn from_f64(v: f64) -> Self;
    /// Widens to `f64`.
    fn to_f64(self) -> f64;
}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Element for f64 {
    const DTYPE: Dtype = Dtype::F64;
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// A value whose elements can be communicated and which can be rebuilt, with the same
/// shape, from the elements that come back.
pub trait Communicable {
    /// Element type.
    type Elem: Element;
    /// What an op returns for this input (`Vec<E>` for slices, the same tensor type
    /// without a tape for dfdx tensors).
    type Output;
    /// The elements in logical (row-major) order; borrowed where possible.
    fn flat(&self) -> Cow<'_, [Self::Elem]>;
    /// Builds an output of this value's shape from `data` (which must have as many
    /// elements as `flat()`).
    fn rebuild(&self, data: Vec<Self::Elem>) -> Result<Self::Output>;
}

impl<E: Element> Communicable for [E] {
    type Elem = E;
    type Output = Vec<E>;
    fn flat(&self) -> Cow<'_, [E]> {
        Cow::Borrowed(self)
    }
    fn rebuild(&self, data: Vec<E>) -> Result<Vec<E>> {
        Ok(data)
    }
}

impl<E: Element> Communicable for Vec<E> {
    type Elem = E;
    type Output = Vec<E>;
    fn flat(&self) -> Cow<'_, [E]> {
        Cow::Borrowed(self.as_slice())
    }
    fn rebuild(&self, data: Vec<E>) -> Result<Vec<E>> {
        Ok(data)
    }
}

impl<E: Element, const N: usize> Communicable for [E; N] {
    type Elem = E;
    type Output = [E; N];
    fn flat(&self) -> Cow<'_, [E]> {
        Cow::Borrowed(self.as_slice())
    }
    fn rebuild(&self, data: Vec<E>) -> Result<[E; N]> {
        let found = data.len();
        data.try_into().map_err(|_| {
            Error::Tensor(format!(
                "expected {N} elements to rebuild an array, found {found}"
            ))
        })
    }
}

impl<S, E, D, T> Communicable for Tensor<S, E, D, T>
where
    S: Shape,
    E: Element + dfdx::dtypes::Unit,
    D: Storage<E> + TensorFromVec<E>,
{
    type Elem = E;
    type Output = Tensor<S, E, D>;
    fn flat(&self) -> Cow<'_, [E]> {
        Cow::Owned(self.as_vec())
    }
    fn rebuild(&self, data: Vec<E>) -> Result<Tensor<S, E, D>> {
        let shape = *self.shape();
        let expected = shape.num_elements();
        if data.len() != expected {
            return Err(Error::Tensor(format!(
                "expected {expected} elements for a tensor of shape {:?}, found {}",
                shape.concrete(),
                data.len()
            )));
        }
        self.device()
            .try_tensor_from_vec(data, shape)
            .map_err(|e| Error::Tensor(format!("could not build tensor: {e}")))
    }
}
