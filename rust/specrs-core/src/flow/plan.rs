//! [`ExplicitPlan`]: the optimal acceptance α*, a minimising token set H and an optimal transport
//! plan π(y | draft row) for an explicit joint draft law. This type is the stable interface used
//! by the optimal verifier; its public methods are the contract.

use super::graph::SetGraph;
use super::push_relabel::MaxFlow;
use crate::pool;
use crate::Rng;

/// The solved optimal-transport problem of Hu et al. (ICLR 2025), eq. 7, for one explicit law.
///
/// The plan is a coupling of the draft law (rows of `drafts` with probabilities `probs`) and the
/// target p:
///
/// ```text
/// π(y | row) = a(y | row) + ρ(row) · r(y)
/// ```
///
/// where the *accept part* a(· | row) lives on the tokens of the row (flow on the arcs
/// set → token of a maximum flow, divided by the set's probability), ρ(row) = 1 − Σ_y a(y | row)
/// is the rejection probability, and the *residual* r ∝ (p − inflow)₊ on the tokens outside the
/// minimum-cut set H is shared by every row. Rows with the same token set get the same
/// conditional. Σ_row probs[row] · π(y | row) = p(y) (up to rounding), and because ρ(row) > 0
/// only for rows inside H while r vanishes on H, the residual never lands on a draft token of a
/// row that can reject: the acceptance Pr[y ∈ row] of the plan is exactly the flow value α*.
///
/// Rows of probability 0 carry no flow; their conditional is r (ρ = 1).
#[derive(Debug, Clone)]
pub struct ExplicitPlan {
    value: f64,
    cut_value: f64,
    cut: Vec<usize>,
    vocab: usize,
    n: usize,
    drafts: Vec<usize>,
    row_group: Vec<u32>,
    group_start: Vec<usize>,
    accept_tokens: Vec<usize>,
    accept_probs: Vec<f64>,
    group_reject: Vec<f64>,
    residual: Vec<f64>,
    residual_support: Vec<usize>,
    residual_cdf: Vec<f64>,
}

impl Drop for ExplicitPlan {
    /// Hands the large arrays back to the per-thread scratch pool, so that solving many laws in
    /// a row does not pay page faults for fresh memory on every call.
    fn drop(&mut self) {
        for v in [&mut self.drafts, &mut self.group_start, &mut self.accept_tokens] {
            pool::give(std::mem::take(v));
        }
        for v in [&mut self.accept_probs, &mut self.group_reject] {
            pool::give(std::mem::take(v));
        }
        pool::give(std::mem::take(&mut self.row_group));
    }
}

impl ExplicitPlan {
    /// Assembles the plan from a maximum flow. `p` and the weights of `g` are normalised.
    pub(crate) fn from_flow(p: &[f64], drafts: Vec<usize>, n: usize, mut g: SetGraph, mf: MaxFlow) -> Self {
        let vocab = p.len();
        let k = g.tokens.len();
        let mut in_cut_global = vec![false; vocab];
        let mut cut = Vec::new();
        for t in 0..k {
            if mf.in_cut[t] {
                in_cut_global[g.tokens[t]] = true;
                cut.push(g.tokens[t]);
            }
        }
        // Inflow of each token and the accept part of each set.
        let mut inflow = vec![0.0f64; vocab];
        let mut group_start = pool::with_capacity::<usize>(g.groups() + 1);
        group_start.push(0);
        let mut accept_tokens = pool::with_capacity::<usize>(g.etok.len());
        let mut accept_probs = pool::with_capacity::<f64>(g.etok.len());
        let mut q_h = 0.0f64;
        let mut group_reject = pool::with_capacity::<f64>(g.groups());
        let mut value = 0.0f64;
        for j in 0..g.groups() {
            let w = g.weight[j];
            let edges = g.group_edges(j);
            let out: f64 = edges.clone().map(|e| mf.flow[e]).sum();
            value += out;
            let inside = edges.clone().all(|e| mf.in_cut[g.etok[e] as usize]);
            if inside {
                q_h += w;
            }
            // A set outside H^n has its source arc in the cut, so it sends all of w: normalise
            // by what it sent (equal to w up to rounding) and never reject. A set inside H^n
            // rejects what it could not send.
            let live = w > 0.0;
            let (denom, reject) = if !live {
                (1.0, 1.0)
            } else if inside || out <= 0.0 {
                (w, ((w - out) / w).max(0.0))
            } else {
                (out, 0.0)
            };
            // One division per set, not per edge, unless the set's mass is so small (subnormal)
            // that its inverse overflows: then f/denom (≤ 1) directly, never f·inf.
            let inv = 1.0 / denom;
            let finite = inv.is_finite();
            for e in edges {
                let f = mf.flow[e];
                if f > 0.0 {
                    let y = g.tokens[g.etok[e] as usize];
                    inflow[y] += f;
                    if live {
                        accept_tokens.push(y);
                        accept_probs.push(if finite { f * inv } else { f / denom });
                    }
                }
            }
            group_start.push(accept_tokens.len());
            group_reject.push(reject);
        }
        // Residual r ∝ (p − inflow)₊ outside H. If rounding leaves nothing (α* = 1 up to ulps),
        // fall back to p outside H, then to p: the mass it carries is itself only ulps.
        let mut residual: Vec<f64> = (0..vocab).map(|y| if in_cut_global[y] { 0.0 } else { (p[y] - inflow[y]).max(0.0) }).collect();
        let mut total: f64 = residual.iter().sum();
        if total <= 0.0 {
            residual = (0..vocab).map(|y| if in_cut_global[y] { 0.0 } else { p[y] }).collect();
            total = residual.iter().sum();
        }
        if total <= 0.0 {
            residual = p.to_vec();
            total = residual.iter().sum();
        }
        let mut residual_support = Vec::new();
        let mut residual_cdf = Vec::new();
        let mut acc = 0.0;
        for (y, r) in residual.iter_mut().enumerate() {
            *r /= total;
            if *r > 0.0 {
                acc += *r;
                residual_support.push(y);
                residual_cdf.push(acc);
            }
        }
        // Cut value 1 + p(H) − Q(H), evaluated from the data (a certificate: value ≤ α* ≤ cut).
        let p_h: f64 = cut.iter().map(|&y| p[y]).sum();
        let cut_value = 1.0 + p_h - q_h;
        // α* is a probability: the flow's sum must not round past 1.
        let value = value.min(1.0);
        let row_group = std::mem::take(&mut g.row_group);
        g.recycle();
        pool::give(mf.flow);
        ExplicitPlan {
            value,
            cut_value,
            cut,
            vocab,
            n,
            drafts,
            row_group,
            group_start,
            accept_tokens,
            accept_probs,
            group_reject,
            residual,
            residual_support,
            residual_cdf,
        }
    }

