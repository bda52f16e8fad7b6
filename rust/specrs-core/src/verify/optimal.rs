//! The optimal verifier for an explicit draft law (Hu et al., ICLR 2025, eq. 7).
//!
//! Given the joint law of the draft tuples and the target p, `crate::flow` solves the
//! b-matching max-flow and returns an optimal transport plan π(y | ī) (accept part on the tuple's
//! tokens plus a shared residual). Verifying is drawing y ~ π(· | ī) for the observed tuple ī:
//! lossless because Σ_ī P(ī) π(· | ī) = p, and optimal because Pr[y ∈ ī] = α* of the law.
//!
//! The plan is built once per (p, law) — [`OptimalVerifier`] — after which each call is a hash
//! lookup of the tuple plus an O(n) or O(log V) draw. Only the token *multiset* of a tuple
//! matters to the plan, so tuples are looked up in sorted order: drafts in any order are accepted.

use std::collections::HashMap;

use super::Outcome;
use crate::exact::ExactLaw;
use crate::flow::{optimal_plan, optimal_plan_law, ExplicitPlan};
use crate::law::{scheme_law, Law};
use crate::names::Scheme;
use crate::{Error, Real, Result, Rng};

/// A solved optimal plan, the law's row probabilities (normalised by their own sum) and an index
/// from draft tuples to rows of the law.
pub struct OptimalVerifier {
    plan: ExplicitPlan,
    probs: Vec<f64>,
    index: HashMap<Vec<usize>, usize>,
}

impl OptimalVerifier {
    /// For the n drafts of `scheme` from q (its explicit law by enumeration: small V only).
    pub fn from_scheme<T: Real>(p: &[T], q: &[T], n: usize, scheme: Scheme) -> Result<Self> {
        crate::validate::distribution("p", p)?;
        crate::validate::same_len("p", p.len(), "q", q.len())?;
        let law = scheme_law(q, n, scheme)?;
        Self::from_law(p, &law)
    }

    /// For an explicit [`Law`] (internal data: normalised by its own sum, see
    /// [`optimal_plan_law`]).
    pub fn from_law<T: Real>(p: &[T], law: &Law) -> Result<Self> {
        let plan = optimal_plan_law(p, law)?;
        let total: f64 = law.probs.iter().sum();
        Ok(Self::with_plan(plan, law.probs.iter().map(|x| x / total).collect()))
    }

    /// For an explicit table: `drafts` (rows × n, row-major) with row probabilities `probs` (a
    /// user argument, validated as a distribution).
    pub fn from_table<T: Real, U: Real>(p: &[T], drafts: &[i64], n: usize, probs: &[U]) -> Result<Self> {
        let plan = optimal_plan(p, drafts, n, probs)?;
        let total: f64 = probs.iter().map(|x| x.to_f64()).sum();
        Ok(Self::with_plan(plan, probs.iter().map(|x| x.to_f64() / total).collect()))
    }

    fn with_plan(plan: ExplicitPlan, probs: Vec<f64>) -> Self {
        let mut index = HashMap::with_capacity(plan.rows());
        for r in 0..plan.rows() {
            let mut key = plan.row(r).to_vec();
            key.sort_unstable();
            // Rows with the same multiset share one conditional; keep the first (any would do).
            index.entry(key).or_insert(r);
        }
        OptimalVerifier { plan, probs, index }
    }

    pub fn plan(&self) -> &ExplicitPlan {
        &self.plan
    }

    /// The law's row probabilities, normalised (row r of [`ExplicitPlan::row`]).
    pub fn law_probs(&self) -> &[f64] {
        &self.probs
    }

    /// One draft tuple drawn from the law: the row index (its tuple is `plan().row(r)`).
    pub fn draft_row(&self, rng: &mut Rng) -> usize {
        let u = rng.uniform();
        crate::verify::kernel::pick_by(self.probs.len(), 1.0, u, |r| self.probs[r]).unwrap_or(0)
    }

    /// α* of the law: the acceptance of this verifier.
    pub fn acceptance(&self) -> f64 {
        self.plan.value()
    }

    pub fn n(&self) -> usize {
        self.plan.n()
    }

    pub fn vocab(&self) -> usize {
        self.plan.vocab()
    }

    /// The law's row holding the multiset of `drafts`, or an error naming `drafts`.
    pub fn row_of(&self, drafts: &[usize]) -> Result<usize> {
        if drafts.len() != self.n() {
            return Err(Error::invalid("drafts", format!("has {} drafts but the draft law has n = {}", drafts.len(), self.n())));
        }
        let mut key = drafts.to_vec();
        key.sort_unstable();
        self.index.get(&key).copied().ok_or_else(|| Error::invalid("drafts", format!("{drafts:?} has probability 0 under the draft law")))
    }

    /// Draws the output token from π(· | drafts). `accepted` is the first k with
    /// drafts[k] == token (Some exactly when the token is a draft).
    pub fn verify(&self, drafts: &[usize], rng: &mut Rng) -> Result<Outcome> {
        let r = self.row_of(drafts)?;
        let (token, _) = self.plan.sample(r, rng);
        Ok(Outcome { token, accepted: drafts.iter().position(|&d| d == token) })
    }

    /// Verifies `rows` tuples (rows × n, row-major), row r with `Rng::for_stream(seed, r)`.
    pub fn verify_batch(&self, drafts: &[usize], seed: u64) -> Result<Vec<Outcome>> {
        let n = self.n();
        if drafts.len() % n != 0 {
            return Err(Error::invalid("drafts", format!("must have rows of n = {n} drafts")));
        }
        let res = crate::parallel::map(drafts.len() / n, |r| {
            self.verify(&drafts[r * n..(r + 1) * n], &mut Rng::for_stream(seed, r as u64)).map_err(|e| e.in_row(r))
        })?;
        res.into_iter().collect()
    }

    /// The exact output law Σ_row P(row) π(· | row) and Pr[output ∈ row].
    pub fn output_distribution(&self) -> ExactLaw {
        let v = self.vocab();
        let mut out = ExactLaw { probs: vec![0.0; v], acceptance: 0.0 };
        for (r, &w) in self.probs.iter().enumerate() {
            if crate::cancel::check(v).is_err() {
                break; // Ctrl-C: the caller discards the result
            }
            let (toks, acc) = self.plan.accept(r);
            let rho = self.plan.reject_prob(r);
            let row = self.plan.row(r);
            for (&y, &a) in toks.iter().zip(acc) {
                out.probs[y] += w * a;
                out.acceptance += w * a;
            }
            for (y, &ry) in self.plan.residual().iter().enumerate() {
                out.probs[y] += w * rho * ry;
            }
            for (k, &d) in row.iter().enumerate() {
                if !row[..k].contains(&d) {
                    out.acceptance += w * rho * self.plan.residual()[d];
                }
            }
        }
        out.acceptance = out.acceptance.clamp(0.0, 1.0);
        out
    }
}

/// Exact output law of the optimal verifier for `law` (used by `crate::exact`).
pub(crate) fn output_distribution<T: Real>(p: &[T], law: &Law) -> Result<ExactLaw> {
    Ok(OptimalVerifier::from_law(p, law)?.output_distribution())
}
