//! One safe matrix product over the `gemm` crate (the kernel dfdx uses on the CPU), single
//! threaded: each rank is one thread, and ranks already fill the cores. Also a per-thread
//! pool of scratch buffers, so the layers' large temporaries are not allocated (and
//! page-faulted in) at every step.

use std::cell::RefCell;

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A pooled buffer: the first `len` values of a vector that keeps its full length, so
/// handing it out again writes nothing.
pub(crate) struct Scratch {
    v: Vec<f32>,
    len: usize,
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.v[..self.len]
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.v[..self.len]
    }
}

/// A buffer of `len` values (contents unspecified: callers overwrite every cell).
pub(crate) fn take(len: usize) -> Scratch {
    let mut v = POOL.with(|p| {
        let mut p = p.borrow_mut();
        // The smallest that fits, else the largest (grown below).
        let fit = (0..p.len())
            .filter(|&i| p[i].len() >= len)
            .min_by_key(|&i| p[i].len())
            .or_else(|| (0..p.len()).max_by_key(|&i| p[i].len()));
        fit.map(|i| p.swap_remove(i)).unwrap_or_default()
    });
    if v.len() < len {
        v.resize(len, 0.0);
    }
    Scratch { v, len }
}

/// Returns a buffer to this thread's pool (at most 16 are kept).
pub(crate) fn give(s: Scratch) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 16 {
            p.push(s.v);
        }
    });
}

/// A row-major view: element (r, c) is at `r * rs + c * cs`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A contiguous row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a contiguous row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            rs: 1,
            cs: cols,
        }
    }
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// `c[m x n] = a[m x k] b[k x n]`, or `c += a b` when `accumulate`, into `c` with element
/// (r, j) at `r * c_strides.0 + j * c_strides.1`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_to(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    c: &mut [f32],
    c_strides: (usize, usize),
    accumulate: bool,
) {
    let fits = View {
        data: c,
        rs: c_strides.0,
        cs: c_strides.1,
    }
    .fits(m, n);
    assert!(
        a.fits(m, k) && b.fits(k, n) && fits,
        "matmul: operand too small"
    );
    assert!(
        m <= 1 || n <= 1 || c_strides.0 != c_strides.1,
        "matmul: output cells overlap"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for j in 0..n {
                    c[r * c_strides.0 + j * c_strides.1] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: the asserts above keep every index the kernel reads or writes inside the
    // slices; `c` is borrowed mutably and cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_strides.1 as isize,
            c_strides.0 as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition_with_transposes_and_accumulation() {
        let (m, n, k) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 2.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 3.0).collect(); // n x k
        let mut c = vec![1.0; m * n];
        matmul_to(
            m,
            n,
            k,
            View::rows(&a, k),
            View::transposed(&bt, k),
            &mut c,
            (n, 1),
            true,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|l| a[i * k + l] * bt[j * k + l]).sum::<f32>();
                assert_eq!(c[i * n + j], want);
            }
        }
    }
}
