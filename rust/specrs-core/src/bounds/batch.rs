//! Batched (positions × vocabulary) versions: rows in parallel (`crate::parallel`). Errors name the row
//! (`p[row 3]`); when several rows are bad, the first one is reported, whatever the thread count.

use super::{optimal_acceptance, verifier_acceptance, Acceptance, MonteCarlo};
use crate::names::{Scheme, Verifier};
use crate::{parallel, Error, Real, Result};

fn rows<T: Real>(p: &[T], q: &[T], vocab: usize) -> Result<usize> {
    if p.len() != q.len() {
        return Err(Error::invalid("q", format!("has {} entries but `p` has {}", q.len(), p.len())));
    }
    if vocab == 0 {
        return Err(Error::invalid("p", "has an empty vocabulary axis"));
    }
    Ok(p.len() / vocab)
}

fn first_error<R: Send>(out: Vec<Result<R>>) -> Result<Vec<R>> {
    out.into_iter().enumerate().map(|(i, r)| r.map_err(|e| e.in_row(i))).collect()
}

/// α* of every row of row-major `p`, `q` of shape (len / vocab, vocab).
pub fn optimal_acceptance_rows<T: Real>(p: &[T], q: &[T], vocab: usize, n: usize, scheme: Scheme) -> Result<Vec<f64>> {
    let m = rows(p, q, vocab)?;
    let out = parallel::map(m, |r| optimal_acceptance(&p[r * vocab..(r + 1) * vocab], &q[r * vocab..(r + 1) * vocab], n, scheme))?;
    first_error(out)
}

/// Verifier acceptance of every row; row r draws its Monte-Carlo stream from (mc.seed, r).
pub fn verifier_acceptance_rows<T: Real>(
    p: &[T],
    q: &[T],
    vocab: usize,
    n: usize,
    verifier: Verifier,
    scheme: Option<Scheme>,
    mc: &MonteCarlo,
) -> Result<Vec<Acceptance>> {
    let m = rows(p, q, vocab)?;
    let out = parallel::map(m, |r| {
        let s = r * vocab..(r + 1) * vocab;
        verifier_acceptance(&p[s.clone()], &q[s], n, verifier, scheme, mc, r as u64)
    })?;
    first_error(out)
}
