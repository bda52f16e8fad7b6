//! Single-draft speculative sampling and recursive rejection sampling (RRS), with and without
//! replacement, in O(V) per rejection and without materialising any residual.
//!
//! Why no residual vector is needed: with p₁ = p/Σp and q_k the law of the k-th draft given the
//! earlier ones, every residual p_{k+1} = norm((p_k − q_k)₊) is of the form
//! p_k ∝ (p − c_k·q)₊ for one scalar c_k:
//! ((p − c_k q)₊/Z_k − q/s_k)₊ ∝ (p − (c_k + Z_k/s_k)·q)₊, so c_{k+1} = c_k + Z_k/s_k, where
//! - with replacement (SpecInfer multi-step speculative sampling, Miao et al. 2024): q_k = q/s_k
//!   with s_k = Σq for every k;
//! - without replacement (RSD, Jeon et al. 2024; docs/theory.md §4.3): q_k(x) = q(x)/s_k off the
//!   earlier drafts, s_k = Σ_{x ∉ {x_1..x_{k−1}}} q(x), **summed** over what remains (never
//!   Σq − Σ_{j<k} q(x_j), which is 0 on a confident row such as q = (1, 1e-17)). The earlier
//!   (rejected) drafts need no masking in the residual: rejecting x at step j means
//!   p_j(x) < q_j(x), i.e. p(x) < c_{j+1} q(x), so (p − c q)₊ already vanishes there for every
//!   later c ≥ c_{j+1}.
//!
//! Here Z_k = Σ_x (p(x) − c_k q(x))₊ (Z₁ = Σp, c₁ = 0), and the test "accept x_k with probability
//! min(1, p_k(x_k)/q_k(x_k))" reads min(1, (p(x_k) − c_k q(x_k))₊ / (Z_k · q(x_k)/s_k)).
//! Each rejection costs one pass for Z_{k+1} (and s_{k+1}, in the same pass); the final residual
//! costs one pick pass. The same recurrence gives the exact acceptance with replacement
//! ([`rejection`], used by `bounds::verifier_acceptance`).

use super::source::Source;
use super::{kernel, ratio, Ctx, Outcome};
use crate::Real;

/// The threshold c of the residual (p − c·q)₊, held as c = t·S with S = 1, or S = 2^600 once c
/// passes 1e300 (when the q-mass that remains is subnormal, Z/s overflows): the weight is
/// (p − t·(q·S))₊, whose product never overflows into inf·0 = NaN, and the scaling is exact.
#[derive(Debug, Clone, Copy)]
struct Threshold {
    t: f64,
    scale: f64,
}

impl Threshold {
    const ZERO: Threshold = Threshold { t: 0.0, scale: 1.0 };

    #[inline(always)]
    fn weight(self, pi: f64, qi: f64) -> f64 {
        (pi - self.t * (qi * self.scale)).max(0.0)
    }

    /// c_{k+1} = c_k + Z_k/s_k.
    fn after(self, z: f64, s: f64) -> Threshold {
        if self.scale == 1.0 {
            let c = self.t + z / s;
            if c <= 1e300 {
                return Threshold { t: c, scale: 1.0 };
            }
        }
        let t = if self.scale == 1.0 { self.t * kernel::SMALL } else { self.t };
        Threshold { t: t + (z * kernel::SMALL) / s, scale: kernel::BIG }
    }
}

/// Z(c) = Σ (p − c·q)₊: the mass of the residual (p − c q)₊, summed.
#[inline]
fn residual_mass<T: Real>(p: &[T], q: &[T], c: Threshold) -> f64 {
    kernel::sum2(p, q, |pi, qi| c.weight(pi, qi))
}

/// RRS over the drafts in order; `wor` selects the without-replacement conditionals q_k.
/// With one draft both variants are single-draft speculative sampling (Leviathan et al. 2023;
/// Chen et al. 2023): accept x with min(1, p(x)/q(x)), else sample norm((p − q)₊).
pub(crate) fn rrs<T: Real, S: Source>(cx: &Ctx<'_, T>, wor: bool, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let mut c = Threshold::ZERO;
    let mut z = cx.sums.p;
    let mut s = cx.sums.q;
    let last = cx.drafts.len() - 1;
    // Without replacement, the rejected drafts leave s (their q is overridden to 0) but stay in Z.
    let mut rejected: Vec<(usize, [f64; 2])> = Vec::new();
    for (k, &x) in cx.drafts.iter().enumerate() {
        let (px, qx) = (p[x].to_f64(), q[x].to_f64());
        // min(1, (p − c q)₊(x) / (Z·q(x)/s)); q(x)/s ≤ 1 (x is part of the mass s).
        if src.coin(ratio(c.weight(px, qx), z * (qx / s))) {
            return Outcome { token: x, accepted: Some(k) };
        }
        let next = c.after(z, s);
        let (z_next, s_next) = if wor && k < last {
            rejected.push((x, [0.0; 2]));
            for r in rejected.iter_mut() {
                r.1 = [next.weight(p[r.0].to_f64(), q[r.0].to_f64()), 0.0];
            }
            let [zn, sn] = kernel::sums2_with(p, q, &rejected, |pi, qi| [next.weight(pi, qi), qi]);
            (zn, sn)
        } else {
            (residual_mass(p, q, next), s)
        };
        // Written negated so that a NaN mass also takes the safe branch.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let degenerate = !(z_next > 0.0);
        if degenerate {
            // p_k = q_k up to rounding: the rejection had probability 0 in exact arithmetic.
            // Keep the current residual (still a valid law) rather than divide by zero.
            break;
        }
        c = next;
        z = z_next;
        s = s_next;
    }
    cx.residual(src, z, &[], |pi, qi| c.weight(pi, qi))
}

/// Pr[RRS with replacement rejects all n i.i.d. drafts] = Z_{n+1}/Z_1 (the rejection
/// probabilities telescope: 1 − α_k = Z_{k+1}/Z_k), by the verifier's own recurrence with
/// s_k = Σq. `ps`, `qs` are Σp, Σq. Stops early once Z no longer changes (only tokens with q = 0
/// are left), so a huge n does not loop. In [0, 1].
pub(crate) fn rejection<T: Real>(p: &[T], q: &[T], ps: f64, qs: f64, n: usize) -> f64 {
    let (mut c, mut z) = (Threshold::ZERO, ps);
    for _ in 0..n {
        c = c.after(z, qs);
        let next = residual_mass(p, q, c);
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(next > 0.0) {
            return 0.0;
        }
        if next == z {
            break;
        }
        z = next;
    }
    (z / ps).clamp(0.0, 1.0)
}
