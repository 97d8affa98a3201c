//! The IDX format of MNIST and Fashion-MNIST (LeCun's format): plain or gzip-compressed.
//!
//! A file is a 4-byte magic (`0, 0, type, rank`), `rank` big-endian `u32` dimensions, then
//! the values. Only unsigned bytes (type `0x08`), which both data sets use, are read.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// An IDX array of bytes: its dimensions and its values in row-major order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The values, `dims.iter().product()` of them.
    pub data: Vec<u8>,
}

impl Idx {
    /// Parses IDX bytes (gzip-compressed or not: recognised by the gzip magic).
    ///
    /// ```
    /// use fogkit::data::Idx;
    /// let bytes = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6];
    /// let a = Idx::parse(&bytes).unwrap();
    /// assert_eq!(a.dims, vec![2, 3]);
    /// assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Idx> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut plain)
                .map_err(|e| Error::Data(format!("idx: expected valid gzip data, found: {e}")))?;
            return Idx::parse(&plain);
        }
        if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
            return Err(Error::Data(format!(
                "idx: expected the magic 00 00 <type> <rank>, found {:02x?}",
                &bytes[..bytes.len().min(4)]
            )));
        }
        if bytes[2] != 0x08 {
            return Err(Error::Data(format!(
                "idx: expected unsigned bytes (type 0x08), found type {:#04x}",
                bytes[2]
            )));
        }
        let rank = bytes[3] as usize;
        let header = 4 + 4 * rank;
        if bytes.len() < header {
            return Err(Error::Data(format!(
                "idx: expected {rank} dimensions ({header} header bytes), found {} bytes",
                bytes.len()
            )));
        }
        let dims: Vec<usize> = (0..rank)
            .map(|k| {
                let b = &bytes[4 + 4 * k..8 + 4 * k];
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
            })
            .collect();
        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::Data(format!("idx: dimensions {dims:?} overflow")))?;
        let body = &bytes[header..];
        if body.len() != count {
            return Err(Error::Data(format!(
                "idx: dimensions {dims:?} need {count} values, found {}",
                body.len()
            )));
        }
        Ok(Idx {
            dims,
            data: body.to_vec(),
        })
    }

    /// Reads and parses an IDX file (`.gz` or plain).
    pub fn read(path: impl AsRef<Path>) -> Result<Idx> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Data(format!("idx: could not read {}: {e}", path.display())))?;
        Idx::parse(&bytes).map_err(|e| Error::Data(format!("{} ({})", e, path.display())))
    }

    /// Serialises as plain IDX bytes (for writing small data sets and for tests).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, self.dims.len() as u8];
        for &d in &self.dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        out.extend_from_slice(&self.data);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trip_plain_and_gzip() {
        let a = Idx {
            dims: vec![3, 2, 2],
            data: (0..12).collect(),
        };
        let plain = a.to_bytes();
        assert_eq!(Idx::parse(&plain).unwrap(), a);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        assert_eq!(Idx::parse(&gz.finish().unwrap()).unwrap(), a);
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let e = Idx::parse(&[1, 2, 3]).unwrap_err().to_string();
        assert!(e.contains("expected the magic"), "{e}");
        let e = Idx::parse(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("type 0x0d"), "{e}");
        let e = Idx::parse(&[0, 0, 8, 1, 0, 0, 0, 4, 1, 2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("need 4 values, found 2"), "{e}");
        let e = Idx::parse(&[0x1f, 0x8b, 0, 0]).unwrap_err().to_string();
        assert!(e.contains("gzip"), "{e}");
    }
}
