//! Shared preparation: validation, normalisation and the q/p ordering of Hu et al.'s sorted-prefix
//! scan (mdsd.md §3.3).
//!
//! Inputs are accepted when they sum to 1 within `T::NORM_TOL`; every formula then uses the
//! normalised vectors p / Σp and q / Σq, so that e.g. Q(all of supp q) = 1 exactly as in the draft
//! laws of [`crate::law::scheme_law`].

use crate::law::check_scheme_args;
use crate::names::Scheme;
use crate::{validate, Error, Real, Result};

/// Validates p, q and n for `scheme` and returns the normalising factors (1/Σp, 1/Σq).
///
/// One fused pass over both vectors checks finiteness and signs, sums them and counts the support
/// of q; only when something is wrong do the per-argument validators run again to word the error
/// (same messages as [`crate::validate`] and [`check_scheme_args`]).
pub fn check<T: Real>(p: &[T], q: &[T], n: usize, scheme: Scheme) -> Result<(f64, f64)> {
    let fused = if p.len() == q.len() && !p.is_empty() { scan(p, q) } else { None };
    let Some((sp, sq, support)) = fused else {
        return slow_check(p, q, n, scheme);
    };
    if (sp - 1.0).abs() > T::NORM_TOL || (sq - 1.0).abs() > T::NORM_TOL {
        return slow_check(p, q, n, scheme);
    }
    validate::positive_n("n", n)?;
    if scheme == Scheme::SpecHub && n != 2 {
        return Err(Error::invalid("n", format!("is {n} but the spechub scheme is defined for n = 2 only")));
    }
    if scheme.distinct() && n > support {
        return Err(Error::invalid(
            "n",
            format!("is {n} but `q` has only {support} tokens with positive probability; this scheme draws distinct tokens"),
        ));
    }
    Ok((1.0 / sp, 1.0 / sq))
}

fn slow_check<T: Real>(p: &[T], q: &[T], n: usize, scheme: Scheme) -> Result<(f64, f64)> {
    let sp = validate::distribution("p", p)?;
    validate::same_len("p", p.len(), "q", q.len())?;
    let sq = validate::distribution("q", q)?;
    check_scheme_args(q, n, scheme)?;
    Ok((1.0 / sp, 1.0 / sq))
}

/// (Σp, Σq, |supp q|) when every entry is finite and ≥ 0, else None.
fn scan<T: Real>(p: &[T], q: &[T]) -> Option<(f64, f64, usize)> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2.
            return unsafe { scan_avx2(p, q) };
        }
    }
    scan_impl(p, q)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2<T: Real>(p: &[T], q: &[T]) -> Option<(f64, f64, usize)> {
    scan_impl(p, q)
}

#[inline(always)]
fn scan_impl<T: Real>(p: &[T], q: &[T]) -> Option<(f64, f64, usize)> {
    // A NaN or ±inf entry makes its sum non-finite and a negative one makes its minimum negative,
    // so sums and minima are all the checks needed. Four lanes so that the loop vectorises.
    let (mut sp, mut sq, mut mp, mut mq, mut sup) = ([0.0f64; 4], [0.0f64; 4], [0.0f64; 4], [0.0f64; 4], [0.0f64; 4]);
    let pc = p.chunks_exact(4);
    let qc = q.chunks_exact(4);
    let (pr, qr) = (pc.remainder(), qc.remainder());
    for (a, b) in pc.zip(qc) {
        for k in 0..4 {
            let (x, y) = (a[k].to_f64(), b[k].to_f64());
            sp[k] += x;
            sq[k] += y;
            mp[k] = if x < mp[k] { x } else { mp[k] };
            mq[k] = if y < mq[k] { y } else { mq[k] };
            sup[k] += if y > 0.0 { 1.0 } else { 0.0 };
        }
    }
    for (a, b) in pr.iter().zip(qr) {
        let (x, y) = (a.to_f64(), b.to_f64());
        sp[0] += x;
        sq[0] += y;
        mp[0] = if x < mp[0] { x } else { mp[0] };
        mq[0] = if y < mq[0] { y } else { mq[0] };
        sup[0] += if y > 0.0 { 1.0 } else { 0.0 };
    }
    let total = |v: [f64; 4]| (v[0] + v[1]) + (v[2] + v[3]);
    let (tp, tq) = (total(sp), total(sq));
    let min = mp.iter().chain(&mq).fold(0.0f64, |m, &x| if x < m { x } else { m });
    (tp.is_finite() && tq.is_finite() && min >= 0.0).then_some((tp, tq, total(sup) as usize))
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
    // The key is the bit pattern of p/q: for non-negative f64 (including +inf) the bits order
    // exactly like the values, and correctly rounded division keeps the order of the true ratios.
    let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(p.len());
    for (i, (&pi, &qi)) in p.iter().zip(q).enumerate() {
        let qi = qi.to_f64() * sq;
        if qi > 0.0 {
            keyed.push(((pi.to_f64() * sp / qi).to_bits(), i as u32));
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
/// (mdsd.md §1.3).
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
