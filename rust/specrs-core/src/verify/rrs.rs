//! Single-draft speculative sampling and recursive rejection sampling (RRS), with and without
//! replacement, in O(V) per rejection and without materialising any residual.
//!
//! Why no residual vector is needed: with p₁ = p/Σp and q_k the law of the k-th draft given the
//! earlier ones, every residual p_{k+1} = norm((p_k − q_k)₊) is of the form
//! p_k ∝ (p − c_k·q)₊ for one scalar c_k:
//! ((p − c_k q)₊/Z_k − q/s_k)₊ ∝ (p − (c_k + Z_k/s_k)·q)₊, so c_{k+1} = c_k + Z_k/s_k, where
//! - with replacement (SpecInfer multi-step speculative sampling, Miao et al. 2024): q_k = q/s_k
//!   with s_k = Σq for every k;
//! - without replacement (RSD, Jeon et al. 2024, docs/theory.md §4.3): q_k(x) = q(x)/s_k off the earlier
//!   drafts, s_k = Σq − Σ_{j<k} q(x_j). The earlier (rejected)
//!   drafts need no masking: rejecting x at step j means p_j(x) < q_j(x), i.e. p(x) < c_{j+1} q(x),
//!   so (p − c q)₊ already vanishes there for every later c ≥ c_{j+1}.
//!
//! Here Z_k = Σ_x (p(x) − c_k q(x))₊ (Z₁ = Σp, c₁ = 0), and the test "accept x_k with probability
//! min(1, p_k(x_k)/q_k(x_k))" reads min(1, (p(x_k) − c_k q(x_k))₊ · s_k / (Z_k · q(x_k))).
//! Each rejection costs one pass for Z_{k+1}; the final residual costs one pick pass.

use super::source::Source;
use super::{kernel, ratio, Ctx, Outcome};
use crate::Real;

/// RRS over the drafts in order; `wor` selects the without-replacement conditionals q_k.
/// With one draft both variants are single-draft speculative sampling (Leviathan et al. 2023;
/// Chen et al. 2023): accept x with min(1, p(x)/q(x)), else sample norm((p − q)₊).
pub(crate) fn rrs<T: Real, S: Source>(cx: &Ctx<'_, T>, wor: bool, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let mut c = 0.0f64;
    let mut z = cx.sums.p;
    let mut s = cx.sums.q;
    for (k, &x) in cx.drafts.iter().enumerate() {
        let (px, qx) = (p[x].to_f64(), q[x].to_f64());
        if src.coin(ratio((px - c * qx).max(0.0) * s, z * qx)) {
            return Outcome { token: x, accepted: Some(k) };
        }
        let next = c + z / s;
        let z_next = kernel::sum2(p, q, |pi, qi| (pi - next * qi).max(0.0));
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
        if wor {
            s -= qx;
        }
    }
    cx.residual(src, z, &[], |pi, qi| (pi - c * qi).max(0.0))
}
