//! Lossless verifiers at one node: given the target p, the draft distribution q and the n drafts
//! (in draw order), emit one token whose law, averaged over the drafts, is exactly p.
//!
//! Which schemes each verifier is lossless for, and its default scheme, are rows of the registry
//! (`crate::names`); the rules live here: `sd`, `rrs`, `rrs_wor` (rrs.rs), `kseq` (kseq.rs),
//! `greedy` (greedy.rs), `spechub` (spechub.rs), `khisti` (khisti.rs), `block` (block.rs: a chain rule; at one position it
//! is `sd`), `traversal` (traversal.rs: a tree rule; at one position it is `rrs_wor` or `rrs`),
//! `match` (sample p; accepted iff the token is a
//! draft) and `optimal` (the max-flow plan, optimal.rs). Formulas: docs/theory.md.
//!
//! Every verifier is O(V) per call (a few passes, no V-length allocation; K-SEQ keeps the
//! tokens with p/q ∈ [1, n) in a buffer). They are written against [`source::Source`], so that
//! `crate::exact` can enumerate the very same code.
//!
//! **Accepted index.** `Outcome::accepted` is `Some(k)` exactly when the emitted token is one of
//! the drafts: the index of the draft whose test accepted it, or, for a token drawn from a
//! residual (greedy's top tokens, `match`), the first k with `drafts[k] == token`. So
//! "accepted" is the event "token ∈ drafts" whose probability Hu et al. call the acceptance rate.

pub(crate) mod block;
mod check;
mod greedy;
pub(crate) mod kernel;
pub(crate) mod khisti;
pub(crate) mod kseq;
mod optimal;
pub(crate) mod rrs;
pub(crate) mod source;
mod spechub;
pub(crate) mod traversal;

pub use check::token_ids;
pub(crate) use check::Sums;
pub(crate) use optimal::output_distribution as optimal_output_distribution;
pub use optimal::OptimalVerifier;

use crate::names::{resolve_scheme, Scheme, Verifier};
use crate::{Error, Real, Result, Rng};
use source::Source;

/// What a verifier emitted: the token, and the index of the draft it accepts (None when the
/// token is not a draft, i.e. it came from the residual).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome {
    pub token: usize,
    pub accepted: Option<usize>,
}

/// min(1, num/den) for num, den ≥ 0, with 0/0 = 0 and x/0 = 1 (x > 0): the acceptance
/// probability of a ratio test, safe at the zero-mass corners.
#[inline]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // negated on purpose: NaN takes the safe branch
pub(crate) fn ratio(num: f64, den: f64) -> f64 {
    if !(num > 0.0) {
        0.0
    } else if !(den > 0.0) || num >= den {
        1.0
    } else {
        num / den
    }
}

/// A validated call: p, q, their sums and the drafts.
pub(crate) struct Ctx<'a, T> {
    pub p: &'a [T],
    pub q: &'a [T],
    pub sums: Sums,
    pub drafts: &'a [usize],
}

impl<T: Real> Ctx<'_, T> {
    /// The first k with drafts[k] == token.
    #[inline]
    pub fn label(&self, token: usize) -> Option<usize> {
        self.drafts.iter().position(|&d| d == token)
    }

    /// The final residual draw. When rounding has left no positive residual mass (a branch of
    /// probability zero in exact arithmetic) it falls back to p itself, which keeps the call
    /// valid instead of dividing by zero.
    #[inline]
    pub fn residual<S: Source, F: Fn(f64, f64) -> f64>(&self, src: &mut S, total: f64, ov: &[(usize, f64)], w: F) -> Outcome {
        let token = if total > 0.0 && total.is_finite() {
            src.pick(self.p, self.q, total, ov, w)
        } else {
            src.pick(self.p, self.q, self.sums.p, &[], |x, _| x)
        };
        Outcome { token, accepted: self.label(token) }
    }
}

