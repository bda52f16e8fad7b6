//! Tree builders: given q(·|path) at every frontier node, pick the children of one level.
//!
//! Every kind draws through the one sampler of `crate::sample` (the drafts of `draft` for the
//! matching scheme: `sample::draw_scheme` on the row's block sums), so a tree level and a row of
//! `draft` have one implementation and one law (`law::scheme_law`).
//!
//! * RSD-C: Gumbel-top-b per node. Drawn as successive sampling without replacement, which has
//!   exactly the Gumbel-top-k law in draw order (Kool, van Hoof & Welling, ICML 2019) but needs
//!   one uniform per child instead of one Gumbel per vocabulary entry.
//! * RSD-S: stochastic beam search (Kool et al. 2019; docs/theory.md §6.2) with the stable
//!   truncated-Gumbel formula. Per beam only the top-W perturbed children can survive the global
//!   top-W, so their untruncated values G̃ are generated top-down (largest first: Z = φ(s) + Gumbel,
//!   then each next one a Gumbel with location φ(s) + log(rest mass) truncated below the previous),
//!   which is the exact joint law of the W largest of the V perturbed values. The rest mass is the
//!   sampler's sum of what remains, not 1 − Σ drawn (that subtraction put RSD-S ~1% off on
//!   q = softmax(36, 0, 0)).
//! * iid: b i.i.d. draws; greedy: the top b−1 tokens plus one draw from the rest (Hu et al. 2025);
//!   topk: the top b tokens (ties to the lower id).
//! * spechub (Sun et al., EMNLP 2024; docs/theory.md §3), b ≤ 2: hub a = argmax q (ties to the lower id);
//!   x1 ~ q; x2 = a if x1 ≠ a, else x2 ~ q without a. Children are stored as (x1, x2).

use super::arena::{DraftTree, NewChild};
use super::dist::{checked_copy, DistRef};
use super::kind::TreeKind;
use crate::sample::{draw_scheme, Sampler};
use crate::{with_dist, Error, Real, Result, Rng};

/// Children chosen for one frontier node: (entry position → token, q(x), score).
struct Pick {
    token: i64,
    q: f64,
    score: f64,
}

fn too_few(kind: TreeKind, row: usize, support: usize, b: usize, level: usize) -> Error {
    let arg = if kind == TreeKind::RsdS { "beam_width" } else { "branching" };
    Error::invalid(
        arg,
        format!(
            "asks for {b} distinct children at depth {} but row {row} of `probs` has only {support} tokens with positive probability",
            level + 1
        ),
    )
}

/// log(exp(a) + exp(b)) without overflow.
fn logaddexp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// log(1 − exp(x)) for x ≤ 0, accurate near 0 as well as far below it (Mächler 2012): near 0,
/// 1 − exp(x) cancels, and −expm1(x) does not.
fn log1mexp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

/// G(s, x) = T − softplus(u), u = T − G̃ + log(1 − exp(G̃ − Z)): the perturbed child value
/// conditioned on its parent's value T (docs/theory.md §6.2, stable form). G̃ = Z gives T exactly.
pub fn truncate(t: f64, z: f64, g_tilde: f64) -> f64 {
    if g_tilde >= z {
        return t;
    }
    let u = t - g_tilde + log1mexp(g_tilde - z);
    t - u.max(0.0) - (-u.abs()).exp().ln_1p()
}

#[allow(clippy::too_many_arguments)]
fn pick_node<T: Real>(kind: TreeKind, ids: Option<&[i64]>, vals: &[T], sums: Vec<f64>, b: usize, phi: f64, rng: &mut Rng) -> Vec<Pick> {
    let tok = |x: usize| ids.map_or(x as i64, |i| i[x]);
    let pick = |x: usize, score: f64| Pick { token: tok(x), q: vals[x].to_f64(), score };
    let mut s = Sampler::new(vals, sums);
    if kind == TreeKind::RsdS {
        // Top-down generation of the `b` largest G̃_x = φ(s) + log q(x) + Gumbel_x.
        let mut out = Vec::with_capacity(b);
        let mut prev = f64::INFINITY;
        while out.len() < b {
            let rest = s.rest();
            if rest <= 0.0 {
                break;
            }
            let mu = phi + rest.ln();
            let Some(x) = s.draw(rng) else { break };
            let g = if prev == f64::INFINITY {
                mu + rng.gumbel()
            } else {
                // Gumbel(μ) conditioned on ≤ prev: μ − log(exp(−(prev − μ)) + E), E ~ Exp(1).
                mu - logaddexp(-(prev - mu), rng.exponential().ln())
            };
            prev = g;
            out.push(pick(x, g));
        }
        return out;
    }
    // Every other kind draws its children by the scheme the registry pairs it with; a draw stops
    // early only when the support runs out (a truncating level).
    let scheme = kind.child_scheme(b);
    draw_scheme(&mut s, scheme, b, tok, rng).into_iter().map(|x| pick(x, 0.0)).collect()
}

