//! K-SEQ (SpecTr, Sun et al., NeurIPS 2023; mdsd.md §6.3) for n i.i.d. drafts.
//!
//! With β(ρ) = Σ min(p/ρ, q) and p_acc(ρ) = 1 − (1 − β(ρ))ⁿ, each draft is accepted in turn with
//! probability min(1, p(x)/(ρ q(x))); if all are rejected the output is drawn from
//! norm((p − γ·min(p/ρ, q))₊) with γ = p_acc/β. The accepted part of the output law is then
//! γ·min(p/ρ, q), which is ≤ p exactly when γ ≤ ρ, i.e. when f(ρ) = p_acc(ρ) − ρβ(ρ) ≤ 0. So
//! **any** ρ with f(ρ) ≤ 0 gives a lossless verifier; SpecTr takes the root ρ* ∈ [1, n] (f is
//! decreasing, f(1) ≥ 0 ≥ f(n)). We bisect and keep the upper end, where f ≤ 0 holds by
//! construction, so exactness never depends on how far the bisection got.
//!
//! Cost: one pass collecting the tokens whose ratio p/q lies in [1, n) (the others are on a fixed
//! side of min(p/ρ, q) for every ρ ∈ [1, n] and fold into two constants), then a bisection over
//! that shrinking set, then one pass for the residual mass and one pick.

use super::source::Source;
use super::{kernel, ratio, Ctx, Outcome};
use crate::Real;

/// β(ρ) = a/ρ + b + Σ_{mid} min(p/ρ, q), with the folded constants a (Σp where p/q ≤ lo) and b
/// (Σq where p/q ≥ hi).
struct Split {
    a: f64,
    b: f64,
    mid: Vec<(f64, f64, f64)>, // (ratio, p, q)
}

fn beta(sp: &Split, rho: f64) -> f64 {
    let mut s = sp.a / rho + sp.b;
    for &(_, p, q) in &sp.mid {
        s += (p / rho).min(q);
    }
    s
}

fn f(beta: f64, rho: f64, n: i32) -> (f64, f64) {
    let p_acc = 1.0 - (1.0 - beta).max(0.0).powi(n);
    (p_acc - rho * beta, p_acc)
}

/// The K-SEQ ratio ρ (upper end of the bisection bracket, f(ρ) ≤ 0), β(ρ) and γ = p_acc/β.
pub(crate) fn solve<T: Real>(p: &[T], q: &[T], ps: f64, qs: f64, n: usize) -> (f64, f64, f64) {
    let ni = n as i32;
    let (ip, iq) = (1.0 / ps, 1.0 / qs);
    let (mut lo, mut hi) = (1.0f64, n as f64);
    let mut sp = Split { a: 0.0, b: 0.0, mid: Vec::new() };
    for i in 0..p.len() {
        let (pi, qi) = (p[i].to_f64() * ip, q[i].to_f64() * iq);
        if pi <= lo * qi {
            sp.a += pi;
        } else if pi >= hi * qi {
            sp.b += qi;
        } else {
            sp.mid.push((pi / qi, pi, qi));
        }
    }
    let b1 = beta(&sp, 1.0);
    let (f1, pa1) = f(b1, 1.0, ni);
    if f1 <= 0.0 || n == 1 {
        return (1.0, b1, if b1 > 0.0 { (pa1 / b1).min(1.0) } else { 0.0 });
    }
    let mut b_hi = beta(&sp, hi);
    let mut pa_hi = f(b_hi, hi, ni).1;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if !(mid > lo && mid < hi) {
            break;
        }
        let bm = beta(&sp, mid);
        let (fm, pam) = f(bm, mid, ni);
        if fm <= 0.0 {
            hi = mid;
            b_hi = bm;
            pa_hi = pam;
        } else {
            lo = mid;
        }
        // Fold the tokens now on a fixed side of the bracket into the constants.
        let (l, h) = (lo, hi);
        let (mut a, mut b) = (sp.a, sp.b);
        sp.mid.retain(|&(r, p, q)| {
            if r <= l {
                a += p;
                false
            } else if r >= h {
                b += q;
                false
            } else {
                true
            }
        });
        sp.a = a;
        sp.b = b;
    }
    let gamma = if b_hi > 0.0 { (pa_hi / b_hi).min(hi) } else { 0.0 };
    (hi, b_hi, gamma)
}

pub(crate) fn kseq<T: Real, S: Source>(cx: &Ctx<'_, T>, src: &mut S) -> Outcome {
    let (p, q, v) = (cx.p, cx.q, cx.p.len());
    let (ps, qs) = (cx.sums.p, cx.sums.q);
    let (rho, _beta, gamma) = solve(p, q, ps, qs, cx.drafts.len());
    for (k, &x) in cx.drafts.iter().enumerate() {
        // min(1, p(x) / (ρ q(x))) on the normalised p, q.
        if src.coin(ratio(p[x].to_f64() * qs, rho * q[x].to_f64() * ps)) {
            return Outcome { token: x, accepted: Some(k) };
        }
    }
    let (ip, iq) = (1.0 / ps, 1.0 / qs);
    let w = |i: usize| {
        let (pi, qi) = (p[i].to_f64() * ip, q[i].to_f64() * iq);
        (pi - gamma * (pi / rho).min(qi)).max(0.0)
    };
    let total = kernel::sum_by(v, w);
    cx.residual(src, total, w)
}
