//! Labelled image sets: the MNIST digits shipped in `data/mnist`, Fashion-MNIST from
//! Debian's `dataset-fashion-mnist`, and CIFAR-10's binary files when a user has them.

use std::path::{Path, PathBuf};

use super::{Idx, Rng};
use crate::{Error, Result};

/// Images (`[n, channels, height, width]`, values in [0, 1] unless standardized) with one
/// class label each.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    /// Pixel values, image after image.
    pub pixels: Vec<f32>,
    /// Class of each image.
    pub labels: Vec<u8>,
    /// `(channels, height, width)`.
    pub shape: (usize, usize, usize),
}

/// A training and a test set.
#[derive(Clone, Debug)]
pub struct Split {
    /// For training.
    pub train: ImageSet,
    /// For testing.
    pub test: ImageSet,
}

impl ImageSet {
    /// Images from IDX arrays `[n, h, w]` (grey) and labels `[n]`.
    pub fn from_idx(images: &Idx, labels: &Idx) -> Result<ImageSet> {
        let (n, h, w) = match images.dims[..] {
            [n, h, w] => (n, h, w),
            _ => {
                return Err(Error::Data(format!(
                    "expected images of dimensions [n, h, w], found {:?}",
                    images.dims
                )))
            }
        };
        if labels.dims != [n] {
            return Err(Error::Data(format!(
                "expected {n} labels for {n} images, found dimensions {:?}",
                labels.dims
            )));
        }
        Ok(ImageSet {
            pixels: images.data.iter().map(|&p| p as f32 / 255.0).collect(),
            labels: labels.data.clone(),
            shape: (1, h, w),
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.shape.0 * self.shape.1 * self.shape.2
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let d = self.image_len();
        let mut pixels = Vec::with_capacity(indices.len() * d);
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * d..(i + 1) * d]);
        }
        ImageSet {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
        }
    }

    /// Mean and standard deviation of all pixel values.
    pub fn moments(&self) -> (f32, f32) {
        let n = self.pixels.len().max(1) as f64;
        let mean = self.pixels.iter().map(|&p| p as f64).sum::<f64>() / n;
        let var = self
            .pixels
            .iter()
            .map(|&p| (p as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean as f32, var.sqrt().max(1e-12) as f32)
    }

    /// `(p - mean) / std` for every pixel.
    pub fn standardize(&mut self, (mean, std): (f32, f32)) {
        self.pixels.iter_mut().for_each(|p| *p = (*p - mean) / std);
    }
}

impl Split {
    /// Standardizes both sets with the training set's moments.
    pub fn standardized(mut self) -> Split {
        let m = self.train.moments();
        self.train.standardize(m);
        self.test.standardize(m);
        self
    }
}

fn idx_pair(dir: &Path, prefix: &str) -> Result<ImageSet> {
    let read = |what: &str| Idx::read(dir.join(format!("{prefix}-{what}.gz")));
    ImageSet::from_idx(&read("images-idx3-ubyte")?, &read("labels-idx1-ubyte")?)
}

/// Reads `train-{images-idx3,labels-idx1}-ubyte.gz` and `t10k-...` from a directory.
pub fn idx_split(dir: impl AsRef<Path>) -> Result<Split> {
    let dir = dir.as_ref();
    Ok(Split {
        train: idx_pair(dir, "train")?,
        test: idx_pair(dir, "t10k")?,
    })
}

/// Where the repository's `data/` directory is: `$FOGKIT_DATA`, or beside this crate.
pub fn data_dir() -> PathBuf {
    std::env::var_os("FOGKIT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"))
}

/// The 10,000 real MNIST digits shipped in `data/mnist` (7,996 for training, 2,004 for
/// testing; see its README for source and licence).
///
/// ```
/// let mnist = fogkit::data::mnist().unwrap();
/// assert_eq!((mnist.train.len(), mnist.test.len()), (7_996, 2_004));
/// assert_eq!(mnist.train.shape, (1, 28, 28));
/// ```
pub fn mnist() -> Result<Split> {
    idx_split(data_dir().join("mnist"))
}

