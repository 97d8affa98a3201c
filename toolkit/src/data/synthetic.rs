//! Synthetic problems for decentralized optimization: each rank holds a local objective
//! `f_i`, and the network minimises `f(x) = (1/n) sum_i f_i(x)`.

use dfdx::prelude::{Cpu, Tensor, TensorFromVec};

use super::Rng;
use crate::linalg::symmetric_eigenvalues;
use crate::{Error, Result};

/// A 1-D `f64` dfdx tensor on the CPU: what the problems here take and return.
pub type Vector = Tensor<(usize,), f64, Cpu>;

fn vector_like(x: &Vector, v: Vec<f64>) -> Vector {
    let n = v.len();
    x.device().tensor_from_vec(v, (n,))
}

fn check_dim(what: &str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what}: expected a vector of length {expected}, found length {found}"
        )))
    }
}

/// Rank `i`'s least-squares objective `f_i(x) = ||A_i x - b_i||^2 / (2m)` with `A_i` of
/// `m` rows and `d` columns (row-major).
///
/// ```
/// use fogkit::data::LeastSquares;
/// use fogkit::dfdx::prelude::*;
/// let p = LeastSquares::heterogeneous(1, 0, 50, 4, 1.0);
/// let x = Cpu::default().tensor_from_vec(vec![0.0; 4], (4,));
/// assert_eq!(p.grad(&x).as_vec().len(), 4);
/// assert!(p.loss(&x) > 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct LeastSquares {
    a: Vec<f64>,
    b: Vec<f64>,
    m: usize,
    d: usize,
}

impl LeastSquares {
    /// A problem from its data: `a` is `m x d` row-major, `b` has `m` entries.
    pub fn new(a: Vec<f64>, b: Vec<f64>, d: usize) -> Result<Self> {
        if d == 0 || b.is_empty() || a.len() != b.len() * d {
            return Err(Error::InvalidArgument(format!(
                "least squares: expected A with {} x {d} entries for {} rows of b, found {}",
                b.len(),
                b.len(),
                a.len()
            )));
        }
        Ok(LeastSquares {
            m: b.len(),
            d,
            a,
            b,
        })
    }

    /// Rank `rank`'s share of a heterogeneous problem: entries of `A_i` are standard
    /// normal and `b_i = A_i x_i + 0.1 e`, where every rank's own solution
    /// `x_i = x_c + spread z_i` departs from a common `x_c` by `spread` times a standard
    /// normal vector. `spread = 0` gives identically distributed data.
    pub fn heterogeneous(seed: u64, rank: usize, m: usize, d: usize, spread: f64) -> Self {
        let x_common = Rng::new(seed).normals(d);
        let mut g = Rng::for_rank(seed, rank);
        let x_own: Vec<f64> = x_common.iter().map(|c| c + spread * g.normal()).collect();
        let a = g.normals(m * d);
        let b = (0..m)
            .map(|r| dot(&a[r * d..(r + 1) * d], &x_own) + 0.1 * g.normal())
            .collect();
        LeastSquares { a, b, m, d }
    }

    /// Number of unknowns `d`.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Number of rows (samples) `m`.
    pub fn rows(&self) -> usize {
        self.m
    }

    fn residual(&self, x: &[f64], r: usize) -> f64 {
        dot(&self.a[r * self.d..(r + 1) * self.d], x) - self.b[r]
    }

    /// `f_i(x) = ||A_i x - b_i||^2 / (2m)`, on a plain slice.
    pub fn loss_of(&self, x: &[f64]) -> Result<f64> {
        check_dim("least squares loss", self.d, x.len())?;
        Ok((0..self.m)
            .map(|r| self.residual(x, r).powi(2))
            .sum::<f64>()
            / (2.0 * self.m as f64))
    }

    /// `grad f_i(x) = A_i^T (A_i x - b_i) / m`, on a plain slice.
    pub fn grad_of(&self, x: &[f64]) -> Result<Vec<f64>> {
        check_dim("least squares gradient", self.d, x.len())?;
        let mut g = vec![0.0; self.d];
        for r in 0..self.m {
            let e = self.residual(x, r);
            for (gk, ak) in g.iter_mut().zip(&self.a[r * self.d..(r + 1) * self.d]) {
                *gk += ak * e;
            }
        }
        g.iter_mut().for_each(|v| *v /= self.m as f64);
        Ok(g)
    }