impl DraftTree {
    /// Adds one level from the draft distributions of the frontier nodes (row i ↔ frontier[i]).
    /// Returns the ids of the new nodes. Nothing changes on error.
    pub fn expand(&mut self, qs: &[DistRef<'_>]) -> Result<Vec<usize>> {
        if self.done() {
            return Err(Error::invalid("probs", "the tree is complete; no frontier is left to expand"));
        }
        if qs.len() != self.frontier.len() {
            return Err(Error::invalid(
                "probs",
                format!(
                    "has {} rows but the frontier has {} nodes (one draft distribution per frontier node)",
                    qs.len(),
                    self.frontier.len()
                ),
            ));
        }
        // Validate (and copy, in the same pass) every row before drawing anything.
        let mut rows = Vec::with_capacity(qs.len());
        for (i, q) in qs.iter().enumerate() {
            let row = checked_copy("probs", *q).map_err(|e| e.in_row(i))?;
            self.check_support(i, row.1)?;
            rows.push(row);
        }
        self.expand_checked(rows)
    }

    /// Rows with fewer positive entries than the level must draw distinct children from.
    fn check_support(&self, i: usize, support: usize) -> Result<()> {
        let b = self.shape[self.level];
        let must = match self.kind {
            _ if self.truncate => 1,
            _ if !self.kind.distinct() => 1,
            TreeKind::RsdS if self.level > 0 => 1,
            _ => b,
        };
        if support < must {
            return Err(too_few(self.kind, i, support, b, self.level));
        }
        Ok(())
    }

    /// [`Self::expand`] from rows already validated and copied (block sums, number of positive
    /// entries, the stored row), e.g. by `logits::warped_row`: the children are drawn from the
    /// stored rows themselves. Nothing changes on error.
    pub fn expand_checked(&mut self, rows: Vec<super::logits::Warped>) -> Result<Vec<usize>> {
        if self.done() {
            return Err(Error::invalid("probs", "the tree is complete; no frontier is left to expand"));
        }
        if rows.len() != self.frontier.len() {
            return Err(Error::invalid(
                "probs",
                format!(
                    "has {} rows but the frontier has {} nodes (one draft distribution per frontier node)",
                    rows.len(),
                    self.frontier.len()
                ),
            ));
        }
        for (i, row) in rows.iter().enumerate() {
            self.check_support(i, row.1)?;
        }
        let b = self.shape[self.level];
        let frontier = self.frontier.clone();
        let mut picks: Vec<(usize, Vec<Pick>)> = Vec::with_capacity(frontier.len());
        let mut copies = Vec::with_capacity(rows.len());
        for ((sums, _, copy), &f) in rows.into_iter().zip(&frontier) {
            let phi = self.nodes[f].phi;
            let kind = self.kind;
            let rng = &mut self.rng;
            let p = with_dist!(copy.as_ref(), |ids, vals| pick_node(kind, ids, vals, sums, b, phi, rng));
            picks.push((f, p));
            copies.push(copy);
        }
        let children = if self.kind == TreeKind::RsdS { self.sbs_select(picks, b) } else { plain(picks) };
        for (copy, &f) in copies.into_iter().zip(&frontier) {
            self.nodes[f].q = Some(self.dists.len());
            self.dists.push(copy);
        }
        let start = self.nodes.len();
        self.append_level(&children);
        Ok((start..self.nodes.len()).collect())
    }

    /// Stochastic beam search selection: convert each child's G̃ to its value conditioned on the
    /// parent's value, keep the global top W, and order them by (parent id, score desc).
    fn sbs_select(&self, picks: Vec<(usize, Vec<Pick>)>, w: usize) -> Vec<NewChild> {
        let mut pool: Vec<NewChild> = Vec::new();
        for (f, ps) in picks {
            let t = self.nodes[f].score;
            let phi = self.nodes[f].phi;
            let z = ps.first().map_or(0.0, |p| p.score);
            for p in ps {
                pool.push(NewChild { parent: f, token: p.token, phi: phi + p.q.ln(), score: truncate(t, z, p.score) });
            }
        }
        // Global top W by score; ties (probability zero) broken by parent then draw order.
        pool.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal));
        pool.truncate(w);
        pool.sort_by(|a, b| a.parent.cmp(&b.parent).then(b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal)));
        pool
    }
}

fn plain(picks: Vec<(usize, Vec<Pick>)>) -> Vec<NewChild> {
    picks
        .into_iter()
        .flat_map(|(f, ps)| ps.into_iter().map(move |p| NewChild { parent: f, token: p.token, phi: 0.0, score: 0.0 }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_exact_at_the_max_and_monotone() {
        assert_eq!(truncate(-1.3, 2.0, 2.0), -1.3);
        let a = truncate(-1.3, 2.0, 1.5);
        let b = truncate(-1.3, 2.0, 0.5);
        assert!(b < a && a < -1.3);
        // Matches the unstable textbook form −log(exp(−T) − exp(−Z) + exp(−G̃)).
        let (t, z, g) = (0.7f64, 1.9f64, 0.4f64);
        let direct = -((-t).exp() - (-z).exp() + (-g).exp()).ln();
        assert!((truncate(t, z, g) - direct).abs() < 1e-12);
        // G̃ a hair below Z: log(1 − exp(G̃ − Z)) must not cancel (the textbook form loses every
        // digit here; the conditioned value stays strictly below T and finite).
        for d in [1e-12, 1e-15, 1e-300] {
            let v = truncate(0.0, 0.0, -d);
            assert!(v.is_finite() && v < 0.0 || d < 1e-290, "{d}: {v}");
            assert!((log1mexp(-d) - d.ln()).abs() < 1e-6, "{d}");
        }
        assert!((log1mexp(-3.0) - (1.0 - (-3.0f64).exp()).ln()).abs() < 1e-15);
    }
}
