//! The greedy verifier of Hu et al. (ICLR 2025, §5.2; docs/theory.md §4.5), optimal for greedy drafts.
//!
//! Drafts: the top n−1 tokens T of q, then x ~ q' = q restricted to the rest, renormalised.
//! Verification is single-draft speculative sampling between p and q' on x: accept x with
//! min(1, p(x)/q'(x)), else sample the residual norm((p − q')₊), which equals p on T (q' = 0
//! there). A residual token in T is itself a draft, so it is reported as accepted. The output law
//! is p and the acceptance is p(T) + Σ min(p, q') = α* of greedy drafting (Theorem 7).
//!
//! q'(y) = q(y)/s with s = Σ_{y ∉ T} q(y), the mass that remains *summed* (with q = (1, 1e-15,
//! 1e-15), Σq − q(T) is 0 or 2.2e-16, not 2e-15). Weights are taken in units of p·s, i.e.
//! (p(y)·s − Σp·q(y))₊, so that no factor 1/s can overflow when s is tiny; a subnormal s is first
//! scaled by 2^600 (exactly), so that p(y)·s does not lose digits to underflow.

use super::source::Source;
use super::{kernel, ratio, Ctx, Outcome};
use crate::Real;

pub(crate) fn greedy<T: Real, S: Source>(cx: &Ctx<'_, T>, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let n = cx.drafts.len();
    let (top, x) = (&cx.drafts[..n - 1], cx.drafts[n - 1]);
    let ps = cx.sums.p;
    let mut ov: Vec<(usize, f64)> = top.iter().map(|&t| (t, 0.0)).collect();
    let s = kernel::sum2_with(p, q, &ov, |_, y| y);
    // p(x)/Σp over q(x)/s (≤ 1: x is part of the mass s).
    if src.coin(ratio(p[x].to_f64(), ps * (q[x].to_f64() / s))) {
        return Outcome { token: x, accepted: Some(n - 1) };
    }
    // Residual (p − (Σp/s)·q)₊ off T and p on T, both times s·k (k = 2^600 for a subnormal s,
    // else 1); T by overrides, so that the pass itself stays branch-free.
    let k = if s < kernel::SMALL { kernel::BIG } else { 1.0 };
    let (sk, psk) = (s * k, ps * k);
    let off = |x: f64, y: f64| (x * sk - psk * y).max(0.0);
    for o in ov.iter_mut() {
        o.1 = p[o.0].to_f64() * sk;
    }
    let total = kernel::sum2_with(p, q, &ov, off);
    cx.residual(src, total, &ov, off)
}
