//! α* of Hu et al.'s greedy drafts (ICLR 2025, Theorem 7; mdsd.md §4.3): the top n−1 tokens of q
//! plus one draw from q' = q without them, renormalised:
//!
//! ```text
//!     α* = Σ_{i ∈ Top_{n−1}(q)} p(i) + Σ_i min(p(i), q'(i)).
//! ```
//!
//! SpecHub's hub-sparse law (n = 2) has the same α* (mdsd.md §5): p(a) + Σ min(p, q') with a =
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
