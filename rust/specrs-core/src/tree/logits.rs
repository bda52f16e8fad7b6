//! Warped rows straight from float32 logits, in one Rust pass per row (docs/generation.md,
//! "Warping"): temperature, max-subtract, exp, the sum, normalisation, the block sums the tree's
//! sampler walks and the owned copy the tree keeps for verification, reading the logits twice
//! (once for the maximum and the entry checks, once for the exponentials) instead of the six
//! passes of a torch softmax followed by validation and a copy.
//!
//! The law these rows define is *this* softmax of the logits (equal to torch's up to rounding).
//! Exactness does not depend on which rounding is used: the tree draws its children from the very
//! q rows it stores, and the verifier compares them with p rows made by the same kernel.

use super::dist::{checked_blocks, Dist, BLOCK};
use crate::{Error, Result};

/// Temperature and top-k of a row, as Hugging Face applies them (temperature, then top-k with the
/// ties at the k-th logit kept, then renormalisation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warp {
    pub temperature: f64,
    /// None (or ≥ V): the whole vocabulary (a dense row).
    pub top_k: Option<usize>,
}

impl Warp {
    /// Checked settings: temperature finite and > 0 (T = 0, greedy, is an arg-max, not a
    /// softmax), top_k ≥ 1.
    pub fn new(temperature: f64, top_k: Option<usize>) -> Result<Self> {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::invalid("temperature", format!("is {temperature}; must be finite and > 0 (greedy rows are an arg-max)")));
        }
        if top_k == Some(0) {
            return Err(Error::invalid("top_k", "is 0; must be ≥ 1"));
        }
        Ok(Warp { temperature, top_k })
    }
}

/// A warped row as a tree stores it: (block sums of the stored values, number of positive
/// entries, the row: dense `D32` over V, or sparse `S32` of the kept ids in decreasing logit).
pub type Warped = (Vec<f64>, usize, Dist);

/// The warped distribution of one row of logits (see the module comment). Errors name `arg`: an
/// empty row, a NaN or +inf logit, or a row whose logits are all −inf.
pub fn warped_row(arg: &str, logits: &[f32], w: &Warp) -> Result<Warped> {
    if logits.is_empty() {
        return Err(Error::invalid(arg, "is empty; a row of logits needs at least one entry"));
    }
    crate::limits::check_count(arg, logits.len(), crate::limits::MAX_VOCAB, "the length of one row")?;
    // Top-k rows take their maximum from the block maxima of the candidate pass (one read for
    // both); dense rows from one max pass.
    let top_k = w.top_k.filter(|&k| k < logits.len());
    let maxima = top_k.map(|_| block_maxima(logits));
    let (m, ok) = match &maxima {
        Some((mx, ok)) => (mx.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a }), *ok),
        None => max_and_check(logits),
    };
    if !ok {
        let i = logits.iter().position(|x| x.is_nan() || *x == f32::INFINITY).unwrap_or(0);
        return Err(Error::invalid(arg, format!("has the non-finite logit {} at index {i} (NaN and +inf are refused)", logits[i])));
    }
    if m == f32::NEG_INFINITY {
        return Err(Error::invalid(arg, "has no finite logit (every entry is -inf)"));
    }
    let inv_t = (1.0 / w.temperature) as f32;
    match (top_k, maxima) {
        (Some(k), Some((mx, _))) => sparse_row(arg, logits, &mx, m, inv_t, k),
        _ => Ok(dense_row(logits, m, inv_t)),
    }
}

/// True when this CPU runs the AVX2 + FMA kernels (the scalar ones give the same bits).
#[cfg(target_arch = "x86_64")]
fn simd() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// (max, every entry < +inf and not NaN).
fn max_and_check(x: &[f32]) -> (f32, bool) {
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { avx::max_and_check(x) };
    }
    max_and_check_scalar(x)
}

/// The scalar [`max_and_check`]: eight lanes, `if c > m { c } else { m }` per lane (the order of
/// the AVX2 `max`), then the lanes and the tail in order.
fn max_and_check_scalar(x: &[f32]) -> (f32, bool) {
    let mut mx = [f32::NEG_INFINITY; 8];
    let mut ok = true;
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            ok &= c[k] < f32::INFINITY; // false for NaN and +inf
            mx[k] = if c[k] > mx[k] { c[k] } else { mx[k] };
        }
    }
    fold_max(&mx, it.remainder(), ok)
}

