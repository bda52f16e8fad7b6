//! Exact laws on toy first-order Markov models (`table[a*V + b]` = P(next = b | last = a)), for
//! tests: the law of the tree each kind builds, and the law of one step's emitted tokens
//! Σ_tree P(tree) · (law of `verify` on that tree).
//!
//! * Constant-branching kinds: every frontier node's children tuple follows the scheme law of its
//!   q row independently (`law::scheme_law` of the registry's `TreeKind::child_scheme`: iid, wor
//!   for Gumbel-top-k, greedy, spechub, topk), so trees are enumerated level by level as products
//!   of tuple laws.
//! * RSD-S: SBS with a consistent Gumbel process keeps at depth l the W length-l prefixes with the
//!   largest G(s) = max over extensions, i.e. the first W distinct length-l prefixes in a
//!   successive-sampling-without-replacement ranking of the length-L sequences (Kool et al. 2019).
//!   The ranking is enumerated lazily: a sequence drawn is "useful" if it adds a new prefix at a
//!   depth still short of W; since the restriction of a without-replacement ranking to a subset is
//!   again one, the next useful sequence has law q(s) / Σ_{useful} q, and the draws in between are
//!   summed out exactly.

use std::collections::HashMap;

use super::arena::{DraftTree, NewChild};
use super::dist::{Dist, DistRef};
use super::kind::TreeKind;
use crate::law::scheme_law;
use crate::{validate, Error, Result};

/// Largest number of trees (or ranking paths for RSD-S) enumerated.
pub use crate::limits::MAX_EXACT_TREES as MAX_TREES;
use crate::limits::{MAX_EXACT_TREE_DEPTH, MAX_EXACT_TREE_VOCAB};

/// Canonical form of a tree: (parent id, token) of every non-root node in flat order.
pub type TreeKey = Vec<(i64, i64)>;

pub fn key(t: &DraftTree) -> TreeKey {
    t.nodes[1..].iter().map(|n| (n.parent, n.token)).collect()
}

pub(crate) fn check_table(arg: &str, table: &[f64], v: usize) -> Result<()> {
    if v == 0 || table.len() != v * v {
        return Err(Error::invalid(arg, format!("must be a (V, V) table; got {} entries for V = {v}", table.len())));
    }
    if v > MAX_EXACT_TREE_VOCAB {
        return Err(Error::too_large(arg, format!("V = {v}; exact tree laws are for V ≤ {MAX_EXACT_TREE_VOCAB}")));
    }
    for a in 0..v {
        validate::distribution(arg, &table[a * v..(a + 1) * v]).map_err(|e| e.in_row(a))?;
    }
    Ok(())
}

pub(crate) fn last_token(t: &DraftTree, node: usize, root: usize) -> usize {
    if node == 0 {
        root
    } else {
        t.nodes[node].token as usize
    }
}