    /// α*: the maximum-flow value, i.e. the optimal probability that the emitted token is one of
    /// the drafts.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// 1 + p(H) − Q(H) for the returned cut H (evaluated from the inputs). By LP duality
    /// value ≤ α* ≤ cut_value, so `cut_value − value` certifies the accuracy (a few ulps).
    pub fn cut_value(&self) -> f64 {
        self.cut_value
    }

    /// The token set H attaining α* = 1 + min_H (p(H) − Q(H)), ascending. It is the smallest
    /// minimiser: the draft tokens reachable from the source in the final residual network.
    pub fn cut(&self) -> &[usize] {
        &self.cut
    }

    /// Vocabulary size V (length of p).
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Number of drafts per row.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of rows m of the law.
    pub fn rows(&self) -> usize {
        self.row_group.len()
    }

    /// The draft tuple of `row` (token ids in draw order).
    pub fn row(&self, row: usize) -> &[usize] {
        &self.drafts[row * self.n..(row + 1) * self.n]
    }

    /// Number of distinct token sets (nodes of the multiset graph).
    pub fn groups(&self) -> usize {
        self.group_reject.len()
    }

    /// The token-set group of `row`; rows with the same token set share one conditional.
    pub fn group_of(&self, row: usize) -> usize {
        self.row_group[row] as usize
    }

    /// Accept part of π(· | row): distinct draft tokens of the row and a(y | row) > 0 for each.
    pub fn accept(&self, row: usize) -> (&[usize], &[f64]) {
        let g = self.row_group[row] as usize;
        let range = self.group_start[g]..self.group_start[g + 1];
        (&self.accept_tokens[range.clone()], &self.accept_probs[range])
    }

    /// ρ(row) = Pr[the emitted token is drawn from the residual | row].
    pub fn reject_prob(&self, row: usize) -> f64 {
        self.group_reject[self.row_group[row] as usize]
    }

    /// The residual distribution r over the vocabulary (dense, sums to 1).
    pub fn residual(&self) -> &[f64] {
        &self.residual
    }

    /// π(· | row) as a dense vector of length V.
    pub fn conditional(&self, row: usize) -> Vec<f64> {
        let rho = self.reject_prob(row);
        let mut out: Vec<f64> = self.residual.iter().map(|&r| rho * r).collect();
        let (toks, probs) = self.accept(row);
        for (&y, &a) in toks.iter().zip(probs) {
            out[y] += a;
        }
        out
    }

    /// Draws y ~ π(· | row). Returns the token and, when it is one of the row's drafts, the first
    /// draft position holding it (the draft that is accepted); `None` means every draft was
    /// rejected and y came from the residual. Emitted tokens are distributed exactly as p when
    /// `row` is drawn from the law. Uses one uniform, plus one more when the draft is rejected.
    pub fn sample(&self, row: usize, rng: &mut Rng) -> (usize, Option<usize>) {
        let u = rng.uniform();
        let (toks, probs) = self.accept(row);
        let mut acc = 0.0;
        for (&y, &a) in toks.iter().zip(probs) {
            acc += a;
            if u < acc {
                return (y, self.row(row).iter().position(|&x| x == y));
            }
        }
        let y = self.sample_residual(rng);
        (y, self.row(row).iter().position(|&x| x == y))
    }

    /// Draws y ~ r by binary search in the cumulative residual.
    pub fn sample_residual(&self, rng: &mut Rng) -> usize {
        let total = *self.residual_cdf.last().unwrap_or(&1.0);
        let u = rng.uniform() * total;
        let i = self.residual_cdf.partition_point(|&c| c <= u);
        self.residual_support[i.min(self.residual_support.len().saturating_sub(1))]
    }
}
