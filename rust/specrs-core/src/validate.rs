//! Input validation shared by every public entry point. Each check names the argument it is
//! about, so the Python user sees e.g. "invalid argument `q`: negative entry -0.1 at index 4".

use crate::{Error, Real, Result};

/// Checks that `v` is a probability vector: non-empty, finite, non-negative, and summing to 1
/// within `T::NORM_TOL` (1e-6 for f64, 1e-4 for f32). Returns the exact f64 sum, which callers
/// may use to renormalise.
pub fn distribution<T: Real>(arg: &str, v: &[T]) -> Result<f64> {
    if v.is_empty() {
        return Err(Error::invalid(arg, "is empty; a distribution needs at least one entry"));
    }
    let mut sum = 0.0f64;
    for (i, &x) in v.iter().enumerate() {
        let x = x.to_f64();
        if !x.is_finite() {
            return Err(Error::invalid(arg, format!("non-finite entry {x} at index {i}")));
        }
        if x < 0.0 {
            return Err(Error::invalid(arg, format!("negative entry {x} at index {i}")));
        }
        sum += x;
    }
    if (sum - 1.0).abs() > T::NORM_TOL {
        return Err(Error::invalid(
            arg,
            format!(
                "sums to {sum:.12} but must sum to 1 within {:e} ({} input)",
                T::NORM_TOL,
                T::DTYPE
            ),
        ));
    }
    Ok(sum)
}

/// Checks that two vectors share one length (the vocabulary size).
pub fn same_len(arg_a: &str, a: usize, arg_b: &str, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::invalid(
            arg_b,
            format!("has length {b} but `{arg_a}` has length {a}; both must cover the same vocabulary"),
        ));
    }
    Ok(())
}

/// Number of strictly positive entries.
pub fn support_size<T: Real>(v: &[T]) -> usize {
    v.iter().filter(|x| x.to_f64() > 0.0).count()
}

/// Checks `n >= 1`.
pub fn positive_n(arg: &str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(arg, "must be at least 1"));
    }
    Ok(())
}

/// Checks that `n` distinct draws are possible from `q` (schemes without replacement).
pub fn n_within_support<T: Real>(arg_n: &str, n: usize, arg_q: &str, q: &[T]) -> Result<()> {
    positive_n(arg_n, n)?;
    let s = support_size(q);
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
    }

    #[test]
    fn n_and_ids() {
        assert!(n_within_support("n", 2, "q", &[0.5f64, 0.0, 0.5]).is_ok());
        assert!(n_within_support("n", 3, "q", &[0.5f64, 0.0, 0.5]).is_err());
        assert!(positive_n("n", 0).is_err());
        assert_eq!(token_id("drafts", 2, 3).unwrap(), 2);
        assert!(token_id("drafts", 3, 3).is_err());
        assert!(token_id("drafts", -1, 3).is_err());
        assert!(same_len("p", 3, "q", 4).is_err());
    }
}
