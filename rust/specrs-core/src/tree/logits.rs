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
    let (m, ok) = max_and_check(logits);
    if !ok {
        let i = logits.iter().position(|x| x.is_nan() || *x == f32::INFINITY).unwrap_or(0);
        return Err(Error::invalid(arg, format!("has the non-finite logit {} at index {i} (NaN and +inf are refused)", logits[i])));
    }
    if m == f32::NEG_INFINITY {
        return Err(Error::invalid(arg, "has no finite logit (every entry is -inf)"));
    }
    let inv_t = (1.0 / w.temperature) as f32;
    match w.top_k {
        Some(k) if k < logits.len() => sparse_row(arg, logits, m, inv_t, k),
        _ => Ok(dense_row(logits, m, inv_t)),
    }
}

/// (max, every entry < +inf and not NaN), eight lanes so that it vectorises (AVX2 when the CPU
/// has it; the same arithmetic either way).
fn max_and_check(x: &[f32]) -> (f32, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(x: &[f32]) -> (f32, bool) {
            max_and_check_impl(x)
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2.
            return unsafe { avx2(x) };
        }
    }
    max_and_check_impl(x)
}

#[inline(always)]
fn max_and_check_impl(x: &[f32]) -> (f32, bool) {
    let mut mx = [f32::NEG_INFINITY; 8];
    let mut ok = [true; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            ok[k] &= c[k] < f32::INFINITY; // false for NaN and +inf
            mx[k] = if c[k] > mx[k] { c[k] } else { mx[k] };
        }
    }
    let mut m = mx.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    let mut good = ok.iter().all(|&b| b);
    for &v in it.remainder() {
        good &= v < f32::INFINITY;
        m = if v > m { v } else { m };
    }
    (m, good)
}

fn dense_row(x: &[f32], m: f32, inv_t: f32) -> Warped {
    let mut out = crate::pool::with_capacity(x.len());
    let (sums, positive) = dense_into(x, m, inv_t, &mut out);
    (sums, positive, Dist::D32(out))
}

fn dense_into(x: &[f32], m: f32, inv_t: f32, out: &mut Vec<f32>) -> (Vec<f64>, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(x: &[f32], m: f32, inv_t: f32, out: &mut Vec<f32>) -> (Vec<f64>, usize) {
            dense_impl(x, m, inv_t, out)
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2.
            return unsafe { avx2(x, m, inv_t, out) };
        }
    }
    dense_impl(x, m, inv_t, out)
}

/// exp((x − m)/T) into `out` with their sum, then the normalisation in place with the block sums
/// of the stored (normalised, rounded) values: the sampler sums exactly what the row holds.
/// Plain loops over the entries: both vectorise (AVX2 when the CPU has it).
#[inline(always)]
fn dense_impl(x: &[f32], m: f32, inv_t: f32, out: &mut Vec<f32>) -> (Vec<f64>, usize) {
    out.clear();
    out.resize(x.len(), 0.0);
    let mut total = 0.0f64;
    for (ob, xb) in out.chunks_mut(BLOCK).zip(x.chunks(BLOCK)) {
        for (o, &xi) in ob.iter_mut().zip(xb) {
            *o = exp_nonpos((xi - m) * inv_t);
        }
        total += lane_sum(ob);
    }
    let inv = (1.0 / total) as f32;
    let mut sums = Vec::with_capacity(x.len().div_ceil(BLOCK));
    let mut positive = 0usize;
    for block in out.chunks_mut(BLOCK) {
        let mut cnt = [0u32; 8];
        let mut it = block.chunks_exact_mut(8);
        for c in &mut it {
            for k in 0..8 {
                c[k] *= inv;
                cnt[k] += (c[k] > 0.0) as u32;
            }
        }
        for v in it.into_remainder() {
            *v *= inv;
            positive += (*v > 0.0) as usize;
        }
        positive += cnt.iter().map(|&c| c as usize).sum::<usize>();
        sums.push(lane_sum(block));
    }
    (sums, positive)
}

/// Σ of a block in f64, eight independent lanes (vectorises; fixed order, so deterministic).
#[inline(always)]
fn lane_sum(b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut it = b.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            acc[k] += c[k] as f64;
        }
    }
    for (k, &v) in it.remainder().iter().enumerate() {
        acc[k] += v as f64;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Top-k: the k largest logits and every logit tied with the k-th (ties to the lower id first
/// among the k), softmax at temperature T over them. The k + 1 largest tell whether a tie
/// crosses the k-th place; only then is the row scanned for every tied entry.
fn sparse_row(arg: &str, x: &[f32], m: f32, inv_t: f32, k: usize) -> Result<Warped> {
    let (vals, ids) = super::dist::top_k_rows(x, x.len(), k + 1)?;
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

/// e^y for y ≤ 0 in float32 with plain arithmetic, so that a loop over a row vectorises (libm's
/// `expf` is a call per entry). Cody–Waite reduction y = k ln 2 + r, |r| ≤ ln 2 / 2, and a
/// degree-7 Taylor polynomial of e^r (truncation < 6e-9 relative); within 2 ulp of the exact
/// value (tested). Below −87 (where e^y is below f32's normal range) it returns 0: those entries
/// are dropped, as a softmax that flushes subnormals would.
#[inline(always)]
pub fn exp_nonpos(y: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // ln 2 rounded to 10 bits: k · LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SHIFTER: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let yc = if y < -87.0 { -87.0 } else { y };
    let t = yc * LOG2E + SHIFTER;
    let kf = t - SHIFTER;
    let r = (yc - kf * LN2_HI) - kf * LN2_LO;
    let mut s = 1.0 / 5040.0;
    s = s * r + 1.0 / 720.0;
    s = s * r + 1.0 / 120.0;
    s = s * r + 1.0 / 24.0;
    s = s * r + 1.0 / 6.0;
    s = s * r + 0.5;
    s = s * r + 1.0;
    s = s * r + 1.0;
    let ki = (t.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32); // k ∈ [−126, 0]
    let scale = f32::from_bits(((ki + 127) as u32) << 23);
    if y < -87.0 {
        0.0
    } else {
        s * scale
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
