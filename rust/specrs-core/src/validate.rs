//! Input validation shared by every public entry point. Each check names the argument it is
//! about, so the Python user sees e.g. "invalid argument `q`: negative entry -0.1 at index 4".
//!
//! Every probability row of the crate (bounds, verifiers, trees, sampling, flow) is validated by
//! the one vectorised pass of [`row_blocks`]: finite, non-negative, Σ = 1 within `T::NORM_TOL`,
//! returning the sum, the number of positive entries and (for the tree's samplers) block sums.

use crate::{limits, Error, Real, Result};

/// Entries per block of the validation pass; [`distribution_blocks`] returns one sum per block
/// (the tree's without-replacement sampler walks these instead of the whole row).
pub const BLOCK: usize = 256;
/// Independent accumulators per block, so the loop vectorises and is not bound by the latency of
/// one chain of additions (a single running sum cannot be reordered by the compiler).
const LANES: usize = 8;

/// What validating one row yields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowStats {
    /// Σ v in a fixed order (eight lanes per block of [`BLOCK`], then the block sums in order), so
    /// it is bitwise the same on every platform; callers normalise by it.
    pub sum: f64,
    /// Number of entries > 0 (the support size).
    pub positive: usize,
}

/// Checks that `v` is a probability vector: non-empty, finite, non-negative, and summing to 1
/// within `T::NORM_TOL` (1e-6 for f64, 1e-4 for f32). Returns the f64 sum, which callers may use
/// to renormalise.
pub fn distribution<T: Real>(arg: &str, v: &[T]) -> Result<f64> {
    row(arg, v).map(|s| s.sum)
}

/// [`distribution`], also returning the number of positive entries.
pub fn row<T: Real>(arg: &str, v: &[T]) -> Result<RowStats> {
    checked(arg, v, |_, _| ())
}

/// [`row`], also returning the sum of each block of [`BLOCK`] entries (the last one shorter).
pub fn distribution_blocks<T: Real>(arg: &str, v: &[T]) -> Result<(Vec<f64>, RowStats)> {
    let mut sums = Vec::with_capacity(v.len().div_ceil(BLOCK));
    let stats = checked(arg, v, |s, _| sums.push(s))?;
    Ok((sums, stats))
}

/// [`distribution_blocks`], also appending a copy of `v` to `out` in the same pass (each block
/// is copied while it is in cache: one read of the row instead of two, for callers that keep it).
pub fn distribution_blocks_into<T: Real>(arg: &str, v: &[T], out: &mut Vec<T>) -> Result<(Vec<f64>, RowStats)> {
    let mut sums = Vec::with_capacity(v.len().div_ceil(BLOCK));
    let stats = checked(arg, v, |s, block| {
        sums.push(s);
        out.extend_from_slice(block);
    })?;
    Ok((sums, stats))
}

/// p and q validated as distributions over one vocabulary (`p` first, then the lengths, then
/// `q`, each error naming its argument). Two single-row passes: as fast as a fused p+q pass
/// (each entry is read once either way) and one code path for every caller.
pub fn pair<T: Real>(p: &[T], q: &[T]) -> Result<(RowStats, RowStats)> {
    let ps = row("p", p)?;
    same_len("p", p.len(), "q", q.len())?;
    let qs = row("q", q)?;
    Ok((ps, qs))
}

fn checked<T: Real, F: FnMut(f64, &[T])>(arg: &str, v: &[T], sink: F) -> Result<RowStats> {
    if v.is_empty() {
        return Err(Error::invalid(arg, "is empty; a distribution needs at least one entry"));
    }
    limits::check_count(arg, v.len(), limits::MAX_VOCAB, "the length of one distribution")?;
    let (sum, positive, entries_ok) = scan(v, sink);
    if !entries_ok {
        if let Some(e) = bad_entry(arg, v) {
            return Err(e);
        }
        // Every entry is finite and ≥ 0 but the sum overflowed: reported by the sum check below.
    }
    if (sum - 1.0).abs() > T::NORM_TOL {
        return Err(Error::invalid(arg, format!("sums to {sum:.12} but must sum to 1 within {:e} ({} input)", T::NORM_TOL, T::DTYPE)));
    }
    Ok(RowStats { sum, positive })
}

/// The first entry that is non-finite or negative, worded (cold path: only after a failed scan).
#[cold]
fn bad_entry<T: Real>(arg: &str, v: &[T]) -> Option<Error> {
    let i = v.iter().position(|x| !(x.to_f64().is_finite() && x.to_f64() >= 0.0))?;
    let x = v[i].to_f64();
    let what = if x.is_finite() { "negative" } else { "non-finite" };
    Some(Error::invalid(arg, format!("{what} entry {} at index {i}", show(x))))
}

