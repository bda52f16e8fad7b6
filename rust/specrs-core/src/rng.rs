//! The one random number generator of specrs, fixed so that a seed gives the same output on
//! every platform and in every release: **xoshiro256++** (Blackman & Vigna 2019), its 256-bit
//! state filled from the u64 seed by **SplitMix64**. Uniform f64 use the top 53 bits.
//!
//! Batched functions give row `i` the stream `Rng::for_stream(seed, i)`, so a batched call equals
//! the row-by-row calls made with the same derived streams, whatever the thread count.

#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

#[inline]
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let s = [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)];
        Rng { s }
    }

    /// An independent stream for row/stream index `stream` of a batched call seeded with `seed`.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        Rng::new(Rng::stream_seed(seed, stream))
    }

    /// The seed of stream `stream`: `Rng::for_stream(seed, s)` is `Rng::new(Rng::stream_seed(seed, s))`,
    /// so a row of a batched call can be replayed by a single call seeded with this value.
    pub fn stream_seed(seed: u64, stream: u64) -> u64 {
        let mut x = seed ^ 0x6A09_E667_F3BC_C909;
        let a = splitmix64(&mut x);
        let mut y = stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ a;
        splitmix64(&mut y)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on [0, 1), 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on (0, 1): safe to take the logarithm of.
    #[inline]
    pub fn uniform_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard exponential, Exp(1).
    #[inline]
    pub fn exponential(&mut self) -> f64 {
        -self.uniform_open().ln()
    }

    /// Standard Gumbel, −log(−log U).
    #[inline]
    pub fn gumbel(&mut self) -> f64 {
        -(-self.uniform_open().ln()).ln()
    }

    /// Index drawn with probability `w[i] / total` by inverse CDF (one uniform). `total` must be
    /// Σ w (> 0); entries that are zero are never returned. Falls back to the last positive entry
    /// when rounding leaves the running sum just short of `u · total`.
    pub fn categorical<T: crate::Real>(&mut self, w: &[T], total: f64) -> usize {
        let target = self.uniform() * total;
        let mut acc = 0.0f64;
        let mut last_pos = 0usize;
        for (i, &x) in w.iter().enumerate() {
            let x = x.to_f64();
            if x > 0.0 {
                acc += x;
                last_pos = i;
                if target < acc {
                    return i;
                }
            }
        }
        last_pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert_ne!(Rng::for_stream(1, 0).next_u64(), Rng::for_stream(1, 1).next_u64());
    }

    #[test]
    fn uniform_in_range_and_categorical_frequencies() {
        let mut r = Rng::new(7);
        let w = [0.2f64, 0.0, 0.5, 0.3];
        let mut counts = [0usize; 4];
        let n = 200_000;
        for _ in 0..n {
            let u = r.uniform();
            assert!((0.0..1.0).contains(&u));
            counts[r.categorical(&w, 1.0)] += 1;
        }
        assert_eq!(counts[1], 0);
        for (i, &c) in counts.iter().enumerate() {
            let f = c as f64 / n as f64;
            let sd = (w[i] * (1.0 - w[i]) / n as f64).sqrt();
            assert!((f - w[i]).abs() <= 5.0 * sd + 1e-12, "index {i}: {f} vs {}", w[i]);
        }
    }
}
