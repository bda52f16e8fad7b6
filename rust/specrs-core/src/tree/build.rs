//! Tree builders: given q(·|path) at every frontier node, pick the children of one level.
//!
//! * RSD-C: Gumbel-top-b per node. Drawn as successive sampling without replacement, which has
//!   exactly the Gumbel-top-k law in draw order (Kool, van Hoof & Welling, ICML 2019) but needs
//!   one uniform per child instead of one Gumbel per vocabulary entry.
//! * RSD-S: stochastic beam search (Kool et al. 2019; docs/theory.md §6.2) with the stable
//!   truncated-Gumbel formula. Per beam only the top-W perturbed children can survive the global
//!   top-W, so their untruncated values G̃ are generated top-down (largest first: Z = φ(s) + Gumbel,
//!   then each next one a Gumbel with location φ(s) + log(rest mass) truncated below the previous),
//!   which is the exact joint law of the W largest of the V perturbed values.
//! * iid: b i.i.d. draws; greedy: the top b−1 tokens plus one draw from the rest (Hu et al. 2025);
//!   topk: the top b tokens (ties to the lower id).
//! * spechub (Sun et al., EMNLP 2024; docs/theory.md §3), b ≤ 2: hub a = argmax q (ties to the lower id);
//!   x1 ~ q; x2 = a if x1 ≠ a, else x2 ~ q without a. Children are stored as (x1, x2).

use super::arena::{DraftTree, NewChild};
use super::dist::{checked_blocks, draw_iid, Dist, DistRef, WorSampler};
use super::kind::TreeKind;
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

/// Positions of the `k` largest entries, largest first, ties to the lower position (the order of
/// `law::top_tokens`), in one pass with a k-entry buffer: O(V) when k is small.
pub fn top_k<T: Real>(vals: &[T], k: usize) -> Vec<usize> {
    let mut buf: Vec<(f64, usize)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return Vec::new();
    }
    for (i, x) in vals.iter().enumerate() {
        let v = x.to_f64();
        if buf.len() == k && v <= buf[k - 1].0 {
            continue;
        }
        // After every entry ≥ v (equal values keep the earlier position first).
        let at = buf.partition_point(|e| e.0 >= v);
        buf.insert(at, (v, i));
        buf.truncate(k);
    }
    buf.into_iter().map(|e| e.1).collect()
}

/// SpecHub's hub: the entry position of argmax q, ties to the lowest token id (the order of
/// `law::top_tokens` and of the verifiers module, whatever the order of a sparse row).
pub fn hub<T: Real>(ids: Option<&[i64]>, vals: &[T]) -> usize {
    let tok = |x: usize| ids.map_or(x as i64, |i| i[x]);
    let mut best = 0;
    for (x, v) in vals.iter().enumerate() {
        let (v, b) = (v.to_f64(), vals[best].to_f64());
        if v > b || (v == b && tok(x) < tok(best)) {
            best = x;
        }
    }
    best
}

/// log(exp(a) + exp(b)) without overflow.
fn logaddexp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// G(s, x) = T − softplus(u), u = T − G̃ + log1p(−exp(G̃ − Z)): the perturbed child value
/// conditioned on its parent's value T (docs/theory.md §6.2, stable form). G̃ = Z gives T exactly.
pub fn truncate(t: f64, z: f64, g_tilde: f64) -> f64 {
    if g_tilde >= z {
        return t;
    }
    let u = t - g_tilde + (-(g_tilde - z).exp()).ln_1p();
    t - u.max(0.0) - (-u.abs()).exp().ln_1p()
}

