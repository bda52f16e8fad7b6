//! α* of Hu et al.'s greedy drafts (ICLR 2025, Theorem 7; docs/theory.md §2.3): the top n−1 tokens of q
//! plus one draw from q' = q without them, renormalised:
//!
//! ```text
//!     α* = Σ_{i ∈ Top_{n−1}(q)} p(i) + Σ_i min(p(i), q'(i)).
//! ```
//!
//! SpecHub's hub-sparse law (n = 2) has the same α* (docs/theory.md §2.3): p(a) + Σ min(p, q') with a =
//! argmax q. Ties in q are broken towards the lower index, as in `verify::kernel::top_k`.

use crate::verify::kernel::{sum2_with, top_k_of, Share};
use crate::Real;

pub fn value<T: Real>(p: &[T], q: &[T], n: usize, sp: f64, _sq: f64) -> f64 {
    let top = top_k_of(q, n - 1);
    // q' = q off the top divided by the mass that remains, summed (never 1 − q(Top), which cancels
    // when q(Top) is close to 1), without overflow for a subnormal mass.
    let excluded: Vec<(usize, f64)> = top.iter().map(|&t| (t, 0.0)).collect();
    let q1 = Share::of_mass(sum2_with(q, q, &excluded, |_, y| y));
    let on_top: Vec<(usize, f64)> = top.iter().map(|&t| (t, p[t].to_f64() * sp)).collect();
    sum2_with(p, q, &on_top, |x, y| (x * sp).min(q1.of(y)))
}

/// Theorem 7 for every n in `ns` (each ≥ 2, ≤ |supp q|) from one top-(max n − 1) selection and
/// one pass over the vocabulary with one accumulator per n (each in the same order as [`value`]).
pub fn values<T: Real>(p: &[T], q: &[T], ns: &[usize], sp: f64, sq: f64) -> Vec<f64> {
    let n_max = ns.iter().copied().max().unwrap_or(2);
    let top = top_k_of(q, n_max - 1);
    // rank[i] = position of token i among the top tokens (u32::MAX when it is not one).
    let mut rank = vec![u32::MAX; q.len()];
    for (r, &i) in top.iter().enumerate() {
        rank[i] = r as u32;
    }
    let fixed: Vec<u32> = ns.iter().map(|&n| (n - 1) as u32).collect();
    // The mass off each n's top, summed (never 1 − q(Top)).
    let mut rest = vec![0.0f64; ns.len()];
    for (&x, &r) in q.iter().zip(&rank) {
        let x = x.to_f64() * sq;
        for (acc, &f) in rest.iter_mut().zip(&fixed) {
            if r >= f {
                *acc += x;
            }
        }
    }
    let mut alpha = vec![0.0f64; ns.len()];
    for ((&pi, &qi), &r) in p.iter().zip(q).zip(&rank) {
        let (pi, qi) = (pi.to_f64() * sp, qi.to_f64() * sq);
        for ((acc, &f), &m) in alpha.iter_mut().zip(&fixed).zip(&rest) {
            *acc += if r < f { pi } else { pi.min(qi / m) };
        }
    }
    alpha
}