/// (Σ v, #{v > 0}, every entry finite and ≥ 0), calling `sink` with each block sum and block. AVX2 when the
/// CPU has it (f32 → f64 conversion four at a time); the lane structure, hence the sum, is the
/// same either way.
#[inline]
fn scan<T: Real, F: FnMut(f64, &[T])>(v: &[T], sink: F) -> (f64, usize, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2.
            return unsafe { scan_avx2(v, sink) };
        }
    }
    scan_impl(v, sink)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2<T: Real, F: FnMut(f64, &[T])>(v: &[T], sink: F) -> (f64, usize, bool) {
    scan_impl(v, sink)
}

#[inline(always)]
fn scan_impl<T: Real, F: FnMut(f64, &[T])>(v: &[T], mut sink: F) -> (f64, usize, bool) {
    let (mut total, mut positive, mut min) = (0.0f64, 0usize, 0.0f64);
    for chunk in v.chunks(BLOCK) {
        // A NaN or ±inf entry makes the block sum non-finite and a negative one shows in the
        // minimum, so sums and minima are all the entry checks needed.
        let mut acc = [0.0f64; LANES];
        let mut mn = [0.0f64; LANES];
        let mut cnt = [0usize; LANES];
        let mut it = chunk.chunks_exact(LANES);
        for c in &mut it {
            for k in 0..LANES {
                let x = c[k].to_f64();
                acc[k] += x;
                mn[k] = if x < mn[k] { x } else { mn[k] };
                cnt[k] += (x > 0.0) as usize;
            }
        }
        for (k, &x) in it.remainder().iter().enumerate() {
            let x = x.to_f64();
            acc[k] += x;
            mn[k] = if x < mn[k] { x } else { mn[k] };
            cnt[k] += (x > 0.0) as usize;
        }
        let s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        let m = mn.iter().fold(0.0f64, |a, &b| a.min(b));
        min = min.min(m);
        positive += cnt.iter().sum::<usize>();
        total += s;
        sink(s, chunk);
    }
    (total, positive, total.is_finite() && min >= 0.0)
}

/// Checks that two vectors share one length (the vocabulary size).
pub fn same_len(arg_a: &str, a: usize, arg_b: &str, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::invalid(arg_b, format!("has length {b} but `{arg_a}` has length {a}; both must cover the same vocabulary")));
    }
    Ok(())
}

/// Number of strictly positive entries.
pub fn support_size<T: Real>(v: &[T]) -> usize {
    v.iter().filter(|x| x.to_f64() > 0.0).count()
}

/// The one rule for integer arguments: `value` must be at least `min` and fit in an i64 (values
/// outside i128 arrive as `i128::MIN`/`i128::MAX`). Every count, size and index a user passes is
/// checked here, so the messages are the same everywhere.
pub fn integer(arg: &str, value: i128, min: i64) -> Result<i64> {
    let shown = |v: i128| if v == i128::MIN || v == i128::MAX { "outside the 64-bit range".to_string() } else { format!("is {v}") };
    if value < min as i128 {
        return Err(Error::invalid(arg, format!("{} but must be at least {min}", shown(value))));
    }
    if value > i64::MAX as i128 {
        return Err(Error::invalid(arg, format!("{} but must be at most 2**63 - 1", shown(value))));
    }
    Ok(value as i64)
}

/// Checks `n >= 1` (the lower bound of [`integer`], same message; a usize already converted needs
/// no upper bound here: sizes are checked where they are allocated). A huge n is fine where it is
/// only an exponent, e.g. α* of iid drafts; samplers bound it by `limits::MAX_DRAFTS` where it
/// sizes their output.
pub fn positive_n(arg: &str, n: usize) -> Result<()> {
    if n == 0 {
        integer(arg, 0, 1)?;
    }
    Ok(())
}

/// A float for a message: plain when of ordinary size, else in scientific notation (so that
/// −1e-300 does not print as 300 digits).
pub fn show(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-4..1e16).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// Checks that `n` distinct draws are possible from `q` (schemes without replacement).
pub fn n_within_support<T: Real>(arg_n: &str, n: usize, arg_q: &str, q: &[T]) -> Result<()> {
    n_within(arg_n, n, arg_q, support_size(q))
}

/// [`n_within_support`] for a support size `s` already counted (e.g. by [`row`]).
pub fn n_within(arg_n: &str, n: usize, arg_q: &str, s: usize) -> Result<()> {
    positive_n(arg_n, n)?;
    if n > s {
        return Err(Error::invalid(
            arg_n,
            format!("is {n} but `{arg_q}` has only {s} tokens with positive probability; this scheme draws distinct tokens"),
        ));
    }
    Ok(())
}

