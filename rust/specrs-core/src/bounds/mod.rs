//! Optimal multi-draft acceptance α* (Hu et al., "Towards Optimal Multi-draft Speculative
//! Decoding", ICLR 2025) for each draft [`Scheme`], and the exact acceptance of each verifier.
//!
//! Subset-selection theorem (eq. 8; docs/theory.md §2.1): α* = 1 + min_H [p(H) − Q(H)], Q(H) = Pr[all n
//! drafts ∈ H]. For every scheme here Q is q-convex, so the minimiser is a prefix of the tokens in
//! q/p-descending order (Theorem 6) and one scan suffices (§3.3). Per scheme:
//!
//! | scheme | Q(H) / value | module |
//! |---|---|---|
//! | iid | q(H)^n, bucketed scan without a full sort | [`iid`] |
//! | wor | successive sampling, exact: n = 2 closed form, else exponential race | [`wor`] |
//! | cp | e_n(q\|_H) / e_n(q) (the paper's printed "without replacement" formula) | [`cp`] |
//! | greedy | Theorem 7 closed form | [`greedy`] |
//! | spechub | n = 2, equal to greedy's value | [`greedy`] |
//! | topk | a fixed set S = Top_n(q): α* = p(S) | here |
//!
//! n = 1 gives 1 − TV(p, q) = Σ min(p, q) for every random scheme.
//!
//! [`chain`]: E[accepted] of one draft chain under sd and block verification, and the
//! full-information chain optimum, for explicit toy models (docs/theory.md §11.4).

pub mod batch;
pub mod chain;
mod cp;
mod fastexp;
mod greedy;
pub mod iid;
pub mod prep;
pub mod rrs_wor;
pub mod study;
pub mod tree;
mod verifiers;
pub mod wor;

#[cfg(test)]
mod brute;
#[cfg(test)]
mod tests;

pub use batch::{optimal_acceptance_rows, verifier_acceptance_rows};
pub use chain::{chain_optima, ChainOptima};
pub use study::{study_row, study_rows, StudyRow, STUDY_COLUMNS};
pub use tree::{tree_optima, TreeOptima};
pub use verifiers::{kseq_rho, verifier_acceptance, Acceptance, MonteCarlo};

use crate::names::Scheme;
use crate::{Real, Result};

/// α*(p, q, n) for draft `scheme`: the largest probability, over all lossless verifiers, that the
/// emitted token is one of the n drafts. Validates the inputs (each error names its argument):
/// p and q finite, non-negative, summing to 1 within `T::NORM_TOL`, of one length; n ≥ 1;
/// n ≤ |supp q| for wor/cp/greedy/spechub; n = 2 for spechub.
pub fn optimal_acceptance<T: Real>(p: &[T], q: &[T], n: usize, scheme: Scheme) -> Result<f64> {
    let (sp, sq) = prep::check(p, q, n, scheme)?;
    Ok(value_unchecked(p, q, n, scheme, sp, sq))
}

/// α* on validated inputs; `sp`, `sq` = 1/Σp, 1/Σq. In [0, 1] (rounding of the sums is clamped).
pub(crate) fn value_unchecked<T: Real>(p: &[T], q: &[T], n: usize, scheme: Scheme, sp: f64, sq: f64) -> f64 {
    let v = match scheme {
        // A fixed draft set S: α* = 1 + min(0, p(S) − 1) = p(S).
        Scheme::TopK => crate::verify::kernel::top_k_of(q, n).iter().map(|&i| p[i].to_f64() * sp).sum(),
        _ if n == 1 => prep::overlap(p, q, sp, sq),
        Scheme::Iid => iid::value(p, q, n, sp, sq),
        Scheme::Wor => wor::value(p, q, n, sp, sq),
        Scheme::Cp => cp::value(p, q, n, sp, sq),
        Scheme::Greedy | Scheme::SpecHub => greedy::value(p, q, n, sp, sq),
    };
    v.clamp(0.0, 1.0)
}
