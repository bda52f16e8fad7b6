//! The greedy verifier of Hu et al. (ICLR 2025, §5.2; docs/theory.md §4.5), optimal for greedy drafts.
//!
//! Drafts: the top n−1 tokens T of q, then x ~ q' = q restricted to the rest, renormalised.
//! Verification is single-draft speculative sampling between p and q' on x: accept x with
//! min(1, p(x)/q'(x)), else sample the residual norm((p − q')₊), which equals p on T (q' = 0
//! there). A residual token in T is itself a draft, so it is reported as accepted. The output law
//! is p and the acceptance is p(T) + Σ min(p, q') = α* of greedy drafting (Theorem 7).

use super::source::Source;
use super::{kernel, ratio, Ctx, Outcome};
use crate::Real;

pub(crate) fn greedy<T: Real, S: Source>(cx: &Ctx<'_, T>, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let n = cx.drafts.len();
    let (top, x) = (&cx.drafts[..n - 1], cx.drafts[n - 1]);
    let (ps, qs) = (cx.sums.p, cx.sums.q);
    let s = qs - top.iter().map(|&t| q[t].to_f64()).sum::<f64>(); // q'(y) = q(y)/s off T
                                                                  // p(x)/Σp over q(x)/s.
    if src.coin(ratio(p[x].to_f64() * s, ps * q[x].to_f64())) {
        return Outcome { token: x, accepted: Some(n - 1) };
    }
    // Residual in units of p: (p − (Σp/s)·q)₊ off T; on T it is p, applied as adjustments so
    // that the pass itself stays branch-free.
    let cg = ps / s;
    let off = |x: f64, y: f64| (x - cg * y).max(0.0);
    let adj: Vec<(usize, f64)> = top.iter().map(|&t| (t, p[t].to_f64() - off(p[t].to_f64(), q[t].to_f64()))).collect();
    let total = kernel::sum2(p, q, off) + adj.iter().map(|a| a.1).sum::<f64>();
    cx.residual(src, total, &adj, off)
}