#[allow(clippy::too_many_arguments)]
fn pick_node<T: Real>(
    kind: TreeKind,
    ids: Option<&[i64]>,
    vals: &[T],
    sums: Vec<f64>,
    support: usize,
    b: usize,
    phi: f64,
    rng: &mut Rng,
) -> Vec<Pick> {
    let tok = |x: usize| ids.map_or(x as i64, |i| i[x]);
    let mut out = Vec::with_capacity(b);
    match kind {
        TreeKind::RsdC => {
            let mut s = WorSampler::new(vals, sums);
            while out.len() < b {
                let Some((x, v)) = s.draw(rng) else { break };
                out.push(Pick { token: tok(x), q: v, score: 0.0 });
            }
        }
        TreeKind::Iid => {
            for _ in 0..b {
                if let Some((x, v)) = draw_iid(vals, &sums, rng) {
                    out.push(Pick { token: tok(x), q: v, score: 0.0 });
                }
            }
        }
        TreeKind::TopK | TreeKind::Greedy => {
            // Capped by the support (only reachable with `truncate`): never a zero-mass child.
            let fixed = if kind == TreeKind::TopK { b } else { b - 1 }.min(support);
            let top = top_k(vals, fixed);
            let mut s = WorSampler::new(vals, sums);
            for &x in &top {
                s.exclude(x);
                out.push(Pick { token: tok(x), q: vals[x].to_f64(), score: 0.0 });
            }
            if kind == TreeKind::Greedy {
                if let Some((x, v)) = s.draw(rng) {
                    out.push(Pick { token: tok(x), q: v, score: 0.0 });
                }
            }
        }
        TreeKind::SpecHub => {
            // x1 ~ q; the hub a completes the pair unless x1 = a, then x2 ~ q without a (the
            // sampler has already excluded x1). b = 1: the single draw x1 (a plain SD chain).
            let mut s = WorSampler::new(vals, sums);
            if let Some((x1, v1)) = s.draw(rng) {
                out.push(Pick { token: tok(x1), q: v1, score: 0.0 });
                if b >= 2 {
                    let a = hub(ids, vals);
                    let second = if x1 == a { s.draw(rng) } else { Some((a, vals[a].to_f64())) };
                    // None only when the support is the hub alone (reachable with `truncate`).
                    if let Some((x2, v2)) = second {
                        out.push(Pick { token: tok(x2), q: v2, score: 0.0 });
                    }
                }
            }
        }
        TreeKind::RsdS => {
            // Top-down generation of the `b` largest G̃_x = φ(s) + log q(x) + Gumbel_x.
            let mut s = WorSampler::new(vals, sums);
            let mut prev = f64::INFINITY;
            while out.len() < b {
                let rest = s.rest;
                if rest <= 0.0 {
                    break;
                }
                let mu = phi + rest.ln();
                let Some((x, v)) = s.draw(rng) else { break };
                let g = if prev == f64::INFINITY {
                    mu + rng.gumbel()
                } else {
                    // Gumbel(μ) conditioned on ≤ prev: μ − log(exp(−(prev − μ)) + E), E ~ Exp(1).
                    mu - logaddexp(-(prev - mu), rng.exponential().ln())
                };
                prev = g;
                out.push(Pick { token: tok(x), q: v, score: g });
            }
        }
    }
    out
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
        let b = self.shape[self.level];
        // Validate every row before drawing anything.
        let mut checked = Vec::with_capacity(qs.len());
        for (i, q) in qs.iter().enumerate() {
            let (sums, support) = with_dist!(*q, |ids, vals| checked_blocks("probs", ids, vals)).map_err(|e| e.in_row(i))?;
            let must = match self.kind {
                _ if self.truncate => 1,
                TreeKind::Iid => 1,
                TreeKind::RsdS if self.level > 0 => 1,
                _ => b,
            };
            if support < must {
                return Err(too_few(self.kind, i, support, b, self.level));
            }
            checked.push((sums, support));
        }
        let frontier = self.frontier.clone();
        let mut picks: Vec<(usize, Vec<Pick>)> = Vec::with_capacity(frontier.len());
        for ((q, (sums, support)), &f) in qs.iter().zip(checked).zip(&frontier) {
            let phi = self.nodes[f].phi;
            let kind = self.kind;
            let rng = &mut self.rng;
            let p = with_dist!(*q, |ids, vals| pick_node(kind, ids, vals, sums, support, b, phi, rng));
            picks.push((f, p));
        }
        let children = if self.kind == TreeKind::RsdS { self.sbs_select(picks, b) } else { plain(picks) };
        for (q, &f) in qs.iter().zip(&frontier) {
            self.nodes[f].q = Some(self.dists.len());
            self.dists.push(Dist::from_ref(*q));
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
    fn top_k_matches_law_top_tokens() {
        let mut r = Rng::new(1);
        for _ in 0..200 {
            // Few distinct values so that ties are common.
            let v: Vec<f64> = (0..40).map(|_| (r.uniform() * 5.0).floor()).collect();
            for k in [0, 1, 3, 7, 40] {
                assert_eq!(top_k(&v, k), crate::law::top_tokens(&v, k));
            }
        }
    }

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
    }
}
