//! Verification of draft *chains* that someone else drafted: the rejection step of a serving
//! engine (vLLM's `rejection_sample`), batched over requests whose chains have different lengths.
//!
//! A chain of γ drafts x₁..x_γ comes with the target rows p_i = p(· | x_{<i}) and the draft rows
//! q_i = q(· | x_{<i}) at every drafted position (one target pass over the chain gives the p_i).
//! The verifier accepts a prefix x₁..x_τ and emits one more token y, so that (x₁..x_τ, y) has
//! exactly the target's law. Here y is a residual sample when τ < γ; when the whole chain is
//! accepted it is the *bonus* token, a sample of p_{γ+1}, which the caller draws (vLLM samples
//! it with the request's own generator): the outcome then carries `token: None`.
//!
//! **Placeholders.** A negative draft id ends the chain (vLLM pads drafts with −1). Its row's p is
//! still the target at that position, so when every real draft before it is accepted, y is drawn
//! from that p row (the bonus of the shorter chain); its q row is never read.
//!
//! Verifiers: `sd` — token-wise speculative sampling (Leviathan et al. 2023; Chen et al. 2023):
//! position by position, the one-draft verifier of [`crate::verify`] (the very same code), until
//! the first rejection, whose residual norm((p_i − q_i)₊) gives y.
//!
//! `block` — block verification (Sun et al., ICLR 2025; docs/theory.md §11): the longest prefix by
//! the cumulative-ratio rule (the *last* passing position), then one residual token from
//! norm((ρ_τ p_{τ+1} − q_{τ+1})₊); never fewer accepted drafts than `sd` in expectation.
//!
//! Randomness: a chain's decisions come from one stream; the batched call takes one seed per
//! chain, so that a request's outcome depends on its own seed only, not on its place in the
//! batch (a serving engine seeds per request).

use crate::names::Verifier;
use crate::verify::block::{self, Position};
use crate::verify::source::Source;
use crate::verify::{run, Ctx, Sums};
use crate::{validate, Error, Real, Result, Rng};

/// What a chain verification emitted: `accepted` drafts (a prefix of the chain), then `token`,
/// or `None` when every draft was accepted and the chain had no row left: the caller's bonus
/// token (a sample of the target after the last draft) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainOutcome {
    pub accepted: usize,
    pub token: Option<usize>,
}

/// The verifiers that work on chains, for error messages.
/// `traversal` on a chain is block verification (docs/theory.md §14.2), so it runs the block rule.
pub const CHAIN_VERIFIERS: &[Verifier] = &[Verifier::Sd, Verifier::Block, Verifier::Traversal];

fn check_verifier(verifier: Verifier) -> Result<()> {
    if CHAIN_VERIFIERS.contains(&verifier) {
        return Ok(());
    }
    let names: Vec<&str> = CHAIN_VERIFIERS.iter().map(|v| v.as_str()).collect();
    Err(Error::invalid(
        "verifier",
        format!("the {} verifier does not verify draft chains; chains support: {}", verifier.as_str(), names.join(", ")),
    ))
}

/// Verifies one chain: `drafts` has one id per row of `p`, `q` (row-major, rows × `v`); see the
/// module docs for placeholders and the bonus. Errors name the row (`p[row 2]`).
pub fn verify_chain<T: Real>(verifier: Verifier, p: &[T], q: &[T], drafts: &[i64], v: usize, rng: &mut Rng) -> Result<ChainOutcome> {
    check_verifier(verifier)?;
    check_rows(p, q, drafts.len(), v)?;
    run_chain(verifier, p, q, drafts, v, 0, rng)
}