/// Exact law of the tree built by `kind` with `shape` from the Markov draft `q_table`.
/// `truncate`: levels draw min(b, support) distinct children (see `DraftTree::truncate`).
pub fn tree_law(kind: TreeKind, shape: &[usize], q_table: &[f64], v: usize, root: usize, truncate: bool) -> Result<Vec<(DraftTree, f64)>> {
    check_table("q_table", q_table, v)?;
    validate::token_id("root_token", root as i64, v)?;
    if shape.len() > MAX_EXACT_TREE_DEPTH {
        return Err(Error::too_large("shape", format!("exact tree laws are for depth ≤ {MAX_EXACT_TREE_DEPTH}")));
    }
    let mut t0 = DraftTree::new(kind, shape.to_vec(), Some(root as i64), 0)?;
    t0.truncate = truncate;
    if kind == TreeKind::RsdS {
        return sbs_law(t0, q_table, v, root);
    }
    let mut level: Vec<(DraftTree, f64)> = vec![(t0, 1.0)];
    while !level[0].0.done() {
        let mut next = Vec::new();
        for (t, pr) in level {
            let b_shape = t.shape[t.level];
            // Per-frontier-node tuple laws.
            let mut laws = Vec::new();
            for &f in &t.frontier {
                let q = &q_table[last_token(&t, f, root) * v..][..v];
                let support = q.iter().filter(|&&x| x > 0.0).count();
                let b = if truncate && kind.distinct() { b_shape.min(support) } else { b_shape };
                let l = scheme_law(q, b, kind.child_scheme(b)).map_err(|e| Error::invalid("branching", e.to_string()))?;
                let tuples: Vec<(Vec<usize>, f64)> = (0..l.len()).map(|r| (l.row(r).to_vec(), l.probs[r])).collect();
                laws.push(tuples);
            }
            let combos: usize = laws.iter().map(|l| l.len()).product();
            if next.len() + combos > MAX_TREES {
                return Err(Error::too_large("shape", format!("more than {MAX_TREES} trees to enumerate")));
            }
            // Cartesian product over the frontier nodes.
            let mut idx = vec![0usize; laws.len()];
            loop {
                let mut children = Vec::new();
                let mut p = pr;
                for (k, &f) in t.frontier.iter().enumerate() {
                    let (tuple, tp) = &laws[k][idx[k]];
                    p *= tp;
                    for &x in tuple {
                        children.push(NewChild { parent: f, token: x as i64, phi: 0.0, score: 0.0 });
                    }
                }
                let mut nt = t.clone();
                store_q(&mut nt, q_table, v, root);
                nt.append_level(&children);
                next.push((nt, p));
                // Odometer increment.
                let mut k = 0;
                while k < idx.len() {
                    idx[k] += 1;
                    if idx[k] < laws[k].len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == idx.len() {
                    break;
                }
            }
        }
        level = next;
    }
    Ok(level)
}

fn store_q(t: &mut DraftTree, q_table: &[f64], v: usize, root: usize) {
    for f in t.frontier.clone() {
        let a = last_token(t, f, root);
        t.nodes[f].q = Some(t.dists.len());
        t.dists.push(Dist::D64(q_table[a * v..(a + 1) * v].to_vec()));
    }
}

struct Sbs<'a> {
    seqs: Vec<Vec<usize>>,
    /// log q(s) of each sequence: a product of tiny draft probabilities underflows, their ratios
    /// do not.
    log_probs: Vec<f64>,
    target: Vec<usize>,
    l: usize,
    paths: usize,
    out: &'a mut HashMap<Vec<Vec<Vec<usize>>>, f64>,
}

impl Sbs<'_> {
    fn rec(&mut self, drawn: &mut Vec<bool>, seen: &mut Vec<Vec<Vec<usize>>>, pr: f64) -> Result<()> {
        let useful: Vec<usize> = (0..self.seqs.len())
            .filter(|&s| {
                !drawn[s]
                    && (1..=self.l).any(|d| seen[d - 1].len() < self.target[d - 1] && !seen[d - 1].contains(&self.seqs[s][..d].to_vec()))
            })
            .collect();
        if useful.is_empty() {
            self.paths += 1;
            if self.paths > MAX_TREES {
                return Err(Error::too_large("shape", format!("more than {MAX_TREES} ranking paths to enumerate")));
            }
            *self.out.entry(seen.clone()).or_insert(0.0) += pr;
            return Ok(());
        }
        // The next useful sequence has probability q(s) / Σ_useful q, from the logarithms.
        let top = useful.iter().map(|&s| self.log_probs[s]).fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = useful.iter().map(|&s| (self.log_probs[s] - top).exp()).sum();
        for s in useful {
            let mut added = Vec::new();
            for d in 1..=self.l {
                let pre = self.seqs[s][..d].to_vec();
                if seen[d - 1].len() < self.target[d - 1] && !seen[d - 1].contains(&pre) {
                    seen[d - 1].push(pre);
                    added.push(d - 1);
                }
            }
            drawn[s] = true;
            self.rec(drawn, seen, pr * ((self.log_probs[s] - top).exp() / z))?;
            drawn[s] = false;
            for d in added {
                seen[d].pop();
            }
        }
        Ok(())
    }
}