/// Validates a call and returns its context and the SpecHub hub (0 for other verifiers).
fn prepare<'a, T: Real>(
    verifier: Verifier,
    scheme: Option<Scheme>,
    p: &'a [T],
    q: &'a [T],
    drafts: &'a [usize],
) -> Result<(Ctx<'a, T>, usize)> {
    let scheme = resolve_scheme(verifier, scheme)?;
    let sums = check::inputs(p, q, drafts)?;
    let hub = check::drafts_for_scheme(q, drafts, scheme)?;
    verifier.check_n("drafts", drafts.len())?;
    // (SpecHub's only scheme is spechub, so `hub` is its hub.)
    Ok((Ctx { p, q, sums, drafts }, hub))
}

/// The rule a verifier runs at one position for drafts of `scheme`: traversal on one level is RRS
/// without replacement (wor siblings) or with replacement (iid siblings; docs/theory.md §14.2).
pub(crate) fn at_one_position(verifier: Verifier, scheme: Scheme) -> Verifier {
    match (verifier, scheme) {
        (Verifier::Traversal, Scheme::Iid) => Verifier::Rrs,
        (Verifier::Traversal, _) => Verifier::RrsWor,
        (v, _) => v,
    }
}

/// Runs a validated verifier with randomness from `src`. `Optimal` is not handled here (it needs
/// a plan, built by [`OptimalVerifier`]; `verify_scheme` builds one per call).
pub(crate) fn run<T: Real, S: Source>(verifier: Verifier, cx: &Ctx<'_, T>, hub: usize, src: &mut S) -> Result<Outcome> {
    Ok(match verifier {
        // At one position block verification is token-wise SD (h_1 = ρ_1 = min(1, p/q)).
        Verifier::Sd | Verifier::Block | Verifier::Rrs => rrs::rrs(cx, false, src),
        // Callers map traversal to its one-position rule first (`at_one_position`); wor is its default.
        Verifier::RrsWor | Verifier::Traversal => rrs::rrs(cx, true, src),
        Verifier::Kseq => kseq::kseq(cx, src),
        Verifier::Greedy => greedy::greedy(cx, src),
        Verifier::SpecHub => spechub::spechub(cx, hub, src),
        Verifier::Khisti => khisti::khisti(cx, src),
        Verifier::Match => cx.residual(src, cx.sums.p, &[], |x, _| x),
        Verifier::Optimal => {
            return Err(Error::invalid("verifier", "the optimal verifier needs the draft law: name a scheme, or use OptimalVerifier"))
        }
    })
}

/// Runs a verifier on rows the caller has already validated: the f64 rows of a draft-tree node,
/// aligned over a local index set (`tree::dist::align`: the whole vocabulary, or the sorted union
/// of the two supports, so index order is token-id order). No validation pass, so the cost stays
/// O(len) for sparse rows; the sums are taken here (the rows are normalised by them).
///
/// The tree may hand over any children its builder drew, so the verifier is adapted to them:
/// SpecHub's hub is the child with the larger q, ties to the lower index (= lower token id, as
/// the builder's argmax); SpecHub without exactly two drafts, and greedy without drafts, fall
/// back to `match` (a sample of p, exact whatever the drafts).
pub(crate) fn run_rows<S: Source>(verifier: Verifier, p: &[f64], q: &[f64], drafts: &[usize], src: &mut S) -> Result<Outcome> {
    let verifier = match verifier {
        Verifier::SpecHub if drafts.len() != 2 => Verifier::Match,
        Verifier::Greedy | Verifier::Kseq | Verifier::Sd | Verifier::Block | Verifier::Khisti if drafts.is_empty() => Verifier::Match,
        v => v,
    };
    let hub = match drafts {
        &[_, _] if verifier == Verifier::SpecHub => drafts[kernel::top_k(2, 1, |k| q[drafts[k]], |k| drafts[k] as i64)[0]],
        _ => 0,
    };
    let [sp, sq] = kernel::sums2(p, q, |x, y| [x, y]);
    let cx = Ctx { p, q, sums: Sums { p: sp, q: sq }, drafts };
    run(verifier, &cx, hub, src)
}