    /// The gradient of sample `r` alone, `a_r (a_r^T x - b_r)`: an unbiased estimate of
    /// [`grad`](Self::grad) when `r` is uniform.
    pub fn sample_grad_of(&self, x: &[f64], r: usize) -> Result<Vec<f64>> {
        check_dim("least squares sample gradient", self.d, x.len())?;
        if r >= self.m {
            return Err(Error::InvalidArgument(format!(
                "least squares: expected a sample index below {}, found {r}",
                self.m
            )));
        }
        let e = self.residual(x, r);
        Ok(self.a[r * self.d..(r + 1) * self.d]
            .iter()
            .map(|a| a * e)
            .collect())
    }

    /// [`loss_of`](Self::loss_of) on a tensor. Panics if `x` has the wrong length.
    pub fn loss(&self, x: &Vector) -> f64 {
        self.loss_of(&x.as_vec()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`grad_of`](Self::grad_of) on a tensor. Panics if `x` has the wrong length.
    pub fn grad(&self, x: &Vector) -> Vector {
        let g = self.grad_of(&x.as_vec()).unwrap_or_else(|e| panic!("{e}"));
        vector_like(x, g)
    }

    /// [`sample_grad_of`](Self::sample_grad_of) on a tensor. Panics on a wrong length or
    /// index.
    pub fn sample_grad(&self, x: &Vector, r: usize) -> Vector {
        let g = self
            .sample_grad_of(&x.as_vec(), r)
            .unwrap_or_else(|e| panic!("{e}"));
        vector_like(x, g)
    }

    /// The normal equations `(A_i^T A_i / m, A_i^T b_i / m)`, the first `d x d`
    /// row-major. Averaged over ranks (one allreduce each) and solved with
    /// [`solve_spd`], they give the global minimiser.
    pub fn normal_equations(&self) -> (Vec<f64>, Vec<f64>) {
        let (m, d) = (self.m as f64, self.d);
        let mut h = vec![0.0; d * d];
        let mut c = vec![0.0; d];
        for r in 0..self.m {
            let row = &self.a[r * d..(r + 1) * d];
            for i in 0..d {
                c[i] += row[i] * self.b[r] / m;
                for j in 0..d {
                    h[i * d + j] += row[i] * row[j] / m;
                }
            }
        }
        (h, c)
    }

    /// The smoothness constant `L`: the largest eigenvalue of `A_i^T A_i / m`.
    pub fn smoothness(&self) -> f64 {
        let (h, _) = self.normal_equations();
        symmetric_eigenvalues(&h, self.d)
            .last()
            .copied()
            .unwrap_or(0.0)
    }
}

/// Rank `i`'s l2-regularised logistic regression objective
/// `f_i(x) = (1/m) sum_r ln(1 + exp(-y_r a_r^T x)) + (lambda/2) ||x||^2`, labels `y_r = +-1`.
///
/// ```
/// use fogkit::data::Logistic;
/// use fogkit::dfdx::prelude::*;
/// let p = Logistic::heterogeneous(1, 0, 100, 3, 1.0, 0.01);
/// let x = Cpu::default().tensor_from_vec(vec![0.0; 3], (3,));
/// assert!((p.loss(&x) - 2f64.ln()).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct Logistic {
    a: Vec<f64>,
    y: Vec<f64>,
    m: usize,
    d: usize,
    lambda: f64,
}