/// Fashion-MNIST, all 60,000 + 10,000 images, from `$FOGKIT_FASHION_MNIST` or Debian's
/// package (`apt install dataset-fashion-mnist`: /usr/share/datasets/fashion-mnist).
pub fn fashion_mnist() -> Result<Split> {
    let dir = std::env::var_os("FOGKIT_FASHION_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"));
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        return Err(Error::Data(format!(
            "Fashion-MNIST: expected train-images-idx3-ubyte.gz in {} (install Debian's \
             dataset-fashion-mnist, or set FOGKIT_FASHION_MNIST to a directory with the four IDX files)",
            dir.display()
        )));
    }
    idx_split(dir)
}

/// CIFAR-10's binary version (`data_batch_1.bin` ... `data_batch_5.bin`, `test_batch.bin`:
/// records of one label byte and 3x32x32 pixel bytes) from a directory.
pub fn cifar10(dir: impl AsRef<Path>) -> Result<Split> {
    let dir = dir.as_ref();
    let read = |names: &[String]| -> Result<ImageSet> {
        let mut bytes = Vec::new();
        for name in names {
            let path = dir.join(name);
            bytes.extend(std::fs::read(&path).map_err(|e| {
                Error::Data(format!("CIFAR-10: cannot read {}: {e}", path.display()))
            })?);
        }
        cifar_records(&bytes)
    };
    let train: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    Ok(Split {
        train: read(&train)?,
        test: read(&["test_batch.bin".to_string()])?,
    })
}

/// Parses CIFAR-10 binary records (label byte, then 3072 pixel bytes, channel-major).
///
/// ```
/// let mut rec = vec![7u8];
/// rec.extend(std::iter::repeat(255u8).take(3072));
/// let set = fogkit::data::cifar_records(&rec).unwrap();
/// assert_eq!((set.labels[0], set.shape, set.pixels[3071]), (7, (3, 32, 32), 1.0));
/// assert!(fogkit::data::cifar_records(&rec[..100]).is_err());
/// ```
pub fn cifar_records(bytes: &[u8]) -> Result<ImageSet> {
    const REC: usize = 1 + 3 * 32 * 32;
    if bytes.len() % REC != 0 {
        return Err(Error::Data(format!(
            "CIFAR-10: expected records of {REC} bytes, found {} bytes ({} left over)",
            bytes.len(),
            bytes.len() % REC
        )));
    }
    let mut set = ImageSet {
        pixels: Vec::with_capacity(bytes.len()),
        labels: Vec::new(),
        shape: (3, 32, 32),
    };
    for rec in bytes.chunks(REC) {
        if rec[0] > 9 {
            return Err(Error::Data(format!(
                "CIFAR-10: expected a label 0-9, found {}",
                rec[0]
            )));
        }
        set.labels.push(rec[0]);
        set.pixels
            .extend(rec[1..].iter().map(|&p| p as f32 / 255.0));
    }
    Ok(set)
}

/// Mini-batches of one rank's share, reshuffled (seeded) each time it is used up; any
/// number of batches can be drawn, so all ranks take the same number of steps even when
/// their shares differ in size.
#[derive(Clone, Debug)]
pub struct Batches {
    order: Vec<usize>,
    at: usize,
    rng: Rng,
}

impl Batches {
    /// Batches over `len` items.
    pub fn new(len: usize, seed: u64) -> Batches {
        Batches {
            order: (0..len).collect(),
            at: len,
            rng: Rng::new(seed),
        }
    }
    /// The indices of the next `size` items (fewer only if there are fewer items).
    pub fn next_batch(&mut self, size: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(size);
        while out.len() < size.min(self.order.len()) {
            if self.at == self.order.len() {
                self.rng.shuffle(&mut self.order);
                self.at = 0;
            }
            let take = (size - out.len()).min(self.order.len() - self.at);
            out.extend_from_slice(&self.order[self.at..self.at + take]);
            self.at += take;
        }
        out
    }
}
