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
pub(crate) struct Threshold {
    t: f64,
    scale: f64,
}

impl Threshold {
    const ZERO: Threshold = Threshold { t: 0.0, scale: 1.0 };

    #[inline(always)]
    fn weight(self, pi: f64, qi: f64) -> f64 {
        (pi - self.t * (qi * self.scale)).max(0.0)
    }

    /// c = t·S as one number, for evaluators that take c itself (the study's curve, on normalised
    /// rows, where c ≤ n stays far from the scaled range).
    pub(crate) fn value(self) -> f64 {
        self.t * self.scale
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
/// s_k = Σq. `ps`, `qs` are Σp, Σq. In [0, 1].
pub(crate) fn rejection<T: Real>(p: &[T], q: &[T], ps: f64, qs: f64, n: usize) -> f64 {
    1.0 - acceptances(&[n], ps, qs, |c| residual_mass(p, q, c))[0]
}

/// The one RRS-with-replacement acceptance recurrence (docs/theory.md §4.2), for every n of `ns`
/// at once (ascending steps, so the study's n = 2..8 cost 8 steps, not 23): c₁ = 0, Z₁ = `ps`,
/// c_{k+1} = c_k + Z_k/`qs`, Z_{k+1} = `big_z`(c_{k+1}) = Σ(p − c_{k+1} q)₊, and the acceptance
/// of n drafts is 1 − Z_{n+1}/Z₁. `big_z` is one summed O(V) pass ([`rejection`]) or the
/// acceptance study's O(log V) evaluation on its sorted curve. Stops early once Z is 0 (every
/// later n accepts surely) or no longer changes (only tokens with q = 0 are left, so a huge n does
/// not loop). On Ctrl-C the values not reached are NaN (the caller discards them).
pub(crate) fn acceptances(ns: &[usize], ps: f64, qs: f64, big_z: impl Fn(Threshold) -> f64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..ns.len()).collect();
    order.sort_by_key(|&i| ns[i]);
    let mut out = vec![0.0f64; ns.len()];
    let (mut c, mut z) = (Threshold::ZERO, ps);
    let (mut step, mut fill) = (0usize, None);
    for &i in &order {
        while fill.is_none() && step < ns[i] {
            if crate::cancel::check(1024).is_err() {
                fill = Some(f64::NAN);
                break;
            }
            step += 1;
            c = c.after(z, qs);
            let next = big_z(c);
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            if !(next > 0.0) {
                fill = Some(1.0);
            } else if next == z {
                fill = Some(1.0 - (z / ps).clamp(0.0, 1.0));
            } else {
                z = next;
            }
        }
        out[i] = fill.unwrap_or(1.0 - (z / ps).clamp(0.0, 1.0));
    }
    out
}
