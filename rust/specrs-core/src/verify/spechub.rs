//! The SpecHub verifier (Sun et al., EMNLP 2024; docs/theory.md §4.6), n = 2, for SpecHub drafts.
//!
//! With hub a = argmax q (lowest id on ties), drafts are (i, a) with probability q(i), or (a, i)
//! with probability q(a)q(i)/(1 − q(a)). All quantities below use the normalised p, q. Residual
//! updates do not depend on which pair was drawn, and the leftovers L use p *before* the update:
//! 1. pair (i, a): accept i with min(1, p(i)/q(i));
//! 2. L_ia = Σ_{i≠a} (q − p)₊;  p₁(i) = (p(i) − q(i))₊ for i ≠ a;
//! 3. pair (a, i): accept i with min(1, p₁(i)/q_ai(i)), q_ai(i) = c·q(i), c = q(a)/(1 − q(a));
//! 4. L_ai = Σ_{i≠a} (c·q − p₁)₊;  p₂(i) = (p₁(i) − c·q(i))₊ = (p(i) − q(i)/(1 − q(a)))₊;
//! 5. pair (a, i): accept a with min(1, p(a)/L_ai);  p(a) ← (p(a) − L_ai)₊;
//! 6. pair (i, a): accept a with min(1, p(a)/L_ia);  p(a) ← (p(a) − L_ia)₊;
//! 7. sample norm(p₂ off a, p(a) at a).
//!
//! One pass computes L_ia, L_ai and the residual mass; one pick samples the residual. Its
//! acceptance is p(a) + Σ min(p, q'), q' = q without a renormalised: α* of this draft law.

use super::source::Source;
use super::{kernel, ratio, Ctx, Outcome};
use crate::Real;

pub(crate) fn spechub<T: Real, S: Source>(cx: &Ctx<'_, T>, a: usize, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let (ip, iq) = (1.0 / cx.sums.p, 1.0 / cx.sums.q);
    let (x1, x2) = (cx.drafts[0], cx.drafts[1]);
    let hub_second = x2 == a; // pair (i, a); otherwise x1 == a, pair (a, i)
    let pn = |i: usize| p[i].to_f64() * ip;
    let qn = |i: usize| q[i].to_f64() * iq;
    let qa = qn(a);
    let c = qa / (1.0 - qa);
    if hub_second && src.coin(ratio(pn(x1), qn(x1))) {
        return Outcome { token: x1, accepted: Some(0) };
    }
    if !hub_second {
        let p1 = (pn(x2) - qn(x2)).max(0.0);
        if src.coin(ratio(p1, c * qn(x2))) {
            return Outcome { token: x2, accepted: Some(1) };
        }
    }
    let k2 = 1.0 / (1.0 - qa); // p₂(i) = (p(i) − k2·q(i))₊
    let off = |x: f64, y: f64| (x * ip - k2 * y * iq).max(0.0);
    // One pass for L_ia = Σ (q − p)₊, L_ai = Σ (c·q − p₁)₊ and Σ p₂, then the hub's terms removed.
    let [l_ia, l_ai, rest] = kernel::sums2(p, q, |x, y| {
        let (pi, qi) = (x * ip, y * iq);
        [(qi - pi).max(0.0), (c * qi - (pi - qi).max(0.0)).max(0.0), (pi - k2 * qi).max(0.0)]
    });
    let l_ia = l_ia - (qa - pn(a)).max(0.0);
    let l_ai = l_ai - (c * qa - (pn(a) - qa).max(0.0)).max(0.0);
    let off_a = off(p[a].to_f64(), q[a].to_f64());
    let rest = rest - off_a;
    let mut pa = pn(a);
    if !hub_second && src.coin(ratio(pa, l_ai)) {
        return Outcome { token: a, accepted: Some(0) };
    }
    pa = (pa - l_ai).max(0.0);
    if hub_second && src.coin(ratio(pa, l_ia)) {
        return Outcome { token: a, accepted: Some(1) };
    }
    pa = (pa - l_ia).max(0.0);
    cx.residual(src, rest + pa, &[(a, pa - off_a)], off)
}
