//! Input validation for the verifiers: every check names the argument it is about.

use super::kernel;
use crate::names::Scheme;
use crate::{validate, Error, Real, Result};

/// Sums of the validated p and q (each 1 within the dtype tolerance); the verifiers normalise by
/// them so that f32 inputs are verified against exactly p/Σp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sums {
    pub p: f64,
    pub q: f64,
}

/// p and q are distributions over one vocabulary, and every draft id lies in it.
pub(crate) fn inputs<T: Real>(p: &[T], q: &[T], drafts: &[usize]) -> Result<Sums> {
    let (ps, qs) = pair(p, q)?;
    if drafts.is_empty() {
        return Err(Error::invalid("drafts", "is empty; pass at least one draft token"));
    }
    let v = p.len();
    if let Some(&x) = drafts.iter().find(|&&x| x >= v) {
        return Err(Error::invalid("drafts", format!("token id {x} is outside the vocabulary 0..{v}")));
    }
    Ok(Sums { p: ps, q: qs })
}

/// Validates p and q (same length, both distributions; [`validate::pair`]); returns their sums,
/// which the verifiers normalise by.
pub(crate) fn pair<T: Real>(p: &[T], q: &[T]) -> Result<(f64, f64)> {
    let (ps, qs) = validate::pair(p, q)?;
    Ok((ps.sum, qs.sum))
}

/// Token ids (i64, as numpy gives them) to vocabulary indices, naming `arg` on failure.
pub fn token_ids(arg: &str, ids: &[i64], vocab: usize) -> Result<Vec<usize>> {
    ids.iter().map(|&x| validate::token_id(arg, x, vocab)).collect()
}

fn distinct(drafts: &[usize], scheme: Scheme) -> Result<()> {
    for (k, x) in drafts.iter().enumerate() {
        if drafts[..k].contains(x) {
            return Err(Error::invalid(
                "drafts",
                format!("token {x} is drafted twice, but the {} scheme draws distinct tokens", scheme.as_str()),
            ));
        }
    }
    Ok(())
}

/// Checks that `drafts` could have been produced by `scheme` from q: q > 0 at every draft, the
/// right n, distinct tokens where the scheme draws without replacement, the top n−1 tokens of q in
/// front for greedy, a top-n set for topk, and the hub (argmax q) as one of the two drafts for SpecHub.
/// Returns the SpecHub hub when `scheme` is spechub (0 otherwise).
pub(crate) fn drafts_for_scheme<T: Real>(q: &[T], drafts: &[usize], scheme: Scheme) -> Result<usize> {
    for &x in drafts {
        if q[x].to_f64() <= 0.0 {
            return Err(Error::invalid("drafts", format!("token {x} has q = 0, so the draft distribution q could not have produced it")));
        }
    }
    let n = drafts.len();
    match scheme {
        Scheme::Iid => Ok(0),
        Scheme::Wor | Scheme::Cp => distinct(drafts, scheme).map(|_| 0),
        Scheme::Greedy => {
            distinct(drafts, scheme)?;
            top_set(q, &drafts[..n - 1], "the first n−1 greedy drafts").map(|_| 0)
        }
        Scheme::TopK => {
            distinct(drafts, scheme)?;
            top_set(q, drafts, "topk drafts").map(|_| 0)
        }
        Scheme::SpecHub => {
            if n != 2 {
                return Err(Error::invalid("drafts", format!("has {n} drafts but the spechub scheme draws exactly 2")));
            }
            distinct(drafts, scheme)?;
            let a = kernel::top_k_of(q, 1)[0];
            if !drafts.contains(&a) {
                return Err(Error::invalid(
                    "drafts",
                    format!("must contain the hub token {a} (argmax of q, lowest id on ties) for the spechub scheme"),
                ));
            }
            Ok(a)
        }
    }
}

/// `top` is a top-|top| set of q (any order, any tie-break): the first n−1 greedy drafts, or all
/// topk drafts. `what` names them in the message.
fn top_set<T: Real>(q: &[T], top: &[usize], what: &str) -> Result<()> {
    if top.is_empty() {
        return Ok(());
    }
    let t = top.iter().map(|&x| q[x].to_f64()).fold(f64::INFINITY, f64::min);
    // Valid iff the tokens with q > t are all in the top set: count them in one vectorised pass,
    // and only on a mismatch look for the offender (for the message).
    let above = kernel::sum2(q, q, |x, _| if x > t { 1.0 } else { 0.0 });
    let above_in_top = top.iter().filter(|&&x| q[x].to_f64() > t).count() as f64;
    if above == above_in_top {
        return Ok(());
    }
    for (i, &x) in q.iter().enumerate() {
        if x.to_f64() > t && !top.contains(&i) {
            return Err(Error::invalid(
                "drafts",
                format!(
                    "{what} ({}) must be the top tokens of q, but token {i} (q = {}) is larger than draft q = {t}",
                    top.len(),
                    x.to_f64()
                ),
            ));
        }
    }
    Ok(())
}
