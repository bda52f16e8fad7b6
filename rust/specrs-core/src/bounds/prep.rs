//! Shared preparation: validation, normalisation and the q/p ordering of Hu et al.'s sorted-prefix
//! scan (docs/theory.md §2.2).
//!
//! Inputs are accepted when they sum to 1 within `T::NORM_TOL`; every formula then uses the
//! normalised vectors p / Σp and q / Σq, so that e.g. Q(all of supp q) = 1 exactly as in the draft
//! laws of [`crate::law::scheme_law`].

use crate::law::check_n;
use crate::names::Scheme;
use crate::verify::kernel::SMALL;
use crate::{validate, Real, Result};

/// Validates p, q and n for `scheme` and returns the normalising factors (1/Σp, 1/Σq): one
/// vectorised pass per vector ([`validate::pair`]), whose support count of q serves the n check.
pub fn check<T: Real>(p: &[T], q: &[T], n: usize, scheme: Scheme) -> Result<(f64, f64)> {
    let (ps, qs) = validate::pair(p, q)?;
    check_n(n, scheme, qs.positive)?;
    Ok((1.0 / ps.sum, 1.0 / qs.sum))
}

/// Tokens with q > 0 in the order of the prefix scan: p/q ascending (q/p descending), so tokens
/// with p = 0 come first. Tokens with q = 0 are left out: adding one to H raises p(H) and leaves
/// every draft law's Q(H) unchanged, so they never lower f(H) = p(H) − Q(H).
pub struct Sorted {
    pub p: Vec<f64>,
    pub q: Vec<f64>,
    /// Σ of the normalised p over the listed tokens (= p(supp q)).
    pub p_total: f64,
}

pub fn sorted<T: Real>(p: &[T], q: &[T], sp: f64, sq: f64) -> Sorted {
    // The key is the bit pattern of p/q: for non-negative f64 the bits order exactly like the
    // values, and correctly rounded division keeps the order of the true ratios. A ratio that
    // overflows (q subnormal, below p/1.8e308) is keyed by (p·2^-600)/q with the top bit set:
    // after every finite ratio, still in order among themselves. Their order matters: with
    // q = (1, 3e-310, 7e-310) the second draft without replacement is one of the two tiny tokens.
    let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(p.len());
    for (i, (&pi, &qi)) in p.iter().zip(q).enumerate() {
        let qi = qi.to_f64() * sq;
        if qi > 0.0 {
            let pi = pi.to_f64() * sp;
            let r = pi / qi;
            let key = if r.is_finite() { r.to_bits() } else { (1 << 63) | ((pi * SMALL) / qi).to_bits() };
            keyed.push((key, i as u32));
        }
    }
    keyed.sort_unstable();
    let mut out = Sorted { p: Vec::with_capacity(keyed.len()), q: Vec::with_capacity(keyed.len()), p_total: 0.0 };
    for &(_, i) in &keyed {
        let pi = p[i as usize].to_f64() * sp;
        out.p.push(pi);
        out.q.push(q[i as usize].to_f64() * sq);
        out.p_total += pi;
    }
    out
}

/// Σ_x min(p(x), q(x)) = 1 − TV(p, q) on the normalised vectors: α* for n = 1 under every scheme
/// (docs/theory.md §4.1).
pub fn overlap<T: Real>(p: &[T], q: &[T], sp: f64, sq: f64) -> f64 {
    p.iter().zip(q).map(|(&a, &b)| (a.to_f64() * sp).min(b.to_f64() * sq)).sum()
}

/// x^n by binary exponentiation: exact exponent for any n (`powi` takes an i32), relative error
/// about log2(n) ulps.
#[inline]
pub fn pown(x: f64, n: usize) -> f64 {
    let (mut base, mut e, mut acc) = (x, n, 1.0f64);
    while e > 0 {
        if e & 1 == 1 {
            acc *= base;
        }
        e >>= 1;
        if e > 0 {
            base *= base;
        }
    }
    acc
}