fn fold_max(lanes: &[f32; 8], tail: &[f32], mut ok: bool) -> (f32, bool) {
    let mut m = lanes.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    for &v in tail {
        ok &= v < f32::INFINITY;
        m = if v > m { v } else { m };
    }
    (m, ok)
}

fn dense_row(x: &[f32], m: f32, inv_t: f32) -> Warped {
    let mut out = crate::pool::with_capacity(x.len());
    let (sums, positive) = dense_into(x, m, inv_t, &mut out);
    (sums, positive, Dist::D32(out))
}

/// exp((x − m)/T) into `out` with their f64 sum, then the normalisation in place with the block
/// sums of the stored (normalised, rounded) values: the sampler sums exactly what the row holds.
/// AVX2 + FMA when the CPU has them, else the scalar loops: the same arithmetic in the same
/// order, so the same bits either way (tested).
fn dense_into(x: &[f32], m: f32, inv_t: f32, out: &mut Vec<f32>) -> (Vec<f64>, usize) {
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe {
            let total = avx::exp_pass(x, m, inv_t, out);
            avx::normalise_pass(out, (1.0 / total) as f32)
        };
    }
    dense_scalar(x, m, inv_t, out)
}

/// The scalar [`dense_into`] (the reference of the AVX2 one).
fn dense_scalar(x: &[f32], m: f32, inv_t: f32, out: &mut Vec<f32>) -> (Vec<f64>, usize) {
    out.clear();
    out.extend(x.iter().map(|&xi| exp_nonpos((xi - m) * inv_t)));
    let mut acc = [0.0f64; 16];
    let mut it = out.chunks_exact(16);
    for c in &mut it {
        for k in 0..16 {
            acc[k] += c[k] as f64;
        }
    }
    let total = sum16(acc, it.remainder());
    let inv = (1.0 / total) as f32;
    let mut sums = Vec::with_capacity(x.len().div_ceil(BLOCK));
    let mut positive = 0usize;
    for block in out.chunks_mut(BLOCK) {
        let mut acc = [0.0f64; 8];
        let mut cnt = [0u32; 8];
        let mut it = block.chunks_exact_mut(8);
        for c in &mut it {
            for k in 0..8 {
                c[k] *= inv;
                cnt[k] += (c[k] > 0.0) as u32;
                acc[k] += c[k] as f64;
            }
        }
        let tail = it.into_remainder();
        for v in tail.iter_mut() {
            *v *= inv;
        }
        positive += cnt.iter().map(|&c| c as usize).sum::<usize>();
        let (s, p) = block_sum8(acc, tail);
        sums.push(s);
        positive += p;
    }
    (sums, positive)
}

/// The total of the exponentials: 16 f64 lanes (entry i into lane i mod 16), the tail into
/// lanes 0.., then a fixed pairwise fold (any fixed order would do: only 1/total is used).
fn sum16(mut acc: [f64; 16], tail: &[f32]) -> f64 {
    for (k, &v) in tail.iter().enumerate() {
        acc[k] += v as f64;
    }
    let mut h = [0.0f64; 8];
    for k in 0..8 {
        h[k] = acc[k] + acc[k + 8];
    }
    ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]))
}

/// A block's sum with the lane order of `validate::distribution_blocks` (entry i into lane
/// i mod 8, the tail into lanes 0.., then ((0+1)+(2+3))+((4+5)+(6+7))), and the tail's positives.
fn block_sum8(mut acc: [f64; 8], tail: &[f32]) -> (f64, usize) {
    let mut positive = 0;
    for (k, &v) in tail.iter().enumerate() {
        acc[k] += v as f64;
        positive += (v > 0.0) as usize;
    }
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])), positive)
}

