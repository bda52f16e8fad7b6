//! Block verification of a draft chain (Sun et al., ICLR 2025, Algorithm 2; vLLM's "block"
//! rejection method): the chain is accepted by a cumulative ratio, not token by token
//! (docs/theory.md §11).
//!
//! With p̃_i, q̃_i the normalised target and draft rows at drafted position i (1-based) and x_i the
//! draft there:
//!
//! ```text
//! ρ_0 = 1,   ρ_i = min(ρ_{i−1} · p̃_i(x_i) / q̃_i(x_i), 1)                      (log space)
//! Z_{i+1} = Σ_v (ρ_i p̃_{i+1}(v) − q̃_{i+1}(v))₊,   D_{i+1} = Σ_v (q̃_{i+1}(v) − ρ_i p̃_{i+1}(v))₊
//! h_i = Z_{i+1} / D_{i+1}  (i < γ; 1 when D = 0),   h_γ = ρ_γ
//! τ = the LAST i with η_i ≤ h_i (0 if none),   then y ~ norm((ρ_τ p̃_{τ+1} − q̃_{τ+1})₊), or the bonus
//! ```
//!
//! D_{i+1} = Z_{i+1} + 1 − ρ_i (the paper's denominator), but summed over the vocabulary: on a
//! confident row 1 − ρ_i cancels, the sum does not (docs/theory.md §10, §11.2). τ is drawn by the
//! backward scan i = γ, γ−1, …, 1 that stops at the first passing coin (the same law as drawing
//! every η_i and taking the last pass), so Z is computed only at the positions the scan visits.
//!
//! Unlike the one-position verifiers, a passing coin may be followed by a pick (the residual at
//! τ < γ), so its exact law is enumerated by `crate::exact::paths`, which follows every decision.

use super::kernel;
use super::source::Source;
use super::Sums;
use crate::Real;

/// One drafted position of a chain: the target row p_i, the draft row q_i (over one index set),
/// their sums, and the index of the draft token x_i.
pub(crate) struct Position<'a, T> {
    pub p: &'a [T],
    pub q: &'a [T],
    pub sums: Sums,
    pub draft: usize,
}

/// What block verification decided: τ accepted drafts, then the residual token (an index into
/// position τ+1's rows), or `None` when τ = γ (the bonus token, a sample of p_{γ+1}, follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockOutcome {
    pub accepted: usize,
    pub token: Option<usize>,
}

/// The chain's cumulative ratios, and the masses at one position (cached: the coin at τ and the
/// residual at τ read the same Z).
pub(crate) struct Block<'r, 'a, T> {
    rows: &'r [Position<'a, T>],
    /// log ρ_i for i = 0..=γ.
    log_rho: Vec<f64>,
    masses: Option<(usize, f64, f64)>,
}

/// log ρ_i from log ρ_{i−1} and the drafted token's raw entries p_i(x_i), q_i(x_i) and row sums:
/// min(log ρ_{i−1} + ln(p/Σp) − ln(q/Σq), 0), each logarithm taken term by term (a ratio of tiny
/// probabilities never underflows here). The one place of the recurrence (verifier and bounds).
#[inline]
pub(crate) fn log_rho_step(prev: f64, px: f64, ps: f64, qx: f64, qs: f64) -> f64 {
    let l = (prev + (px.ln() - ps.ln()) - (qx.ln() - qs.ln())).min(0.0);
    // NaN only from ln 0 − ln 0 (never: q(x) > 0 for a drafted token); keep it safe.
    if l.is_nan() {
        f64::NEG_INFINITY
    } else {
        l
    }
}

impl<'r, 'a, T: Real> Block<'r, 'a, T> {
    pub fn new(rows: &'r [Position<'a, T>]) -> Self {
        let mut log_rho = Vec::with_capacity(rows.len() + 1);
        log_rho.push(0.0);
        let mut l = 0.0f64;
        for r in rows {
            l = log_rho_step(l, r.p[r.draft].to_f64(), r.sums.p, r.q[r.draft].to_f64(), r.sums.q);
            log_rho.push(l);
        }
        Block { rows, log_rho, masses: None }
    }

    /// γ, the number of drafted positions.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// ρ_i = P(τ ≥ i | x_1..x_i).
    pub fn rho(&self, i: usize) -> f64 {
        self.log_rho[i].exp()
    }

    /// The residual weight (ρ_i p̃ − q̃)₊ at raw entries (p, q) of position i+1.
    fn weight(&self, i: usize) -> impl Fn(f64, f64) -> f64 {
        let s = self.rows[i].sums;
        let (a, b) = (self.rho(i) / s.p, 1.0 / s.q);
        move |p, q| (a * p - b * q).max(0.0)
    }

    /// (Z_{i+1}, D_{i+1}) for i < γ, both summed in one pass over position i+1's rows.
    pub fn masses(&mut self, i: usize) -> (f64, f64) {
        if let Some((j, z, d)) = self.masses {
            if j == i {
                return (z, d);
            }
        }
        let r = &self.rows[i];
        let (a, b) = (self.rho(i) / r.sums.p, 1.0 / r.sums.q);
        let [z, d] = kernel::sums2(r.p, r.q, |p, q| {
            let x = a * p - b * q;
            [x.max(0.0), (-x).max(0.0)]
        });
        self.masses = Some((i, z, d));
        (z, d)
    }

    /// h_i, the probability that the backward scan stops at i once it reaches it (1 ≤ i ≤ γ).
    pub fn h(&mut self, i: usize) -> f64 {
        if i == self.len() {
            return self.rho(i);
        }
        let (z, d) = self.masses(i);
        super::ratio(z, d)
    }

    /// The token after τ = i < γ accepted drafts: a sample of norm((ρ_i p̃_{i+1} − q̃_{i+1})₊), by
    /// index into position i+1's rows. Where rounding left no residual mass (a branch of
    /// probability 0 in exact arithmetic) it samples p_{i+1} itself, which keeps the call valid.
    pub fn residual<S: Source>(&mut self, i: usize, src: &mut S) -> usize {
        let (z, _) = self.masses(i);
        let r = &self.rows[i];
        if z > 0.0 && z.is_finite() {
            src.pick(r.p, r.q, z, &[], self.weight(i))
        } else {
            src.pick(r.p, r.q, r.sums.p, &[], |x, _| x)
        }
    }
}

/// Block verification of the chain `rows` (γ = rows.len() positions) with randomness from `src`:
/// the backward scan, then the residual token (module docs).
pub(crate) fn verify<T: Real, S: Source>(rows: &[Position<'_, T>], src: &mut S) -> BlockOutcome {
    let mut b = Block::new(rows);
    let g = b.len();
    for i in (1..=g).rev() {
        if src.coin(b.h(i)) {
            let token = (i < g).then(|| b.residual(i, src));
            return BlockOutcome { accepted: i, token };
        }
    }
    if g == 0 {
        return BlockOutcome { accepted: 0, token: None };
    }
    BlockOutcome { accepted: 0, token: Some(b.residual(0, src)) }
}