fn sbs_law(t0: DraftTree, q_table: &[f64], v: usize, root: usize) -> Result<Vec<(DraftTree, f64)>> {
    let (w, l) = (t0.shape[0], t0.shape.len());
    // All positive-probability length-L sequences and their draft probabilities.
    let mut seqs = vec![(Vec::new(), 0.0f64)]; // (sequence, log q(sequence))
    for _ in 0..l {
        let mut nxt = Vec::new();
        for (s, p) in seqs {
            let a = s.last().copied().unwrap_or(root);
            for b in 0..v {
                let qb = q_table[a * v + b];
                if qb > 0.0 {
                    let mut s2: Vec<usize> = s.clone();
                    s2.push(b);
                    nxt.push((s2, p + qb.ln()));
                }
            }
        }
        seqs = nxt;
    }
    let n_first = (0..v).filter(|&b| q_table[root * v + b] > 0.0).count();
    if n_first < w && !t0.truncate {
        return Err(Error::invalid(
            "beam_width",
            format!("is {w} but the root's draft has only {n_first} tokens with positive probability"),
        ));
    }
    let target: Vec<usize> = (1..=l)
        .map(|d| {
            let mut pre: Vec<Vec<usize>> = seqs.iter().map(|(s, _)| s[..d].to_vec()).collect();
            pre.sort();
            pre.dedup();
            pre.len().min(w)
        })
        .collect();
    let mut out = HashMap::new();
    let mut st = Sbs {
        log_probs: seqs.iter().map(|x| x.1).collect(),
        seqs: seqs.into_iter().map(|x| x.0).collect(),
        target,
        l,
        paths: 0,
        out: &mut out,
    };
    let mut drawn = vec![false; st.seqs.len()];
    let mut seen = vec![Vec::new(); l];
    st.rec(&mut drawn, &mut seen, 1.0)?;
    // Build each tree: depth-d nodes in order (parent id, appearance rank).
    let mut trees = Vec::new();
    for (seen, pr) in out {
        let mut t = t0.clone();
        let mut ids: HashMap<Vec<usize>, usize> = HashMap::new();
        for d in 0..l {
            let mut children: Vec<(usize, usize, i64)> = seen[d]
                .iter()
                .enumerate()
                .map(|(rank, pre)| {
                    let parent = if d == 0 { 0 } else { ids[&pre[..d].to_vec()] };
                    (parent, rank, pre[d] as i64)
                })
                .collect();
            children.sort();
            let start = t.nodes.len();
            store_q(&mut t, q_table, v, root);
            let nc: Vec<NewChild> = children.iter().map(|&(parent, _, token)| NewChild { parent, token, phi: 0.0, score: 0.0 }).collect();
            t.append_level(&nc);
            for (k, &(parent, _, token)) in children.iter().enumerate() {
                let mut pre = if parent == 0 { Vec::new() } else { t.path_tokens(parent).iter().map(|&x| x as usize).collect() };
                pre.push(token as usize);
                ids.insert(pre, start + k);
            }
        }
        trees.push((t, pr));
    }
    // Different rankings (e.g. the cross-parent order at one depth) give the same tree: merge.
    let mut merged: HashMap<TreeKey, (DraftTree, f64)> = HashMap::new();
    for (t, p) in trees {
        merged.entry(key(&t)).or_insert((t, 0.0)).1 += p;
    }
    let mut trees: Vec<(DraftTree, f64)> = merged.into_values().collect();
    trees.sort_by_cached_key(|a| key(&a.0));
    Ok(trees)
}

