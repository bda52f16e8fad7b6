//! α* for conditional-Poisson drafts: an n-subset S with probability ∝ Π_{i∈S} q_i. Then
//! Q(H) = e_n(q|_H) / e_n(q) with e_n the elementary symmetric polynomial — the formula Hu et al.
//! print for "without replacement" (docs/theory.md §2.3). It is q-convex, so the prefix scan applies.
//!
//! e_j(q|_H) ≤ q(H)^j / j! ≤ 1, so the DP e_j ← e_j + q_x e_{j−1} cannot overflow; it can only
//! underflow, which costs nothing while e_n(q) ≥ 1e-250 (the lost terms are < 1e-300 relative to
//! it). Below that (very peaked q, large n) the DP runs on logarithms.

use super::prep::{self, Sorted};
use crate::{cancel, Real};

pub fn value<T: Real>(p: &[T], q: &[T], n: usize, sp: f64, sq: f64) -> f64 {
    values(&prep::sorted(p, q, sp, sq), &[n])[0]
}

/// α* for every n in `ns` (each ≥ 1, ≤ |supp q|) from one DP: e_j for j ≤ max n is the same
/// recursion whatever the largest j kept, so each value equals the single-n one bit for bit.
pub fn values(s: &Sorted, ns: &[usize]) -> Vec<f64> {
    let k = s.q.len();
    let n_max = ns.iter().copied().max().unwrap_or(1);
    let start = 0.0f64.min(s.p_total - 1.0); // H = supp q: Q = 1
    let mut e = vec![0.0f64; n_max + 1];
    e[0] = 1.0;
    for &x in &s.q {
        if cancel::check(n_max).is_err() {
            break; // Ctrl-C: the caller discards the result
        }
        for j in (1..=n_max).rev() {
            e[j] += x * e[j - 1];
        }
    }
    let total = e.clone();
    let mut best: Vec<f64> = vec![start; ns.len()];
    if ns.iter().any(|&n| total[n] >= 1e-250) {
        e.fill(0.0);
        e[0] = 1.0;
        let mut cp = 0.0f64;
        for i in 0..k.saturating_sub(1) {
            if cancel::check(n_max).is_err() {
                break; // Ctrl-C: the caller discards the result
            }
            let x = s.q[i];
            for j in (1..=n_max).rev() {
                e[j] += x * e[j - 1];
            }
            cp += s.p[i];
            for (b, &n) in best.iter_mut().zip(ns) {
                if total[n] >= 1e-250 {
                    *b = b.min(cp - e[n] / total[n]);
                }
            }
        }
    }
    for (b, &n) in best.iter_mut().zip(ns) {
        if total[n].is_nan() || total[n] < 1e-250 {
            *b = log_scan(s, n, start);
        }
    }
    best.iter().map(|b| 1.0 + b).collect()
}

/// The scan on logarithms, for e_n(q) < 1e-250 (very peaked q, large n).
fn log_scan(s: &Sorted, n: usize, start: f64) -> f64 {
    let k = s.q.len();
    let mut best = start;
    let log_total = log_esym(&s.q, n);
    let mut le = vec![f64::NEG_INFINITY; n + 1];
    le[0] = 0.0;
    let mut cp = 0.0f64;
    for i in 0..k.saturating_sub(1) {
        if cancel::check(n).is_err() {
            break; // Ctrl-C: the caller discards the result
        }
        let lx = s.q[i].ln();
        for j in (1..=n).rev() {
            le[j] = log_add(le[j], lx + le[j - 1]);
        }
        cp += s.p[i];
        best = best.min(cp - (le[n] - log_total).exp());
    }
    best
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
        if cancel::check(n).is_err() {
            break;
        }
        let lx = x.ln();
        for j in (1..=n).rev() {
            le[j] = log_add(le[j], lx + le[j - 1]);
        }
    }
    le[n]
}
