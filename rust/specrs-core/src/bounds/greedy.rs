//! α* of Hu et al.'s greedy drafts (ICLR 2025, Theorem 7; mdsd.md §4.3): the top n−1 tokens of q
//! plus one draw from q' = q without them, renormalised:
//!
//! ```text
//!     α* = Σ_{i ∈ Top_{n−1}(q)} p(i) + Σ_i min(p(i), q'(i)).
//! ```
//!
//! SpecHub's hub-sparse law (n = 2) has the same α* (mdsd.md §5): p(a) + Σ min(p, q') with a =
//! argmax q. Ties in q are broken towards the lower index, as in [`crate::law::top_tokens`].

use crate::law::top_tokens;
use crate::Real;

pub fn value<T: Real>(p: &[T], q: &[T], n: usize, sp: f64, sq: f64) -> f64 {
    let top = top_tokens(q, n - 1);
    let mut in_top = vec![false; q.len()];
    for &i in &top {
        in_top[i] = true;
    }
    // 1 − q(Top) as the sum of the other tokens: no cancellation when q(Top) is close to 1.
    let rest: f64 = q.iter().zip(&in_top).filter(|(_, &t)| !t).map(|(&x, _)| x.to_f64() * sq).sum();
    let mut alpha = 0.0f64;
    for ((&pi, &qi), &t) in p.iter().zip(q).zip(&in_top) {
        let pi = pi.to_f64() * sp;
        alpha += if t { pi } else { pi.min(qi.to_f64() * sq / rest) };
    }
    alpha
}
