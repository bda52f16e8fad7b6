//! The greedy verifier of Hu et al. (ICLR 2025, §5.2; mdsd.md §4.2), optimal for greedy drafts.
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
    let (p, q, v) = (cx.p, cx.q, cx.p.len());
    let n = cx.drafts.len();
    let (top, x) = (&cx.drafts[..n - 1], cx.drafts[n - 1]);
    let (ps, qs) = (cx.sums.p, cx.sums.q);
    let s = qs - top.iter().map(|&t| q[t].to_f64()).sum::<f64>(); // q'(y) = q(y)/s off T
    // p(x)/Σp over q(x)/s.
    if src.coin(ratio(p[x].to_f64() * s, ps * q[x].to_f64())) {
        return Outcome { token: x, accepted: Some(n - 1) };
    }
    // Residual in units of p: (p − (Σp/s)·q)₊ off T, p on T.
    let cg = ps / s;
    let off = |i: usize| (p[i].to_f64() - cg * q[i].to_f64()).max(0.0);
    let mut total = kernel::sum_by(v, off);
    for &t in top {
        total += p[t].to_f64() - off(t);
    }
    // Only tokens with q ≥ min_T q can be in T: the membership test is almost never reached.
    let t_min = top.iter().map(|&t| q[t].to_f64()).fold(f64::INFINITY, f64::min);
    cx.residual(src, total, |i| {
        if q[i].to_f64() >= t_min && top.contains(&i) {
            p[i].to_f64()
        } else {
            off(i)
        }
    })
}
