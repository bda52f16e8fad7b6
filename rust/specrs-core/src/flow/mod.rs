//! Optimal acceptance for an explicit joint draft law, by maximum flow.
//!
//! Hu et al. (ICLR 2025), eq. 7–9: for a law over draft tuples ī with probabilities P(ī), the
//! optimal acceptance α* is the value of the b-matching
//! max Σ S(i, ī) s.t. Σ_ī S(i, ī) ≤ p(i), Σ_i S(i, ī) ≤ P(ī), S ≥ 0, S(i, ī) = 0 unless i ∈ ī,
//! i.e. the maximum flow of source → ī (cap P(ī)) → i ∈ ī (cap ∞) → sink (cap p(i)). Its minimum
//! cut is the subset-selection theorem (eq. 8): α* = 1 + min_H (p(H) − Q(H)), Q(H) = P(ī ⊆ H).
//! Only the token *set* of a tuple matters, so tuples are merged by set first ([`graph`]); the
//! flow is solved exactly in f64 by push-relabel ([`push_relabel`]); [`ExplicitPlan`] turns the
//! flow and the cut into an optimal transport plan π(y | row) that the optimal verifier samples.
//! [`min_cost`] is a small minimum-cost flow for the full-information tree optimum (§14.5).

mod graph;
pub mod min_cost;
mod plan;
mod push_relabel;
#[cfg(test)]
mod tests;

pub use plan::ExplicitPlan;

use crate::{pool, validate, Error, Law, Real, Result};

/// Largest m·n (rows × drafts per row) accepted: bounds the solver's memory (≈ 24 bytes per
/// entry) well below the size of the input arrays' own footprint at that size.
pub use crate::limits::MAX_DRAFT_ENTRIES;

/// Largest vocabulary accepted (the plan keeps a few dense length-V vectors).
pub use crate::limits::MAX_VOCAB;

/// Solves the explicit law given as `drafts` (m rows of n token ids, row-major) with row
/// probabilities `probs` against the target `p`.
///
/// Validation (each error names the argument): `p` and `probs` are distributions (finite,
/// non-negative, summing to 1 within the dtype's tolerance; both are then divided by their sum);
/// `drafts` has `probs.len()` rows of n ≥ 1 ids in `0..p.len()`; size limits
/// [`MAX_DRAFT_ENTRIES`] and [`MAX_VOCAB`] raise [`Error::TooLarge`].
pub fn optimal_plan<T: Real, U: Real>(p: &[T], drafts: &[i64], n: usize, probs: &[U]) -> Result<ExplicitPlan> {
    let (p, probs) = check_inputs(p, drafts.len(), n, probs)?;
    let vocab = p.len();
    // One branch-free pass for the range (vectorises), the per-id check only to name a culprit.
    let (lo, hi) = drafts.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if lo < 0 || hi >= vocab as i64 {
        for &x in drafts {
            validate::token_id("drafts", x, vocab)?;
        }
    }
    let mut ids = pool::with_capacity::<usize>(drafts.len());
    ids.extend(drafts.iter().map(|&x| x as usize));
    let plan = solve(&p, ids, n, &probs);
    pool::give(probs);
    Ok(plan)
}

/// [`optimal_plan`] for a [`Law`] (e.g. from [`crate::scheme_law`]). The law is internal data,
/// not a user argument: its probabilities are divided by their own sum (an enumerated law sums to
/// 1 only up to rounding) and any error about them names `law`.
pub fn optimal_plan_law<T: Real>(p: &[T], law: &Law) -> Result<ExplicitPlan> {
    let p_sum = validate::distribution("p", p)?;
    check_sizes(p.len(), law.tuples.len(), law.n, law.probs.len())?;
    let vocab = p.len();
    if let Some(&x) = law.tuples.iter().find(|&&x| x >= vocab) {
        return Err(Error::invalid("law", format!("token id {x} is outside the vocabulary 0..{vocab}")));
    }
    let total: f64 = law.probs.iter().sum();
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // negated on purpose: NaN takes the error branch
    if !(total > 0.0 && total.is_finite()) || law.probs.iter().any(|&x| !(x >= 0.0)) {
        return Err(Error::invalid("law", format!("row probabilities must be finite, non-negative and not all 0 (sum {total})")));
    }
    let p: Vec<f64> = p.iter().map(|x| x.to_f64() / p_sum).collect();
    let mut probs = pool::with_capacity::<f64>(law.probs.len());
    probs.extend(law.probs.iter().map(|x| x / total));
    let mut ids = pool::with_capacity::<usize>(law.tuples.len());
    ids.extend_from_slice(&law.tuples);
    let plan = solve(&p, ids, law.n, &probs);
    pool::give(probs);
    Ok(plan)
}

/// Validates shapes, sizes and both distributions; returns them normalised, in f64.
fn check_inputs<T: Real, U: Real>(p: &[T], entries: usize, n: usize, probs: &[U]) -> Result<(Vec<f64>, Vec<f64>)> {
    let p_sum = validate::distribution("p", p)?;
    check_sizes(p.len(), entries, n, probs.len())?;
    let q_sum = validate::distribution("probs", probs)?;
    let p = p.iter().map(|x| x.to_f64() / p_sum).collect();
    let mut normalised = pool::with_capacity::<f64>(probs.len());
    normalised.extend(probs.iter().map(|x| x.to_f64() / q_sum));
    Ok((p, normalised))
}

/// The vocabulary and table size limits, and `entries` = m·n for m = `rows`.
fn check_sizes(vocab: usize, entries: usize, n: usize, rows: usize) -> Result<()> {
    if vocab > MAX_VOCAB {
        return Err(Error::too_large("p", format!("has {vocab} entries (limit {MAX_VOCAB})")));
    }
    if n == 0 {
        return Err(Error::invalid("drafts", "has 0 columns; each row needs at least one draft"));
    }
    if entries % n != 0 || entries / n != rows {
        return Err(Error::invalid("probs", format!("has {rows} entries but `drafts` has {} entries in rows of {n}", entries)));
    }
    if entries > MAX_DRAFT_ENTRIES {
        return Err(Error::too_large("drafts", format!("has {rows} rows × {n} drafts = {entries} entries (limit {MAX_DRAFT_ENTRIES})")));
    }
    Ok(())
}

fn solve(p: &[f64], drafts: Vec<usize>, n: usize, probs: &[f64]) -> ExplicitPlan {
    let g = graph::SetGraph::build(&drafts, n, probs, p.len());
    let cap: Vec<f64> = g.tokens.iter().map(|&y| p[y]).collect();
    let mf = push_relabel::max_flow(&g, &cap);
    ExplicitPlan::from_flow(p, drafts, n, g, mf)
}