impl Logistic {
    /// Rank `rank`'s share of a heterogeneous problem: features are standard normal around
    /// a per-rank mean `spread z_i`, and labels follow a logistic model with the per-rank
    /// weights `x_c + spread z'_i`; `lambda` is the l2 regularisation.
    pub fn heterogeneous(
        seed: u64,
        rank: usize,
        m: usize,
        d: usize,
        spread: f64,
        lambda: f64,
    ) -> Self {
        let x_common = Rng::new(seed).normals(d);
        let mut g = Rng::for_rank(seed, rank);
        let shift = g.normals(d);
        let x_own: Vec<f64> = x_common.iter().map(|c| c + spread * g.normal()).collect();
        let mut a = Vec::with_capacity(m * d);
        let mut y = Vec::with_capacity(m);
        for _ in 0..m {
            let row: Vec<f64> = shift.iter().map(|s| spread * s + g.normal()).collect();
            let p = 1.0 / (1.0 + (-dot(&row, &x_own)).exp());
            y.push(if g.uniform() < p { 1.0 } else { -1.0 });
            a.extend(row);
        }
        Logistic { a, y, m, d, lambda }
    }

    /// Number of unknowns `d`.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Number of samples `m`.
    pub fn rows(&self) -> usize {
        self.m
    }

    fn margin(&self, x: &[f64], r: usize) -> f64 {
        self.y[r] * dot(&self.a[r * self.d..(r + 1) * self.d], x)
    }

    /// The objective on a plain slice.
    pub fn loss_of(&self, x: &[f64]) -> Result<f64> {
        check_dim("logistic loss", self.d, x.len())?;
        let data: f64 = (0..self.m)
            .map(|r| softplus(-self.margin(x, r)))
            .sum::<f64>()
            / self.m as f64;
        Ok(data + 0.5 * self.lambda * dot(x, x))
    }

    /// The gradient on a plain slice.
    pub fn grad_of(&self, x: &[f64]) -> Result<Vec<f64>> {
        check_dim("logistic gradient", self.d, x.len())?;
        let mut g: Vec<f64> = x.iter().map(|v| self.lambda * v).collect();
        for r in 0..self.m {
            // d/dx ln(1 + e^{-t}) with t = y a^T x is -y a / (1 + e^{t}).
            let s = -self.y[r] * sigmoid(-self.margin(x, r)) / self.m as f64;
            for (gk, ak) in g.iter_mut().zip(&self.a[r * self.d..(r + 1) * self.d]) {
                *gk += s * ak;
            }
        }
        Ok(g)
    }

    /// The Hessian (`d x d`, row-major) on a plain slice: for Newton's method, e.g. to
    /// find the exact minimiser with allreduced Hessians and gradients.
    pub fn hessian_of(&self, x: &[f64]) -> Result<Vec<f64>> {
        check_dim("logistic Hessian", self.d, x.len())?;
        let d = self.d;
        let mut h = vec![0.0; d * d];
        for i in 0..d {
            h[i * d + i] = self.lambda;
        }
        for r in 0..self.m {
            let p = sigmoid(self.margin(x, r));
            let w = p * (1.0 - p) / self.m as f64;
            let row = &self.a[r * d..(r + 1) * d];
            for i in 0..d {
                for j in 0..d {
                    h[i * d + j] += w * row[i] * row[j];
                }
            }
        }
        Ok(h)
    }