/// The AVX2 + FMA kernels: eight f32 lanes per instruction, the f64 sums four lanes at a time,
/// each the exact vector form of the scalar loop above it (same operations, same order).
#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{block_sum8, fold_max, sum16, BLOCK};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn max_and_check(x: &[f32]) -> (f32, bool) {
        let n8 = x.len() / 8 * 8;
        let p = x.as_ptr();
        let inf = _mm256_set1_ps(f32::INFINITY);
        let mut mx = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        let mut i = 0;
        while i < n8 {
            let c = _mm256_loadu_ps(p.add(i));
            ok = _mm256_and_ps(ok, _mm256_cmp_ps::<_CMP_LT_OQ>(c, inf)); // false for NaN and +inf
            mx = _mm256_max_ps(c, mx); // c > mx ? c : mx, as the scalar lanes
            i += 8;
        }
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), mx);
        fold_max(&lanes, &x[n8..], _mm256_movemask_ps(ok) == 0xff)
    }

    /// [`super::block_maxima`]: per block of 64, eight lanes of `max`, then the lanes; a shorter
    /// last block by the scalar rule.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_maxima(x: &[f32]) -> (Vec<f32>, bool) {
        const B: usize = super::TOPK_BLOCK;
        let inf = _mm256_set1_ps(f32::INFINITY);
        let mut ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        let mut out = Vec::with_capacity(x.len().div_ceil(B));
        let mut tail_ok = true;
        for b in x.chunks(B) {
            if b.len() < B {
                let (m, good) = super::max_and_check_scalar(b);
                tail_ok = good;
                out.push(m);
                continue;
            }
            let p = b.as_ptr();
            let mut mx = _mm256_loadu_ps(p);
            ok = _mm256_and_ps(ok, _mm256_cmp_ps::<_CMP_LT_OQ>(mx, inf));
            for i in (8..B).step_by(8) {
                let c = _mm256_loadu_ps(p.add(i));
                ok = _mm256_and_ps(ok, _mm256_cmp_ps::<_CMP_LT_OQ>(c, inf));
                mx = _mm256_max_ps(c, mx);
            }
            let h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps::<1>(mx));
            let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
            let h = _mm_max_ss(h, _mm_shuffle_ps::<1>(h, h));
            out.push(_mm_cvtss_f32(h));
        }
        (out, tail_ok && _mm256_movemask_ps(ok) == 0xff)
    }

    /// e^y of eight lanes: [`super::exp_nonpos`] instruction for instruction.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp8(y: __m256) -> __m256 {
        let lo = _mm256_set1_ps(-87.0);
        let yc = _mm256_max_ps(y, lo);
        let t = _mm256_fmadd_ps(yc, _mm256_set1_ps(super::LOG2E), _mm256_set1_ps(super::SHIFTER));
        let kf = _mm256_sub_ps(t, _mm256_set1_ps(super::SHIFTER));
        let r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(super::LN2_HI), yc);
        let r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(super::LN2_LO), r);
        let mut s = _mm256_set1_ps(super::POLY[0]);
        for &c in &super::POLY[1..] {
            s = _mm256_fmadd_ps(s, r, _mm256_set1_ps(c));
        }
        let ki = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(super::SHIFTER.to_bits() as i32));
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(ki, _mm256_set1_epi32(127))));
        let e = _mm256_mul_ps(s, scale);
        _mm256_and_ps(e, _mm256_cmp_ps::<_CMP_GE_OQ>(y, lo))
    }

    /// Sixteen entries' f64 values into four accumulators (lanes 0–3, 4–7, 8–11, 12–15).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn add16(acc: &mut [__m256d; 4], a: __m256, b: __m256) {
        acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
        acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(a)));
        acc[2] = _mm256_add_pd(acc[2], _mm256_cvtps_pd(_mm256_castps256_ps128(b)));
        acc[3] = _mm256_add_pd(acc[3], _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(b)));
    }

    /// `out` = exp((x − m)·inv_t) (written once, no zero fill first); returns their total
    /// ([`sum16`]'s order).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_pass(x: &[f32], m: f32, inv_t: f32, out: &mut Vec<f32>) -> f64 {
        let n = x.len();
        out.clear();
        out.reserve(n);
        let (src, dst) = (x.as_ptr(), out.as_mut_ptr());
        let (mv, tv) = (_mm256_set1_ps(m), _mm256_set1_ps(inv_t));
        let mut acc = [_mm256_setzero_pd(); 4];
        let n16 = n / 16 * 16;
        let mut i = 0;
        while i < n16 {
            let a = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(src.add(i)), mv), tv));
            let b = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(src.add(i + 8)), mv), tv));
            _mm256_storeu_ps(dst.add(i), a);
            _mm256_storeu_ps(dst.add(i + 8), b);
            add16(&mut acc, a, b);
            i += 16;
        }
        for (j, &xj) in x.iter().enumerate().skip(n16) {
            dst.add(j).write(super::exp_nonpos((xj - m) * inv_t));
        }
        // SAFETY: entries 0..n were written above.
        out.set_len(n);
        let mut lanes = [0.0f64; 16];
        for (k, a) in acc.iter().enumerate() {
            _mm256_storeu_pd(lanes.as_mut_ptr().add(4 * k), *a);
        }
        sum16(lanes, &out[n16..])
    }

    /// `out` *= inv in place, with each block's sum ([`block_sum8`]'s order) and the number of
    /// positive entries.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn normalise_pass(out: &mut [f32], inv: f32) -> (Vec<f64>, usize) {
        let iv = _mm256_set1_ps(inv);
        let zero = _mm256_setzero_ps();
        let mut sums = Vec::with_capacity(out.len().div_ceil(BLOCK));
        let mut positive = 0usize;
        for block in out.chunks_mut(BLOCK) {
            let n8 = block.len() / 8 * 8;
            let p = block.as_mut_ptr();
            let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            let mut cnt = _mm256_setzero_si256();
            let mut i = 0;
            while i < n8 {
                let v = _mm256_mul_ps(_mm256_loadu_ps(p.add(i)), iv);
                _mm256_storeu_ps(p.add(i), v);
                cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(v, zero)));
                lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
                hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)));
                i += 8;
            }
            let tail = &mut block[n8..];
            for v in tail.iter_mut() {
                *v *= inv;
            }
            let mut lanes = [0.0f64; 8];
            _mm256_storeu_pd(lanes.as_mut_ptr(), lo);
            _mm256_storeu_pd(lanes.as_mut_ptr().add(4), hi);
            let mut c = [0u32; 8];
            _mm256_storeu_si256(c.as_mut_ptr().cast(), cnt);
            positive += c.iter().map(|&x| x as usize).sum::<usize>();
            let (s, pos) = block_sum8(lanes, tail);
            sums.push(s);
            positive += pos;
        }
        (sums, positive)
    }
}