/// [`verify_chain`] for a batch of chains stored back to back: chain b owns rows
/// `cu_num_drafts[b-1]..cu_num_drafts[b]` (cumulative counts, as vLLM's `cu_num_draft_tokens`) and
/// draws from `Rng::new(seeds[b])`. Chains run in parallel (`crate::parallel`); the result does not
/// depend on the thread count. An error names the first bad row by its index in the batch.
pub fn verify_chains<T: Real>(
    verifier: Verifier,
    p: &[T],
    q: &[T],
    drafts: &[i64],
    cu_num_drafts: &[usize],
    v: usize,
    seeds: &[u64],
) -> Result<Vec<ChainOutcome>> {
    check_verifier(verifier)?;
    check_rows(p, q, drafts.len(), v)?;
    validate::same_len("cu_num_drafts", cu_num_drafts.len(), "seeds", seeds.len())?;
    let mut start = 0;
    for (b, &end) in cu_num_drafts.iter().enumerate() {
        if end < start || end > drafts.len() {
            return Err(Error::invalid(
                "cu_num_drafts",
                format!("entry {b} is {end}: cumulative draft counts must be non-decreasing and at most {}", drafts.len()),
            ));
        }
        start = end;
    }
    if start != drafts.len() {
        return Err(Error::invalid("cu_num_drafts", format!("ends at {start} but there are {} draft rows", drafts.len())));
    }
    // The crate's fork-safe, Ctrl-C-aware pool (a serving engine forks its workers).
    let outcomes = crate::parallel::map(cu_num_drafts.len(), |b| {
        let (lo, hi) = (if b == 0 { 0 } else { cu_num_drafts[b - 1] }, cu_num_drafts[b]);
        let mut rng = Rng::new(seeds[b]);
        run_chain(verifier, &p[lo * v..hi * v], &q[lo * v..hi * v], &drafts[lo..hi], v, lo, &mut rng)
    })?;
    outcomes.into_iter().collect()
}

/// Row `i` of a row-major (rows × v) matrix.
fn row<T>(m: &[T], i: usize, v: usize) -> &[T] {
    &m[i * v..(i + 1) * v]
}

fn check_rows<T>(p: &[T], q: &[T], rows: usize, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::invalid("p", "has an empty vocabulary"));
    }
    if p.len() != rows * v || q.len() != rows * v {
        return Err(Error::invalid(
            "drafts",
            format!("has {rows} rows but `p` and `q` need shape ({rows}, V): got {} and {} entries for V = {v}", p.len(), q.len()),
        ));
    }
    Ok(())
}

/// The chain rule itself, written against [`Source`] so that the tests enumerate this code.
/// `first_row` is the chain's first row in the caller's batch, for error messages.
pub(crate) fn run_chain<T: Real, S: Source>(
    verifier: Verifier,
    p: &[T],
    q: &[T],
    drafts: &[i64],
    v: usize,
    first_row: usize,
    src: &mut S,
) -> Result<ChainOutcome> {
    let real = drafts.iter().position(|&x| x < 0).unwrap_or(drafts.len());
    // Every row the chain owns is checked once, up front, read or not (a bad row is an upstream
    // bug to report); the verifier then runs on the checked rows without a second pass.
    let mut ids = Vec::with_capacity(real);
    let mut sums = Vec::with_capacity(real);
    for (i, &x) in drafts[..real].iter().enumerate() {
        let (pi, qi) = (row(p, i, v), row(q, i, v));
        let at = |e: Error| e.in_row(first_row + i);
        let (ps, qs) = validate::pair(pi, qi).map_err(at)?;
        let x = validate::token_id("drafts", x, v).map_err(at)?;
        if qi[x].to_f64() <= 0.0 {
            return Err(at(Error::invalid(
                "drafts",
                format!("token {x} has q = 0, so the draft distribution q could not have produced it"),
            )));
        }
        ids.push([x]);
        sums.push(Sums { p: ps.sum, q: qs.sum });
    }
    let bonus_row = if real < drafts.len() {
        let pr = row(p, real, v);
        Some((pr, validate::distribution("p", pr).map_err(|e| e.in_row(first_row + real))?))
    } else {
        None
    };
    match verifier {
        Verifier::Sd => {
            for i in 0..real {
                let cx = Ctx { p: row(p, i, v), q: row(q, i, v), sums: sums[i], drafts: &ids[i] };
                let out = run(Verifier::Sd, &cx, 0, src)?;
                // A residual token equal to the draft (only where rounding left the residual
                // empty) continues the chain: the next rows are conditioned on that very token.
                if out.accepted.is_none() {
                    return Ok(ChainOutcome { accepted: i, token: Some(out.token) });
                }
            }
        }
        Verifier::Block | Verifier::Traversal => {
            let rows: Vec<Position<'_, T>> =
                (0..real).map(|i| Position { p: row(p, i, v), q: row(q, i, v), sums: sums[i], draft: ids[i][0] }).collect();
            let out = block::verify(&rows, src);
            if out.token.is_some() {
                return Ok(ChainOutcome { accepted: out.accepted, token: out.token });
            }
        }
        _ => unreachable!("checked by check_verifier"),
    }
    Ok(match bonus_row {
        None => ChainOutcome { accepted: real, token: None },
        // Every real draft accepted before a placeholder: the next token is a sample of its row's p.
        Some((pr, sum)) => ChainOutcome { accepted: real, token: Some(src.pick(pr, pr, sum, &[], |x, _| x)) },
    })
}

#[cfg(test)]
mod tests;