/// Verifies one position: `drafts` are the draft token ids in draw order, drawn with the
/// verifier's default scheme (`sd`, `rrs`, `kseq`: i.i.d.; `rrs_wor`: without replacement;
/// `greedy`, `spechub`: their own drafting; `match`: any). Validates everything and never panics.
pub fn verify_one<T: Real>(verifier: Verifier, p: &[T], q: &[T], drafts: &[usize], rng: &mut Rng) -> Result<Outcome> {
    verify_scheme(verifier, None, p, q, drafts, rng)
}

/// [`verify_one`] with the draft scheme named (checked against the verifier; required for
/// `optimal`, which then builds the explicit law and its optimal plan: small V only).
pub fn verify_scheme<T: Real>(
    verifier: Verifier,
    scheme: Option<Scheme>,
    p: &[T],
    q: &[T],
    drafts: &[usize],
    rng: &mut Rng,
) -> Result<Outcome> {
    let (cx, hub) = prepare(verifier, scheme, p, q, drafts)?;
    let verifier = at_one_position(verifier, resolve_scheme(verifier, scheme)?);
    if verifier == Verifier::Optimal {
        // The scheme was resolved (required) by `prepare`. Builds the explicit law and its plan on
        // every call: for a fixed (p, q) build an OptimalVerifier once instead.
        let scheme = resolve_scheme(verifier, scheme)?;
        let ov = OptimalVerifier::from_scheme(p, q, drafts.len(), scheme)?;
        return ov.verify(drafts, rng);
    }
    run(verifier, &cx, hub, rng)
}

/// Validates like [`verify_scheme`] and runs the verifier with `src` (used by `crate::exact`).
pub(crate) fn verify_with<T: Real, S: Source>(
    verifier: Verifier,
    scheme: Option<Scheme>,
    p: &[T],
    q: &[T],
    drafts: &[usize],
    src: &mut S,
) -> Result<Outcome> {
    let (cx, hub) = prepare(verifier, scheme, p, q, drafts)?;
    let verifier = at_one_position(verifier, resolve_scheme(verifier, scheme)?);
    run(verifier, &cx, hub, src)
}

/// Batched [`verify_scheme`] over `rows` positions: `p`, `q` are row-major (rows × V), `drafts`
/// row-major (rows × n). Row r uses the stream `Rng::for_stream(seed, r)`, so the result equals
/// the row-by-row calls with those streams, whatever the thread count. Rows run in parallel on
/// the pool (`crate::parallel`); an error reports the first bad row (`p[row 3]`, …).
#[allow(clippy::too_many_arguments)]
pub fn verify_batch<T: Real>(
    verifier: Verifier,
    scheme: Option<Scheme>,
    p: &[T],
    q: &[T],
    drafts: &[usize],
    v: usize,
    n: usize,
    seed: u64,
) -> Result<Vec<Outcome>> {
    resolve_scheme(verifier, scheme)?;
    if v == 0 || n == 0 || p.len() % v != 0 || q.len() != p.len() || drafts.len() != (p.len() / v) * n {
        return Err(Error::invalid("drafts", "batch shapes disagree: need p, q of shape (rows, V) and drafts (rows, n)"));
    }
    let rows = p.len() / v;
    let results = crate::parallel::map(rows, |r| {
        let mut rng = Rng::for_stream(seed, r as u64);
        verify_scheme(verifier, scheme, &p[r * v..(r + 1) * v], &q[r * v..(r + 1) * v], &drafts[r * n..(r + 1) * n], &mut rng)
            .map_err(|e| e.in_row(r))
    })?;
    results.into_iter().collect()
}

#[cfg(test)]
mod tests;
