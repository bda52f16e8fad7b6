//! α* for conditional-Poisson drafts: an n-subset S with probability ∝ Π_{i∈S} q_i. Then
//! Q(H) = e_n(q|_H) / e_n(q) with e_n the elementary symmetric polynomial — the formula Hu et al.
//! print for "without replacement" (mdsd.md §3.5). It is q-convex, so the prefix scan applies.
//!
//! e_j(q|_H) ≤ q(H)^j / j! ≤ 1, so the DP e_j ← e_j + q_x e_{j−1} cannot overflow; it can only
//! underflow, which costs nothing while e_n(q) ≥ 1e-250 (the lost terms are < 1e-300 relative to
//! it). Below that (very peaked q, large n) the DP runs on logarithms.

use super::prep;
use crate::Real;

pub fn value<T: Real>(p: &[T], q: &[T], n: usize, sp: f64, sq: f64) -> f64 {
    let s = prep::sorted(p, q, sp, sq);
    let k = s.q.len();
    let mut best = 0.0f64.min(s.p_total - 1.0); // H = supp q: Q = 1
    let mut e = vec![0.0f64; n + 1];
    e[0] = 1.0;
    for &x in &s.q {
        for j in (1..=n).rev() {
            e[j] += x * e[j - 1];
        }
    }
    let total = e[n];
    if total >= 1e-250 {
        e.fill(0.0);
        e[0] = 1.0;
        let mut cp = 0.0f64;
        for i in 0..k.saturating_sub(1) {
            let x = s.q[i];
            for j in (1..=n).rev() {
                e[j] += x * e[j - 1];
            }
            cp += s.p[i];
            best = best.min(cp - e[n] / total);
        }
    } else {
        let log_total = log_esym(&s.q, n);
        let mut le = vec![f64::NEG_INFINITY; n + 1];
        le[0] = 0.0;
        let mut cp = 0.0f64;
        for i in 0..k.saturating_sub(1) {
            let lx = s.q[i].ln();
            for j in (1..=n).rev() {
                le[j] = log_add(le[j], lx + le[j - 1]);
            }
            cp += s.p[i];
            best = best.min(cp - (le[n] - log_total).exp());
        }
    }
    1.0 + best
}

fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
}

fn log_esym(q: &[f64], n: usize) -> f64 {
    let mut le = vec![f64::NEG_INFINITY; n + 1];
    le[0] = 0.0;
    for &x in q {
        let lx = x.ln();
        for j in (1..=n).rev() {
            le[j] = log_add(le[j], lx + le[j - 1]);
        }
    }
    le[n]
}