/// Top-k: the k largest logits and every logit tied with the k-th (ties to the lower id first
/// among the k), softmax at temperature T over them. The k + 1 largest tell whether a tie
/// crosses the k-th place; only then is the row scanned for every tied entry.
fn sparse_row(arg: &str, x: &[f32], maxima: &[f32], m: f32, inv_t: f32, k: usize) -> Result<Warped> {
    let (vals, ids) = top_k_logits(x, maxima, k + 1);
    let tau = vals[k - 1];
    let (mut keep_v, mut keep_i): (Vec<f32>, Vec<i64>) = (vals[..k].to_vec(), ids[..k].to_vec());
    if vals[k] == tau && tau > f32::NEG_INFINITY {
        // −inf ties carry no mass and are left out (they would be zero-probability padding).
        let taken: std::collections::HashSet<i64> = keep_i.iter().copied().collect();
        for (j, &v) in x.iter().enumerate() {
            if v == tau && !taken.contains(&(j as i64)) {
                keep_v.push(v);
                keep_i.push(j as i64);
            }
        }
    }
    let e: Vec<f64> = keep_v.iter().map(|&v| exp_nonpos((v - m) * inv_t) as f64).collect();
    let total: f64 = e.iter().sum();
    let probs: Vec<f32> = e.iter().map(|&v| (v / total) as f32).collect();
    let (sums, positive) = checked_blocks(arg, Some(&keep_i), &probs)?;
    Ok((sums, positive, Dist::S32(keep_i, probs)))
}

use super::dist::TOPK_BLOCK;

/// The maximum of each block of [`TOPK_BLOCK`] logits, and whether every entry is < +inf and not
/// NaN (one vectorised read of the row).
fn block_maxima(x: &[f32]) -> (Vec<f32>, bool) {
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { avx::block_maxima(x) };
    }
    let mut ok = true;
    let maxima = x
        .chunks(TOPK_BLOCK)
        .map(|b| {
            let (m, good) = max_and_check_scalar(b);
            ok &= good;
            m
        })
        .collect();
    (maxima, ok)
}