    /// [`loss_of`](Self::loss_of) on a tensor. Panics if `x` has the wrong length.
    pub fn loss(&self, x: &Vector) -> f64 {
        self.loss_of(&x.as_vec()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`grad_of`](Self::grad_of) on a tensor. Panics if `x` has the wrong length.
    pub fn grad(&self, x: &Vector) -> Vector {
        let g = self.grad_of(&x.as_vec()).unwrap_or_else(|e| panic!("{e}"));
        vector_like(x, g)
    }

    /// Accuracy of `sign(a^T x)` on this rank's samples.
    pub fn accuracy_of(&self, x: &[f64]) -> Result<f64> {
        check_dim("logistic accuracy", self.d, x.len())?;
        let right = (0..self.m).filter(|&r| self.margin(x, r) > 0.0).count();
        Ok(right as f64 / self.m as f64)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^t)` without overflow.
fn softplus(t: f64) -> f64 {
    if t > 0.0 {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

/// Solves `H x = c` for a symmetric positive-definite `H` (`d x d`, row-major) by
/// Cholesky factorisation; an error when `H` is not positive definite.
///
/// ```
/// let x = fogkit::data::solve_spd(&[4.0, 1.0, 1.0, 3.0], &[1.0, 2.0]).unwrap();
/// assert!((4.0 * x[0] + x[1] - 1.0).abs() < 1e-12 && (x[0] + 3.0 * x[1] - 2.0).abs() < 1e-12);
/// ```
pub fn solve_spd(h: &[f64], c: &[f64]) -> Result<Vec<f64>> {
    let d = c.len();
    if h.len() != d * d {
        return Err(Error::InvalidArgument(format!(
            "solve_spd: expected a {d} x {d} matrix ({} entries), found {} entries",
            d * d,
            h.len()
        )));
    }
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s = h[i * d + j] - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return Err(Error::InvalidArgument(format!(
                        "solve_spd: expected a positive-definite matrix, found pivot {s:e} at row {i}"
                    )));
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    let mut z = vec![0.0; d];
    for i in 0..d {
        z[i] = (c[i] - (0..i).map(|k| l[i * d + k] * z[k]).sum::<f64>()) / l[i * d + i];
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        x[i] = (z[i] - (i + 1..d).map(|k| l[k * d + i] * x[k]).sum::<f64>()) / l[i * d + i];
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finite_difference(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
        let h = 1e-6;
        (0..x.len())
            .map(|k| {
                let (mut p, mut q) = (x.to_vec(), x.to_vec());
                p[k] += h;
                q[k] -= h;
                (f(&p) - f(&q)) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn least_squares_gradient_matches_finite_differences() {
        let p = LeastSquares::heterogeneous(3, 2, 30, 5, 1.0);
        let x = [0.3, -0.2, 0.1, 0.5, -1.0];
        let g = p.grad_of(&x).unwrap();
        let fd = finite_difference(|x| p.loss_of(x).unwrap(), &x);
        for (a, b) in g.iter().zip(&fd) {
            assert!((a - b).abs() < 1e-6, "{g:?} vs {fd:?}");
        }
        let mean: Vec<f64> = (0..5)
            .map(|k| {
                (0..30)
                    .map(|r| p.sample_grad_of(&x, r).unwrap()[k])
                    .sum::<f64>()
                    / 30.0
            })
            .collect();
        for (a, b) in g.iter().zip(&mean) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn normal_equations_give_the_minimiser() {
        let p = LeastSquares::heterogeneous(3, 0, 40, 4, 0.0);
        let (h, c) = p.normal_equations();
        let x = solve_spd(&h, &c).unwrap();
        assert!(p.grad_of(&x).unwrap().iter().all(|g| g.abs() < 1e-12));
        let l = p.smoothness();
        assert!(l > 0.5 && l < 5.0, "L = {l}");
    }

    #[test]
    fn logistic_gradient_and_hessian_match_finite_differences() {
        let p = Logistic::heterogeneous(4, 1, 50, 3, 1.0, 0.1);
        let x = [0.2, -0.4, 0.7];
        let g = p.grad_of(&x).unwrap();
        let fd = finite_difference(|x| p.loss_of(x).unwrap(), &x);
        for (a, b) in g.iter().zip(&fd) {
            assert!((a - b).abs() < 1e-6, "{g:?} vs {fd:?}");
        }
        let h = p.hessian_of(&x).unwrap();
        for k in 0..3 {
            let col = finite_difference(|x| p.grad_of(x).unwrap()[k], &x);
            for j in 0..3 {
                assert!((h[k * 3 + j] - col[j]).abs() < 1e-6);
            }
        }
        assert!(p.accuracy_of(&x).unwrap() <= 1.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        let p = LeastSquares::heterogeneous(1, 0, 5, 3, 1.0);
        let e = p.grad_of(&[1.0]).unwrap_err().to_string();
        assert!(
            e.contains("expected a vector of length 3, found length 1"),
            "{e}"
        );
        assert!(p.sample_grad_of(&[0.0; 3], 5).is_err());
        assert!(LeastSquares::new(vec![1.0; 5], vec![1.0; 2], 3).is_err());
        let e = solve_spd(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("positive-definite"), "{e}");
        assert!(solve_spd(&[1.0], &[1.0, 1.0]).is_err());
    }
}
