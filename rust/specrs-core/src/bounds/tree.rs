//! Expected accepted tokens of one draft tree on an explicit toy Markov model, with the tree
//! sequence optimum's upper bound beside it (docs/theory.md §14.5):
//!
//! ```text
//! top-down   E[τ] of the top-down walk (§6.3): the kind's own (rsd-c's rrs_wor for traversal trees)
//! traversal  E[τ] of traversal verification on the same trees (§14)
//! bound      Σ_{i=1}^L α*_i,  α*_i = max over couplings of P(Y_{1:i} is a depth-i path of the tree)
//! ```
//!
//! α*_i is the multi-draft optimum (Hu et al. 2025, §2) with the tree's depth-i paths as the
//! drafts and p^(i), the target's law of the first i tokens, as the target: a max-flow over
//! sequences (`flow::optimal_plan`). Any lossless verifier accepts at least i tokens only when
//! the first i emitted tokens are a depth-i path, so P(τ ≥ i) ≤ α*_i and E[τ] ≤ Σ_i α*_i, for
//! every verifier, whatever it sees of p and q. Unlike chains, the per-depth optima need not be
//! reached by one coupling at once, so the bound may be above the full-information optimum.

use std::collections::HashMap;

use crate::tree::exact::{last_token, tree_law};
use crate::tree::{DistRef, TreeKind};
use crate::{Error, Result, Verifier};

/// E[accepted tokens] per step of the kind's walk and of traversal on the same trees, the
/// per-depth optima α*_i and their sum (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct TreeOptima {
    pub depth: usize,
    pub top_down: f64,
    pub traversal: f64,
    pub per_depth: Vec<f64>,
    pub bound: f64,
}

/// Σ_law P · (len − 1): E[accepted] of a step law (the last token is not a draft).
fn accepted(law: &[(Vec<i64>, f64)]) -> f64 {
    law.iter().map(|(t, pr)| pr * (t.len() - 1) as f64).sum()
}

/// [`TreeOptima`] of the trees `kind` draws with `shape` from the Markov draft `q_table`,
/// verified against `p_table` ((V, V) tables, row a = the law after token a; first token after
/// `root`). Traversal runs with siblings without replacement unless the kind draws them i.i.d.
pub fn tree_optima(kind: TreeKind, shape: &[usize], p_table: &[f64], q_table: &[f64], v: usize, root: usize) -> Result<TreeOptima> {
    if kind == TreeKind::RsdS {
        return Err(Error::invalid("kind", "tree optima are for constant-branching kinds (rsd-s trees are not i.i.d. per node)"));
    }
    let trees = tree_law(kind, shape, q_table, v, root, true)?;
    crate::tree::exact::check_table("p_table", p_table, v)?;
    let wor = kind.distinct();
    let (mut top_down, mut traversal) = (0.0, 0.0);
    for (t, pr) in &trees {
        crate::cancel::check(t.nodes.len() * v)?;
        let row = |i: usize| DistRef::D64(&p_table[last_token(t, i, root) * v..][..v]);
        // A traversal tree's top-down walk is rsd-c's (the same Gumbel-top-k tree, rrs_wor).
        let mut td = t.clone();
        if kind.verifier() == Verifier::Traversal {
            td.kind = TreeKind::RsdC;
        }
        top_down += pr * accepted(&td.verify_law(t.nodes.len(), row)?);
        traversal += pr * accepted(&t.traversal_law(row, wor, |_| {})?);
    }
    let mut per_depth = Vec::with_capacity(shape.len());
    for d in 1..=shape.len() {
        // p^(d) over the V^d sequences (index: base-V digits, first token most significant).
        let n_seq = v.pow(d as u32);
        let mut pd = vec![0.0f64; n_seq];
        for (s, x) in pd.iter_mut().enumerate() {
            let (mut pr, mut a, mut rest) = (1.0, root, s);
            let mut digits = Vec::with_capacity(d);
            for _ in 0..d {
                digits.push(rest % v);
                rest /= v;
            }
            for &b in digits.iter().rev() {
                pr *= p_table[a * v + b];
                a = b;
            }
            *x = pr;
        }
        // Each tree's depth-d paths, merged by path set (the flow needs sets only).
        let mut sets: HashMap<Vec<i64>, f64> = HashMap::new();
        for (t, pr) in &trees {
            let mut paths: Vec<i64> = (0..t.nodes.len())
                .filter(|&i| t.nodes[i].depth == d)
                .map(|i| t.path_tokens(i).iter().fold(0i64, |acc, &x| acc * v as i64 + x))
                .collect();
            paths.sort_unstable();
            paths.dedup();
            *sets.entry(paths).or_insert(0.0) += pr;
        }
        let n = sets.keys().map(|s| s.len()).max().unwrap_or(1).max(1);
        let (mut drafts, mut probs) = (Vec::new(), Vec::new());
        for (s, pr) in sets {
            // Pad with the set's first path (a repeated draft leaves the set unchanged).
            let first = s.first().copied().unwrap_or(0);
            drafts.extend((0..n).map(|k| s.get(k).copied().unwrap_or(first)));
            probs.push(pr);
        }
        per_depth.push(crate::flow::optimal_plan(&pd, &drafts, n, &probs)?.value());
    }
    let bound = per_depth.iter().sum();
    Ok(TreeOptima { depth: shape.len(), top_down, traversal, per_depth, bound })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::exact::tests::table;

    /// On a chain the bound is the full-information chain optimum Σ_i Σ_{x^i} min(p, q);
    /// top-down ≤ traversal ≤ bound on every tree instance.
    #[test]
    fn the_bound_is_above_traversal_and_top_down_and_exact_on_chains() {
        let v = 3;
        for seed in 0..4u64 {
            let (p, q) = (table(v, 80 + seed, seed % 2 == 0), table(v, 90 + seed, false));
            let o = tree_optima(TreeKind::RsdC, &[1, 1], &p, &q, v, 1).unwrap();
            let mut want = 0.0;
            for a in 0..v {
                want += p[v + a].min(q[v + a]);
                for b in 0..v {
                    want += (p[v + a] * p[a * v + b]).min(q[v + a] * q[a * v + b]);
                }
            }
            assert!((o.bound - want).abs() < 1e-12, "{o:?} vs {want}");
            for (kind, shape) in [(TreeKind::Traversal, &[2usize, 1][..]), (TreeKind::Iid, &[2, 2]), (TreeKind::RsdC, &[1, 2])] {
                let o = tree_optima(kind, shape, &p, &q, v, 1).unwrap();
                assert!(o.top_down <= o.traversal + 1e-12 && o.traversal <= o.bound + 1e-12, "{kind:?} {shape:?}: {o:?}");
                assert!(o.per_depth.iter().all(|&a| (0.0..=1.0 + 1e-12).contains(&a)));
            }
        }
        assert_eq!(tree_optima(TreeKind::RsdS, &[2, 2], &table(3, 1, false), &table(3, 2, false), 3, 0).unwrap_err().arg(), "kind");
    }
}