/// Exact law of one step's emitted tokens: Σ_tree P(tree) · law(verify | tree), as
/// (tokens, probability) sorted by tokens.
pub fn emitted_law(
    kind: TreeKind,
    shape: &[usize],
    p_table: &[f64],
    q_table: &[f64],
    v: usize,
    root: usize,
    truncate: bool,
) -> Result<Vec<(Vec<i64>, f64)>> {
    check_table("p_table", p_table, v)?;
    let trees = tree_law(kind, shape, q_table, v, root, truncate)?;
    let mut acc: HashMap<Vec<i64>, f64> = HashMap::new();
    for (t, pr) in &trees {
        let rows = t.nodes.len();
        let law = t.verify_law(rows, |i| {
            let a = last_token(t, i, root);
            DistRef::D64(&p_table[a * v..(a + 1) * v])
        })?;
        for (toks, q) in law {
            *acc.entry(toks).or_insert(0.0) += pr * q;
        }
    }
    let mut out: Vec<(Vec<i64>, f64)> = acc.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Scheme;

    /// Deterministic pseudo-random Markov table with some zeros.
    pub fn table(v: usize, seed: u64, zeros: bool) -> Vec<f64> {
        let mut r = crate::Rng::new(seed);
        let mut t = vec![0.0; v * v];
        for a in 0..v {
            let row = &mut t[a * v..(a + 1) * v];
            for x in row.iter_mut() {
                *x = r.uniform() + 0.05;
            }
            if zeros {
                row[(a + 1) % v] = 0.0;
            }
            let s: f64 = row.iter().sum();
            row.iter_mut().for_each(|x| *x /= s);
        }
        t
    }

    /// Law of the first L+1 tokens when the step's output is completed by plain target sampling.
    pub(crate) fn completed(law: &[(Vec<i64>, f64)], p: &[f64], v: usize, root: usize, len: usize) -> HashMap<Vec<i64>, f64> {
        let mut out = HashMap::new();
        let mut stack: Vec<(Vec<i64>, f64)> = law.to_vec();
        while let Some((s, pr)) = stack.pop() {
            if s.len() >= len {
                *out.entry(s[..len].to_vec()).or_insert(0.0) += pr;
                continue;
            }
            let a = *s.last().unwrap() as usize;
            for b in 0..v {
                if p[a * v + b] > 0.0 {
                    let mut s2 = s.clone();
                    s2.push(b as i64);
                    stack.push((s2, pr * p[a * v + b]));
                }
            }
            let _ = root;
        }
        out
    }

    pub(crate) fn target_law(p: &[f64], v: usize, root: usize, len: usize) -> HashMap<Vec<i64>, f64> {
        let start: Vec<(Vec<i64>, f64)> = (0..v).filter(|&b| p[root * v + b] > 0.0).map(|b| (vec![b as i64], p[root * v + b])).collect();
        completed(&start, p, v, root, len)
    }

    #[test]
    fn every_kind_emits_the_target_sequence_law_exactly() {
        let cases: Vec<(TreeKind, Vec<usize>, usize)> = vec![
            (TreeKind::RsdC, vec![2, 2], 4),
            (TreeKind::RsdC, vec![3, 1, 1], 4),
            (TreeKind::Iid, vec![2, 2], 3),
            (TreeKind::Iid, vec![1, 1, 1], 4),
            (TreeKind::Greedy, vec![3, 2, 1], 4),
            (TreeKind::TopK, vec![2, 2, 2], 4),
            (TreeKind::RsdS, vec![2, 2, 2], 3),
            (TreeKind::RsdS, vec![3, 3], 4),
            (TreeKind::SpecHub, vec![2, 2, 2], 4),
            (TreeKind::SpecHub, vec![2, 1, 2], 3),
            (TreeKind::SdBlock, vec![1, 1, 1], 4),
            (TreeKind::SdBlock, vec![1, 1], 3),
            (TreeKind::Traversal, vec![2, 2], 3),
            (TreeKind::Traversal, vec![2, 1, 1], 4),
            (TreeKind::TraversalIid, vec![2, 2], 3),
            (TreeKind::TraversalIid, vec![3, 1, 1], 4),
        ];
        for (kind, shape, v) in cases {
            for seed in 0..2u64 {
                let p = table(v, 100 + seed, seed == 1);
                let q = table(v, 200 + seed, false);
                let law = emitted_law(kind, &shape, &p, &q, v, 1, false).unwrap();
                let total: f64 = law.iter().map(|x| x.1).sum();
                assert!((total - 1.0).abs() < 1e-12, "{kind:?} total {total}");
                let len = shape.len() + 1;
                let got = completed(&law, &p, v, 1, len);
                let want = target_law(&p, v, 1, len);
                for (s, w) in &want {
                    let g = got.get(s).copied().unwrap_or(0.0);
                    assert!((g - w).abs() < 1e-12, "{kind:?} {shape:?} {s:?}: {g} vs {w}");
                }
                assert_eq!(got.len(), want.len());
            }
        }
    }

    /// The sd-block walk that samples (rows fed one round at a time) follows the law its
    /// `verify_law` enumerates: every outcome within 5 standard errors over 40,000 steps.
    #[test]
    fn sd_block_walk_samples_its_exact_law() {
        let (v, root) = (3, 1);
        let (p, q) = (table(v, 31, true), table(v, 32, false));
        let trees = tree_law(TreeKind::SdBlock, &[1, 1, 1], &q, v, root, false).unwrap();
        let (t, _) = trees.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        let row = |i: usize| DistRef::D64(&p[last_token(t, i, root) * v..][..v]);
        let mut law: HashMap<Vec<i64>, f64> = HashMap::new();
        for (toks, pr) in t.verify_law(t.nodes.len(), row).unwrap() {
            *law.entry(toks).or_insert(0.0) += pr;
        }
        let draws = 40_000;
        let mut counts: HashMap<Vec<i64>, usize> = HashMap::new();
        for s in 0..draws {
            *counts.entry(t.verify(t.nodes.len(), row, s).unwrap().tokens).or_insert(0) += 1;
        }
        for (toks, pr) in &law {
            let got = counts.get(toks).copied().unwrap_or(0) as f64 / draws as f64;
            let se = (pr * (1.0 - pr) / draws as f64).sqrt().max(1e-9);
            assert!((got - pr).abs() < 5.0 * se + 1e-12, "{toks:?}: {got} vs {pr}");
        }
        assert!(counts.keys().all(|k| law.contains_key(k)));
    }

    #[test]
    fn sbs_tree_law_sums_to_one_and_has_w_nodes_per_depth() {
        let q = table(3, 7, false);
        let trees = tree_law(TreeKind::RsdS, &[2, 2, 2], &q, 3, 0, false).unwrap();
        let total: f64 = trees.iter().map(|x| x.1).sum();
        assert!((total - 1.0).abs() < 1e-12);
        for (t, _) in &trees {
            for d in 1..=3 {
                assert_eq!(t.nodes.iter().filter(|n| n.depth == d).count(), 2);
            }
        }
        // Depth 1 alone is Gumbel-top-2 of the root's q: compare with the successive-sampling law.
        let l = scheme_law(&q[0..3], 2, Scheme::Wor).unwrap();
        for r in 0..l.len() {
            let tup = l.row(r);
            let mut sorted = tup.to_vec();
            sorted.sort();
            // Children of the root are stored in score (= draw) order.
            let got: f64 =
                trees.iter().filter(|(t, _)| t.nodes[1].token == tup[0] as i64 && t.nodes[2].token == tup[1] as i64).map(|x| x.1).sum();
            assert!((got - l.probs[r]).abs() < 1e-12, "{tup:?}: {got} vs {}", l.probs[r]);
        }
    }
}
