//! Where a verifier's randomness comes from.
//!
//! Every verifier is written once, against [`Source`]: it asks for Bernoulli coins ("accept draft
//! k with probability a") and, at the end, for one pick from a residual given lazily by weights.
//! Run with the [`Rng`] it samples; run with the exact tracer of `crate::exact` it enumerates the
//! same decisions and integrates the uniforms analytically. So the exact output law that the tests
//! check is the law of *this* code, arithmetic included, not of a re-implementation.
//!
//! Contract for verifiers: a coin that comes up `true` ends the call (the draft is accepted), and
//! a pick is the last random decision of the call.

use super::kernel;
use crate::{Real, Rng};

pub trait Source {
    /// A coin that is `true` with probability `prob` (clamped to [0, 1]).
    fn coin(&mut self, prob: f64) -> bool;

    /// An index i with probability w̃(i) / total, where w̃(i) = w(p[i], q[i]) except at the
    /// overridden ids `ov`, whose weight is given (w̃ ≥ 0, total = Σ w̃ > 0; see `kernel::pick2`).
    fn pick<T: Real, F: Fn(f64, f64) -> f64>(&mut self, p: &[T], q: &[T], total: f64, ov: &[(usize, f64)], w: F) -> usize;
}

impl Source for Rng {
    #[inline]
    fn coin(&mut self, prob: f64) -> bool {
        // One uniform per coin, u < prob: never true for prob ≤ 0, always true for prob ≥ 1.
        self.uniform() < prob
    }

    #[inline]
    fn pick<T: Real, F: Fn(f64, f64) -> f64>(&mut self, p: &[T], q: &[T], total: f64, ov: &[(usize, f64)], w: F) -> usize {
        let u = self.uniform();
        // Callers guarantee a positive weight; 0 is a safe index should that ever fail.
        kernel::pick2(p, q, total, u, ov, w).unwrap_or(0)
    }
}