/// The `k` largest logits of a checked row (no NaN), largest first, ties to the lower id, from
/// the block maxima of [`block_maxima`] (`dist::top_k_in_blocks`).
fn top_k_logits(x: &[f32], maxima: &[f32], k: usize) -> (Vec<f32>, Vec<i64>) {
    if maxima.len() <= k {
        let top = crate::verify::kernel::top_k_of(x, k);
        return (top.iter().map(|&i| x[i]).collect(), top.iter().map(|&i| i as i64).collect());
    }
    let m64: Vec<f64> = maxima.iter().map(|&m| m as f64).collect();
    super::dist::top_k_in_blocks(x, &m64, k)
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4; // ln 2 rounded to 10 bits: k · LN2_HI is exact
const LN2_LO: f32 = -2.121_944_4e-4;
const SHIFTER: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
/// Taylor coefficients of e^r, highest degree first (Horner).
const POLY: [f32; 8] = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];

/// e^y for y ≤ 0 in float32 with plain arithmetic (libm's `expf` is a call per entry).
/// Cody–Waite reduction y = k ln 2 + r, |r| ≤ ln 2 / 2, and a degree-7 Taylor polynomial of e^r
/// (truncation < 6e-9 relative), every multiply-add fused (`mul_add`: one rounding, so the
/// AVX2 + FMA lanes compute the same bits; on a CPU without FMA this scalar path is the slow
/// fallback); within 2 ulp of the exact value (tested). Below −87 (where e^y is below f32's
/// normal range) it returns 0: those entries are dropped, as a softmax that flushes subnormals
/// would.
#[inline(always)]
pub fn exp_nonpos(y: f32) -> f32 {
    let yc = if y > -87.0 { y } else { -87.0 }; // the AVX2 `max(y, −87)`
    let t = yc.mul_add(LOG2E, SHIFTER);
    let kf = t - SHIFTER;
    let r = (-kf).mul_add(LN2_HI, yc);
    let r = (-kf).mul_add(LN2_LO, r);
    let mut s = POLY[0];
    for &c in &POLY[1..] {
        s = s.mul_add(r, c);
    }
    let ki = (t.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32); // k ∈ [−126, 0]
    let scale = f32::from_bits(((ki + 127) as u32) << 23);
    if y >= -87.0 {
        s * scale
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let bf = b as f32;
        ((a as f64) - b).abs() / ((f32::from_bits(bf.to_bits() + 1) as f64) - bf as f64)
    }

    #[test]
    fn exp_is_within_two_ulp_and_zero_below_the_normal_range() {
        let mut worst = 0.0f64;
        let mut y = 0.0f32;
        while y > -87.0 {
            let want = (y as f64).exp();
            worst = worst.max(ulps(exp_nonpos(y), want));
            y -= 0.000_731;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert_eq!(exp_nonpos(-88.0), 0.0);
        assert_eq!(exp_nonpos(f32::NEG_INFINITY), 0.0);
    }

    fn reference(x: &[f32], t: f64) -> Vec<f64> {
        let m = x.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let e: Vec<f64> = x.iter().map(|&v| ((v as f64 - m) / t).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    fn dense(d: &Dist) -> &[f32] {
        match d {
            Dist::D32(v) => v,
            _ => panic!("expected a dense row"),
        }
    }

    /// Dense rows: the softmax within float32 rounding, Σ of the stored values = 1 (as summed by
    /// the validation pass), block sums of exactly what is stored; confident rows keep their
    /// tiny entries (summed, never 1 − the top); −inf logits get exact zeros.
    #[test]
    fn dense_rows_are_the_softmax_and_sum_what_they_hold() {
        let mut r = crate::Rng::new(3);
        let v = 1000;
        let mut rows: Vec<Vec<f32>> = (0..4).map(|_| (0..v).map(|_| (r.gumbel() * 3.0) as f32).collect()).collect();
        let mut confident = vec![0.0f32; v];
        confident[7] = 37.0; // a float32 softmax of [37, 0, 0, ...]: mass 1e-13 per other entry
        rows.push(confident);
        let mut with_inf: Vec<f32> = (0..v).map(|i| i as f32 * 0.01).collect();
        for i in (0..v).step_by(3) {
            with_inf[i] = f32::NEG_INFINITY;
        }
        rows.push(with_inf);
        for t in [0.7, 1.0, 2.5] {
            let w = Warp::new(t, None).unwrap();
            for x in &rows {
                let (sums, positive, d) = warped_row("logits", x, &w).unwrap();
                let got = dense(&d);
                let want = reference(x, t);
                let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                for ((g, w), &xi) in got.iter().zip(&want).zip(x) {
                    // float32 (x − m)/T carries a relative error ≈ 6e-8 · |x − m|/T into e^…
                    let arg = ((xi - m) as f64 / t).abs();
                    let tol = 3e-7 + 1.2e-7 * if arg.is_finite() { arg } else { 0.0 };
                    assert!((*g as f64 - w).abs() <= tol * w, "{g} vs {w}");
                    assert_eq!(*g == 0.0, *w < 1e-38);
                }
                let (vsums, stats) = crate::validate::distribution_blocks("q", got).unwrap();
                assert_eq!(vsums, sums);
                assert_eq!(stats.positive, positive);
                assert!((stats.sum - 1.0).abs() < 1e-6);
            }
        }
        let (_, positive, d) = warped_row("logits", &rows[4], &Warp::new(1.0, None).unwrap()).unwrap();
        assert_eq!(positive, v, "the confident row's small entries are kept");
        assert!(dense(&d)[0] > 0.0 && dense(&d)[0] < 1e-15);
    }

    /// The dispatched kernels (AVX2 + FMA on this CPU when it has them) give the scalar
    /// reference's bits: rows of every tail length mod 16, −inf entries, confident rows, logits
    /// far below the maximum (exact zeros), at three temperatures.
    #[test]
    fn vector_and_scalar_kernels_agree_bit_for_bit() {
        let mut r = crate::Rng::new(11);
        for len in [1usize, 7, 8, 15, 16, 17, 255, 256, 257, 1000, 4099] {
            let mut x: Vec<f32> = (0..len).map(|_| (r.gumbel() * 4.0) as f32).collect();
            if len > 3 {
                x[len / 2] = f32::NEG_INFINITY;
                x[1] = -200.0;
                x[len - 1] = 60.0; // confident: the rest is ~e^-60 and below
            }
            let (m, ok) = max_and_check(&x);
            assert_eq!((m.to_bits(), ok), {
                let (a, b) = max_and_check_scalar(&x);
                (a.to_bits(), b)
            });
            for t in [0.7f32, 1.0, 3.0] {
                let inv_t = 1.0 / t;
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let ra = dense_into(&x, m, inv_t, &mut a);
                let rb = dense_scalar(&x, m, inv_t, &mut b);
                assert_eq!(ra, rb, "len {len} T {t}");
                assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
        }
        let mut bad = vec![0.0f32; 40];
        for i in [3usize, 17, 39] {
            bad[i] = f32::NAN;
            assert!(!max_and_check(&bad).1 && !max_and_check_scalar(&bad).1, "NaN at {i}");
            bad[i] = f32::INFINITY;
            assert!(!max_and_check(&bad).1, "+inf at {i}");
            bad[i] = 0.0;
        }
        assert!(max_and_check(&bad).1);
    }

    /// The candidate pass ranks exactly as the kernel's top-k (ties to the lower id): rows with
    /// many ties, −inf entries, a peaked row, constant rows, rows of fewer than k blocks; its
    /// block maxima and entry check equal the scalar rule's.
    #[test]
    fn top_k_candidates_equal_the_kernel_top_k() {
        let mut r = crate::Rng::new(4);
        let mut rows: Vec<Vec<f32>> = Vec::new();
        for len in [100usize, 3000, 4099] {
            rows.push((0..len).map(|_| (r.uniform() * 5.0).floor() as f32).collect());
            rows.push((0..len).map(|i| if i % 3 == 0 { f32::NEG_INFINITY } else { r.gumbel() as f32 }).collect());
            rows.push((0..len).map(|i| if i == len - 5 { 30.0 } else { -(r.uniform() as f32) }).collect());
            rows.push(vec![0.5; len]);
        }
        for x in &rows {
            let (mx, ok) = block_maxima(x);
            let want_mx: Vec<f32> = x.chunks(TOPK_BLOCK).map(|b| max_and_check_scalar(b).0).collect();
            assert!(ok);
            assert_eq!(mx, want_mx);
            for k in [1usize, 2, 10, 51, 64, 200] {
                let (v, ids) = top_k_logits(x, &mx, k);
                let want = crate::verify::kernel::top_k_of(x, k);
                assert_eq!(ids.iter().map(|&i| i as usize).collect::<Vec<_>>(), want, "len {} k {k}", x.len());
                assert!(v.iter().zip(&want).all(|(&a, &j)| a == x[j]));
            }
        }
        let mut bad = vec![0.0f32; 200];
        bad[130] = f32::NAN;
        assert!(!block_maxima(&bad).1);
        bad[130] = f32::INFINITY;
        assert!(!block_maxima(&bad).1);
        bad[130] = 0.0;
        bad[199] = f32::NAN; // in the short last block
        assert!(!block_maxima(&bad).1);
    }

    #[test]
    fn top_k_keeps_ties_at_the_kth_logit_and_renormalises() {
        let x = [1.0f32, 5.0, 3.0, 3.0, 3.0, -2.0, f32::NEG_INFINITY, 4.0];
        let w = Warp::new(1.0, Some(3)).unwrap();
        let (_, positive, d) = warped_row("logits", &x, &w).unwrap();
        let Dist::S32(ids, p) = &d else { panic!("sparse expected") };
        assert_eq!(ids, &vec![1, 7, 2, 3, 4], "k = 3 plus the tied 3.0 entries");
        assert_eq!(positive, 5);
        let want = reference(&[5.0, 4.0, 3.0, 3.0, 3.0], 1.0);
        for (g, w) in p.iter().zip(&want) {
            assert!((*g as f64 - w).abs() <= 4e-7 * w);
        }
        // No tie: exactly k; a k ≥ V row is dense.
        let (_, _, d) = warped_row("logits", &x, &Warp::new(0.5, Some(2)).unwrap()).unwrap();
        assert!(matches!(&d, Dist::S32(i, _) if i == &vec![1, 7]));
        let (_, _, d) = warped_row("logits", &x, &Warp::new(0.5, Some(8)).unwrap()).unwrap();
        assert!(d.as_ref().is_dense());
        // −inf ties are not collected: a row with two finite logits and k = 4.
        let y = [f32::NEG_INFINITY, 2.0, f32::NEG_INFINITY, 1.0, f32::NEG_INFINITY, f32::NEG_INFINITY];
        let (_, positive, d) = warped_row("logits", &y, &Warp::new(1.0, Some(4)).unwrap()).unwrap();
        assert_eq!((positive, d.as_ref().len()), (2, 4));
        crate::tree::dist::check("q", d.as_ref()).unwrap();
    }

    #[test]
    fn bad_rows_and_settings_are_named() {
        let w = Warp::new(1.0, None).unwrap();
        let e = warped_row("logits[row 2]", &[0.0, f32::NAN, 1.0], &w).unwrap_err();
        assert_eq!(e.arg(), "logits[row 2]");
        assert!(e.to_string().contains("non-finite logit NaN at index 1"), "{e}");
        assert!(warped_row("logits", &[0.0, f32::INFINITY], &w).unwrap_err().to_string().contains("+inf"));
        assert!(warped_row("logits", &[f32::NEG_INFINITY; 3], &w).unwrap_err().to_string().contains("no finite logit"));
        assert!(warped_row("logits", &[], &w).is_err());
        assert_eq!(Warp::new(0.0, None).unwrap_err().arg(), "temperature");
        assert_eq!(Warp::new(f64::NAN, None).unwrap_err().arg(), "temperature");
        assert_eq!(Warp::new(1.0, Some(0)).unwrap_err().arg(), "top_k");
        // A NaN also fails a top-k row (checked before the candidate pass).
        assert!(warped_row("logits", &[0.0, f32::NAN, 1.0], &Warp::new(1.0, Some(1)).unwrap()).is_err());
    }
}