/// Checks that a token id lies in the vocabulary.
pub fn token_id(arg: &str, id: i64, vocab: usize) -> Result<usize> {
    if id < 0 || id as u64 >= vocab as u64 {
        return Err(Error::invalid(arg, format!("token id {id} is outside the vocabulary 0..{vocab}")));
    }
    Ok(id as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_distributions_and_rejects_bad_ones() {
        assert!(distribution("p", &[0.5f64, 0.5]).is_ok());
        assert!(distribution("p", &[0.5f32, 0.5]).is_ok());
        let e = distribution("p", &[0.5f64, f64::NAN]).unwrap_err();
        assert!(e.to_string().contains("non-finite") && e.arg() == "p");
        assert!(distribution("q", &[1.5f64, -0.5]).unwrap_err().to_string().contains("negative"));
        assert!(distribution("q", &[0.4f64, 0.4]).unwrap_err().to_string().contains("sums to"));
        assert!(distribution::<f64>("q", &[]).is_err());
        assert!(distribution("q", &[f64::INFINITY]).is_err());
        // Finite entries whose sum overflows.
        assert!(distribution("q", &[1e308f64, 1e308]).unwrap_err().to_string().contains("sums to"));
    }

    /// Every bad entry is caught wherever it sits (any lane, any block, the remainder), the first
    /// one is named, and the sums, counts and block sums match a naive pass.
    #[test]
    fn one_pass_matches_naive_and_catches_every_bad_entry() {
        let w: Vec<f64> = (0..1000).map(|i| ((i * 37) % 11) as f64).collect();
        let t: f64 = w.iter().sum();
        let w: Vec<f64> = w.iter().map(|x| x / t).collect();
        let naive: f64 = w.iter().sum();
        let (blocks, s) = distribution_blocks("w", &w).unwrap();
        assert!((s.sum - naive).abs() < 1e-12);
        assert_eq!(s.positive, w.iter().filter(|&&x| x > 0.0).count());
        assert_eq!(blocks.len(), 4);
        for (b, &bs) in blocks.iter().enumerate() {
            let end = (b * BLOCK + BLOCK).min(w.len());
            assert!((bs - w[b * BLOCK..end].iter().sum::<f64>()).abs() < 1e-12);
        }
        let (ps, qs) = pair(&w, &w).unwrap();
        assert!((ps.sum - naive).abs() < 1e-12 && (qs.sum - naive).abs() < 1e-12);
        for at in [0, 7, 255, 256, 997, 999] {
            for v in [-1e-30, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut x = w.clone();
                x[at] = v;
                let e = pair(&w, &x).unwrap_err();
                assert_eq!(e.arg(), "q");
                assert!(e.to_string().contains(&format!("at index {at}")), "{v} at {at}: {e}");
                assert_eq!(pair(&x, &w).unwrap_err().arg(), "p", "{v}");
            }
        }
        // The first bad entry is named, and non-finite wins over negative for one entry.
        let e = distribution("q", &[0.5f64, -0.1, f64::NAN, 0.6]).unwrap_err().to_string();
        assert!(e.contains("negative entry -0.1 at index 1"), "{e}");
        let e = distribution("q", &[0.5f32, f32::NEG_INFINITY, 0.5]).unwrap_err().to_string();
        assert!(e.contains("non-finite entry -inf at index 1"), "{e}");
        assert!(pair(&[-0.0f64, 1.0], &[0.5, 0.5]).is_ok());
        assert_eq!(pair(&[0.5f64, 0.5], &[1.0]).unwrap_err().arg(), "q");
        assert_eq!(pair(&[0.5f64, 0.4], &[1.0]).unwrap_err().arg(), "p");
    }

    #[test]
    fn n_and_ids() {
        assert!(n_within_support("n", 2, "q", &[0.5f64, 0.0, 0.5]).is_ok());
        assert!(n_within_support("n", 3, "q", &[0.5f64, 0.0, 0.5]).is_err());
        assert!(positive_n("n", 0).is_err());
        assert_eq!(integer("n", 0, 1).unwrap_err().to_string(), "invalid argument `n`: is 0 but must be at least 1");
        assert!(integer("n", 1 << 63, 1).unwrap_err().to_string().contains("at most 2**63 - 1"));
        assert!(integer("n", i128::MAX, 1).unwrap_err().to_string().contains("outside the 64-bit range"));
        assert_eq!(integer("n", (1 << 63) - 1, 0).unwrap(), i64::MAX);
        let e = distribution("q", &[1.0f64, -1e-300]).unwrap_err().to_string();
        assert!(e.contains("negative entry -1e-300 at index 1"), "{e}");
        assert_eq!(show(0.25), "0.25");
        assert_eq!(token_id("drafts", 2, 3).unwrap(), 2);
        assert!(token_id("drafts", 3, 3).is_err());
        assert!(token_id("drafts", -1, 3).is_err());
        assert!(same_len("p", 3, "q", 4).is_err());
    }
}
