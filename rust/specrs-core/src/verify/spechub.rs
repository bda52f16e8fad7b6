//! The SpecHub verifier (Sun et al., EMNLP 2024; docs/theory.md §4.6), n = 2, for SpecHub drafts.
//!
//! With hub a = argmax q (lowest id on ties), drafts are (i, a) with probability q(i), or (a, i)
//! with probability q(a)·q'(i), where q'(i) = q(i)/Σ_{j≠a} q(j) is q without the hub, renormalised
//! (the usual q(a)/(1 − q(a)) written with the mass that remains *summed*: on a confident row
//! 1 − q(a) cancels to 0). All quantities below use the normalised p, q. Residual updates do not
//! depend on which pair was drawn, and the leftovers L use p *before* the update:
//! 1. pair (i, a): accept i with min(1, p(i)/q(i));
//! 2. L_ia = Σ_{i≠a} (q − p)₊;  p₁(i) = (p(i) − q(i))₊ for i ≠ a;
//! 3. pair (a, i): accept i with min(1, p₁(i)/q_ai(i)), q_ai(i) = q(a)·q'(i);
//! 4. L_ai = Σ_{i≠a} (q_ai − p₁)₊;  p₂(i) = (p₁(i) − q_ai(i))₊ = (p(i) − q'(i))₊;
//! 5. pair (a, i): accept a with min(1, p(a)/L_ai);  p(a) ← (p(a) − L_ai)₊;
//! 6. pair (i, a): accept a with min(1, p(a)/L_ia);  p(a) ← (p(a) − L_ia)₊;
//! 7. sample norm(p₂ off a, p(a) at a).
//!
//! One pass sums q off the hub, one computes L_ia, L_ai and the residual mass (the hub's terms
//! excluded by an override, not subtracted), one pick samples the residual. Its acceptance is
//! p(a) + Σ min(p, q') = α* of this draft law.

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
    // q'(i) = q(i)/Σ_{j≠a} q(j) for i ≠ a, without overflow for a subnormal mass.
    let q1 = kernel::Share::of_mass(kernel::sum2_with(p, q, &[(a, 0.0)], |_, y| y));
    if hub_second && src.coin(ratio(pn(x1), qn(x1))) {
        return Outcome { token: x1, accepted: Some(0) };
    }
    if !hub_second {
        let p1 = (pn(x2) - qn(x2)).max(0.0);
        if src.coin(ratio(p1, qa * q1.of(q[x2].to_f64()))) {
            return Outcome { token: x2, accepted: Some(1) };
        }
    }
    let off = |x: f64, y: f64| (x * ip - q1.of(y)).max(0.0); // p₂(i)
                                                             // One pass for L_ia = Σ (q − p)₊, L_ai = Σ (q_ai − p₁)₊ and Σ p₂, all over i ≠ a.
    let [l_ia, l_ai, rest] = kernel::sums2_with(p, q, &[(a, [0.0; 3])], |x, y| {
        let (pi, qi, qi1) = (x * ip, y * iq, q1.of(y));
        [(qi - pi).max(0.0), (qa * qi1 - (pi - qi).max(0.0)).max(0.0), (pi - qi1).max(0.0)]
    });
    let mut pa = pn(a);
    if !hub_second && src.coin(ratio(pa, l_ai)) {
        return Outcome { token: a, accepted: Some(0) };
    }
    pa = (pa - l_ai).max(0.0);
    if hub_second && src.coin(ratio(pa, l_ia)) {
        return Outcome { token: a, accepted: Some(1) };
    }
    pa = (pa - l_ia).max(0.0);
    cx.residual(src, rest + pa, &[(a, pa)], off)
}
