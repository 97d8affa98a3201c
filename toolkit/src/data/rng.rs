//! A seeded random generator (SplitMix64), small and portable.

/// A deterministic random generator: SplitMix64 (Steele, Lea and Flood, 2014), with
/// Box–Muller normals. Not for cryptography; for reproducible experiments.
///
/// `next_u64`, `uniform` and `below` are integer arithmetic and one exact conversion: the
/// same bits on every platform. `normal` and `gamma` (and so the Dirichlet shares) also
/// call `ln`, `sin`, `cos` and `powf`, which come from the platform's libm: the same bits
/// wherever that libm is the same (the tests pin values under glibc), possibly a last-bit
/// difference elsewhere.
///
/// ```
/// use fogkit::data::Rng;
/// let mut a = Rng::new(7);
/// let mut b = Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let u = a.uniform();
/// assert!((0.0..1.0).contains(&u));
/// ```
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            spare_normal: None,
        }
    }

    /// A generator for one rank of a seeded experiment: independent streams per rank.
    pub fn for_rank(seed: u64, rank: usize) -> Self {
        let mut g = Rng::new(seed ^ (rank as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal, by the Box–Muller transform.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // in (0, 1]
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * t.sin());
        r * t.cos()
    }

    /// Gamma(`shape`, 1) by Marsaglia and Tsang's method (with the `u^(1/a)` boost for
    /// `shape < 1`); `shape` must be positive.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.normal();
            let v = (1.0 + c * z).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.uniform();
            if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// `n` standard normals.
    pub fn normals(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_normals_and_uniforms() {
        let mut g = Rng::new(1);
        let z = g.normals(200_000);
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        let mut counts = [0usize; 10];
        for _ in 0..100_000 {
            counts[g.below(10)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn gamma_has_its_mean_and_shuffle_permutes() {
        let mut g = Rng::new(3);
        for shape in [0.3, 1.0, 4.5] {
            let m = (0..100_000).map(|_| g.gamma(shape)).sum::<f64>() / 100_000.0;
            assert!(
                (m - shape).abs() < 0.03 * shape.max(1.0),
                "shape {shape}: mean {m}"
            );
        }
        let mut v: Vec<usize> = (0..100).collect();
        g.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn ranks_get_different_streams() {
        let a = Rng::for_rank(5, 0).next_u64();
        let b = Rng::for_rank(5, 1).next_u64();
        assert_ne!(a, b);
        assert_eq!(a, Rng::for_rank(5, 0).next_u64());
    }

    /// The integer and uniform draws are the same bits everywhere (pure arithmetic).
    #[test]
    fn integer_and_uniform_draws_are_pinned() {
        let mut r = Rng::new(7);
        assert_eq!(r.next_u64(), 0x63cb_e1e4_5932_0dd7);
        assert_eq!(r.next_u64(), 0x044c_3cd7_f43c_661c);
        assert_eq!(r.uniform().to_bits(), 0x3fec_d308_1017_5625);
        assert_eq!(r.below(10), 5);
    }

    /// The normals, as glibc's `ln`, `sin` and `cos` round them (computed independently
    /// with Python's `math`, which calls the same functions). Another libm may differ in
    /// the last bit: that is the documented limit of `Rng`'s portability.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn normals_are_pinned_under_glibc() {
        let mut r = Rng::new(7);
        for _ in 0..3 {
            r.next_u64();
        }
        r.below(10);
        let bits: Vec<u64> = (0..4).map(|_| r.normal().to_bits()).collect();
        assert_eq!(
            bits,
            [
                0x3f70_0ea2_9c86_45d7,
                0x3ff1_8f74_e451_9f65,
                0xbfe0_efc9_1ba8_90b4,
                0x3fef_b59a_acd8_83f1
            ]
        );
    }
}
