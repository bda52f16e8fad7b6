//! Tree-level verification (docs/theory.md §6.3): from the root, run the node-level verifier of the tree's
//! kind on the node's children (in draw/score order) with the node's target p(·|path) and stored
//! draft q(·|path); continue into the accepted child, stop at the first token that is not a child
//! (a correction) or at a node without children (a bonus sample of p). Emits 1..=L+1 tokens.
//!
//! `sd-block` chains are walked differently (docs/theory.md §11.3): block verification needs the
//! rows of every chain node before it decides, so the walk asks for them top-down (one per round,
//! as above), keeps them, runs `verify::block` on the chain, and then asks for the leaf's row only
//! when the whole chain was accepted (the bonus token).
//!
//! `traversal` trees are walked leaf to root (`verify::traversal`, docs/theory.md §14.3): the walk
//! asks for the row of each node whose subtree the post-order reaches (from the root down the
//! first live children), so it reads only the rows of the nodes it visits, and the row of an
//! accepted leaf last (its bonus token).

use super::arena::DraftTree;
use super::dist::{align, check, Aligned, DistRef};
use super::node::{self, NodeOutcome};
use crate::verify::block::{self, BlockOutcome, Position};
use crate::verify::source::Source;
use crate::verify::traversal::{Next, TravOutcome, Traversal};
use crate::verify::Sums;
use crate::{Error, Result, Rng, TreeKind, Verifier};

/// A verification walk in progress: the target rows are handed over one node at a time
/// ([`DraftTree::walk_node`]), so a caller whose rows live elsewhere (a GPU) moves only the rows
/// of the nodes the walk visits (at most depth + 1), not the whole tree's.
#[derive(Debug, Clone)]
pub struct Walk {
    rng: Rng,
    /// The node whose target row is needed next; None when the step is complete.
    pub node: Option<usize>,
    /// The step so far (complete once `node` is None).
    pub step: Step,
    /// `sd-block`: the aligned rows of the chain nodes seen so far, with the drafted child's index.
    chain: Vec<(Aligned, usize)>,
    /// `sd-block`: the chain was decided and the walk waits for the leaf's row (the bonus).
    decided: bool,
    /// `traversal`: the traversal in progress.
    trav: Option<Box<TravWalk>>,
    /// The next row handed to [`DraftTree::walk_node`] comes from `logits::warped_row` (a
    /// distribution by construction), so it is not validated again.
    pub(crate) p_checked: bool,
}

/// A traversal walk: the traversal state, each node's index set (None: dense), and the accepted
/// leaf once decided (the walk then waits for its row, the bonus).
#[derive(Debug, Clone)]
struct TravWalk {
    t: Traversal,
    ids: Vec<Option<Vec<i64>>>,
    bonus_at: Option<usize>,
}

/// One verification step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Accepted draft tokens, then the correction/bonus token.
    pub tokens: Vec<i64>,
    /// Accepted node ids (root excluded).
    pub path: Vec<usize>,
    /// Node ids whose target KV to keep: the root, then `path`.
    pub keep: Vec<usize>,
    /// True when the last token was drawn at a node without children.
    pub bonus: bool,
    /// depth_accepted[d]: a depth-(d+1) node was accepted.
    pub depth_accepted: Vec<bool>,
    /// depth_tried[d]: the walk reached a depth-d node with children.
    pub depth_tried: Vec<bool>,
    /// Draft tokens the target scored (root excluded).
    pub n_nodes: usize,
}

impl DraftTree {
    fn check_rows(&self, rows: usize) -> Result<()> {
        if rows != self.nodes.len() {
            return Err(Error::invalid(
                "probs",
                format!("has {rows} rows but the tree has {} nodes (root included); pass p(·|path) for every node", self.nodes.len()),
            ));
        }
        Ok(())
    }

    /// Aligned (p, q) and the children's aligned indices at node v.
    fn node_inputs(&self, v: usize, p: DistRef<'_>) -> Result<(super::dist::Aligned, Vec<usize>)> {
        check("probs", p).map_err(|e| e.in_row(v))?;
        self.aligned_inputs(v, p)
    }

    /// [`Self::node_inputs`] of a walk round: `p` is not validated again when the walk was told
    /// it is a row of the logits kernel ([`Walk::p_checked`]).
    fn walk_inputs(&self, w: &Walk, v: usize, p: DistRef<'_>) -> Result<(super::dist::Aligned, Vec<usize>)> {
        if w.p_checked {
            self.aligned_inputs(v, p)
        } else {
            self.node_inputs(v, p)
        }
    }

    fn aligned_inputs(&self, v: usize, p: DistRef<'_>) -> Result<(super::dist::Aligned, Vec<usize>)> {
        let node = &self.nodes[v];
        let q = node.q.map(|i| self.dists[i].as_ref());
        let a = align(p, q).map_err(|e| e.in_row(v))?;
        let mut ch = Vec::with_capacity(node.n_children);
        for c in node.children() {
            let t = self.nodes[c].token;
            match a.index(t) {
                Some(i) => ch.push(i),
                None => return Err(Error::invalid("probs", format!("row {v} does not cover the child token {t}"))),
            }
        }
        Ok((a, ch))
    }

    fn verifier_at(&self, v: usize) -> Verifier {
        self.kind.node_verifier(self.nodes[v].n_children)
    }

    /// Starts a verification walk at the root (see [`Walk`]).
    pub fn walk(&self, seed: u64) -> Walk {
        let l = self.nodes.last().map_or(0, |x| x.depth);
        Walk {
            rng: Rng::new(seed),
            node: Some(0),
            step: Step {
                tokens: Vec::new(),
                path: Vec::new(),
                keep: vec![0],
                bonus: false,
                depth_accepted: vec![false; l],
                depth_tried: vec![false; l],
                n_nodes: self.nodes.len() - 1,
            },
            chain: Vec::new(),
            decided: false,
            trav: (self.kind.verifier() == Verifier::Traversal)
                .then(|| Box::new(TravWalk { t: self.traversal(self.kind.distinct()), ids: vec![None; self.nodes.len()], bonus_at: None })),
            p_checked: false,
        }
    }

    /// An empty traversal over this tree's nodes; `wor`: siblings drawn without replacement.
    pub(crate) fn traversal(&self, wor: bool) -> Traversal {
        let parent = self.nodes.iter().map(|n| n.parent.max(0) as usize).collect();
        let first = self.nodes.iter().map(|n| n.first_child).collect();
        let count = self.nodes.iter().map(|n| n.n_children).collect();
        Traversal::new(parent, first, count, wor)
    }

    /// Records the accepted path of a decided traversal (up to node `x`).
    fn traversal_path(&self, step: &mut Step, x: usize) {
        for n in &self.nodes {
            if n.n_children > 0 {
                step.depth_tried[n.depth] = true;
            }
        }
        let mut path = Vec::new();
        let mut v = x;
        while v != 0 {
            path.push(v);
            v = self.nodes[v].parent as usize;
        }
        for &c in path.iter().rev() {
            step.depth_accepted[self.nodes[c].depth - 1] = true;
            step.tokens.push(self.nodes[c].token);
            step.path.push(c);
            step.keep.push(c);
        }
    }

    /// One round of the `traversal` walk at node `v` (module docs).
    fn traversal_node(&self, w: &mut Walk, v: usize, p: DistRef<'_>) -> Result<Option<usize>> {
        let (a, ch) = self.walk_inputs(w, v, p)?;
        let Some(tw) = w.trav.as_mut() else {
            return Err(Error::invalid("probs", "the verification walk was not started for a traversal tree"));
        };
        if tw.bonus_at.is_some() {
            // The accepted node never had children: the bonus is a sample of its p.
            let mut rng = w.rng.clone();
            let NodeOutcome { token, .. } = node::sample(Verifier::Match, a, &[], &mut rng)?;
            w.rng = rng;
            w.step.tokens.push(token);
            w.step.bonus = true;
            release_traversal(w.trav.take());
            return Ok(None);
        }
        let Aligned { ids, p, q } = a;
        tw.ids[v] = ids;
        tw.t.give(v, p, q, &ch);
        let mut rng = w.rng.clone();
        let next = tw.t.advance(&mut rng);
        w.rng = rng;
        match next {
            Next::Need(u) => Ok(Some(u)),
            Next::Done(TravOutcome { node: x, token }) => {
                self.traversal_path(&mut w.step, x);
                match token {
                    Some(i) => {
                        let t = tw.ids[x].as_ref().map_or(i as i64, |ids| ids[i]);
                        w.step.tokens.push(t);
                        release_traversal(w.trav.take());
                        Ok(None)
                    }
                    None => {
                        tw.bonus_at = Some(x);
                        Ok(Some(x))
                    }
                }
            }
        }
    }

    /// [`Self::verify_law`] of traversal verification on this tree (`wor`: siblings without
    /// replacement), every path of its decisions (`exact::paths`), then the accepted leaf's law of
    /// p for the bonus. `setup` adjusts the traversal first (tests: the lossy variants).
    pub(crate) fn traversal_law<'a>(
        &self,
        p: impl Fn(usize) -> DistRef<'a>,
        wor: bool,
        setup: impl Fn(&mut Traversal),
    ) -> Result<Vec<(Vec<i64>, f64)>> {
        let mut t = self.traversal(wor);
        setup(&mut t);
        let mut ids = vec![None; self.nodes.len()];
        for (v, n) in self.nodes.iter().enumerate() {
            if n.n_children > 0 {
                let (a, ch) = self.node_inputs(v, p(v))?;
                ids[v] = a.ids;
                t.give(v, a.p, a.q, &ch);
            }
        }
        let mut out = Vec::new();
        for (o, pr) in crate::exact::paths(|src| match t.clone().advance(src) {
            Next::Done(o) => Some(o),
            Next::Need(_) => None,
        }) {
            let Some(TravOutcome { node: x, token }) = o else {
                return Err(Error::invalid("probs", "traversal asked for a row it was given (internal error)"));
            };
            let mut step = self.walk(0).step;
            self.traversal_path(&mut step, x);
            match token {
                Some(i) => {
                    step.tokens.push(ids[x].as_ref().map_or(i as i64, |ids: &Vec<i64>| ids[i]));
                    out.push((step.tokens, pr));
                }
                None => {
                    let (a, _) = self.node_inputs(x, p(x))?;
                    for (n, q) in node::law(Verifier::Match, &a, &[])? {
                        let mut toks = step.tokens.clone();
                        toks.push(n.token);
                        out.push((toks, pr * q));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Block verification of the chain whose node rows are `rows` (root first), with randomness
    /// from `src`: the one rule of `verify::block`, on the aligned rows.
    fn block_outcome<S: Source>(rows: &[(Aligned, usize)], src: &mut S) -> BlockOutcome {
        let pos: Vec<Position<'_, f64>> = rows
            .iter()
            .map(|(a, x)| {
                let [sp, sq] = crate::verify::kernel::sums2(&a.p, &a.q, |x, y| [x, y]);
                Position { p: &a.p, q: &a.q, sums: Sums { p: sp, q: sq }, draft: *x }
            })
            .collect();
        block::verify(&pos, src)
    }

    /// Records a decided block step: τ accepted chain nodes, then the residual token, or (τ = γ)
    /// the leaf to ask the bonus row of. Returns the next node.
    fn block_record(&self, w: &mut Walk, out: BlockOutcome) -> Option<usize> {
        let step = &mut w.step;
        for (d, (_, _)) in w.chain.iter().enumerate() {
            step.depth_tried[d] = true;
        }
        let mut v = 0;
        for d in 0..out.accepted {
            v = self.nodes[v].first_child;
            step.depth_accepted[d] = true;
            step.tokens.push(self.nodes[v].token);
            step.path.push(v);
            step.keep.push(v);
        }
        match out.token {
            Some(i) => {
                step.tokens.push(w.chain[out.accepted].0.token(i));
                None
            }
            None => {
                w.decided = true;
                Some(v)
            }
        }
    }

    /// One round of the `sd-block` walk at node `v` (module docs).
    fn block_node(&self, w: &mut Walk, v: usize, p: DistRef<'_>) -> Result<Option<usize>> {
        let (a, ch) = self.walk_inputs(w, v, p)?;
        let node = &self.nodes[v];
        if w.decided || node.n_children == 0 {
            // The bonus: a sample of p at the accepted leaf (or at a root without children).
            let mut rng = w.rng.clone();
            let NodeOutcome { token, .. } = node::sample(Verifier::Match, a, &[], &mut rng)?;
            w.rng = rng;
            w.step.tokens.push(token);
            w.step.bonus = true;
            release(std::mem::take(&mut w.chain));
            return Ok(None);
        }
        let c = node.first_child;
        w.chain.push((a, ch[0]));
        if self.nodes[c].n_children > 0 {
            return Ok(Some(c));
        }
        let mut rng = w.rng.clone();
        let out = Self::block_outcome(&w.chain, &mut rng);
        w.rng = rng;
        let next = self.block_record(w, out);
        if next.is_none() {
            release(std::mem::take(&mut w.chain));
        }
        Ok(next)
    }

    /// Runs the node verifier at `w.node` with the target row `p` = p(·|path(w.node)), and moves
    /// the walk into the accepted child (or ends it). Returns the next node whose target row is
    /// needed, or None when the step is complete. On error the walk is left unchanged.
    pub fn walk_node(&self, w: &mut Walk, p: DistRef<'_>) -> Result<Option<usize>> {
        let Some(v) = w.node else {
            return Err(Error::invalid("probs", "the verification walk is already complete"));
        };
        if self.kind == TreeKind::SdBlock {
            w.node = self.block_node(w, v, p)?;
            return Ok(w.node);
        }
        if self.kind.verifier() == Verifier::Traversal {
            w.node = self.traversal_node(w, v, p)?;
            return Ok(w.node);
        }
        let (a, ch) = self.walk_inputs(w, v, p)?;
        let node = &self.nodes[v];
        let mut rng = w.rng.clone();
        let NodeOutcome { token, child } = node::sample(self.verifier_at(v), a, &ch, &mut rng)?;
        w.rng = rng;
        let step = &mut w.step;
        if node.n_children > 0 {
            step.depth_tried[node.depth] = true;
        }
        step.tokens.push(token);
        w.node = match child {
            Some(k) => {
                let c = node.first_child + k;
                step.depth_accepted[node.depth] = true;
                step.path.push(c);
                step.keep.push(c);
                Some(c)
            }
            None => {
                step.bonus = node.n_children == 0;
                None
            }
        };
        Ok(w.node)
    }

    /// Samples one verification step. `p(i)` is the target distribution at node i; `rows` is the
    /// number of rows given (must equal the number of nodes). Only rows on the walk are read.
    pub fn verify<'a>(&self, rows: usize, p: impl Fn(usize) -> DistRef<'a>, seed: u64) -> Result<Step> {
        self.check_rows(rows)?;
        let mut w = self.walk(seed);
        while let Some(v) = w.node {
            self.walk_node(&mut w, p(v))?;
        }
        Ok(w.step)
    }

    /// Exact law of the emitted tokens of one step on this tree: (tokens, probability) pairs.
    pub fn verify_law<'a>(&self, rows: usize, p: impl Fn(usize) -> DistRef<'a>) -> Result<Vec<(Vec<i64>, f64)>> {
        self.check_rows(rows)?;
        if self.kind == TreeKind::SdBlock {
            return self.block_law(p);
        }
        if self.kind.verifier() == Verifier::Traversal {
            return self.traversal_law(p, self.kind.distinct(), |_| {});
        }
        let mut out = Vec::new();
        let mut stack: Vec<(usize, Vec<i64>, f64)> = vec![(0, Vec::new(), 1.0)];
        while let Some((v, prefix, pr)) = stack.pop() {
            let (a, ch) = self.node_inputs(v, p(v))?;
            let node = &self.nodes[v];
            for (o, q) in node::law(self.verifier_at(v), &a, &ch)? {
                let mut t = prefix.clone();
                t.push(o.token);
                match o.child {
                    Some(k) => stack.push((node.first_child + k, t, pr * q)),
                    None => out.push((t, pr * q)),
                }
            }
        }
        Ok(out)
    }

    /// [`Self::verify_law`] of an `sd-block` chain: every path of the block rule
    /// (`exact::paths`), then the leaf's law of p where the whole chain is accepted.
    fn block_law<'a>(&self, p: impl Fn(usize) -> DistRef<'a>) -> Result<Vec<(Vec<i64>, f64)>> {
        let mut rows = Vec::new();
        let mut v = 0;
        while self.nodes[v].n_children > 0 {
            let (a, ch) = self.node_inputs(v, p(v))?;
            rows.push((a, ch[0]));
            v = self.nodes[v].first_child;
        }
        let mut out = Vec::new();
        for (o, pr) in crate::exact::paths(|src| Self::block_outcome(&rows, src)) {
            let mut t: Vec<i64> = Vec::new();
            let mut leaf = 0;
            for _ in 0..o.accepted {
                leaf = self.nodes[leaf].first_child;
                t.push(self.nodes[leaf].token);
            }
            match o.token {
                Some(i) => {
                    t.push(rows[o.accepted].0.token(i));
                    out.push((t, pr));
                }
                None => {
                    let (a, _) = self.node_inputs(leaf, p(leaf))?;
                    for (n, q) in node::law(Verifier::Match, &a, &[])? {
                        let mut t = t.clone();
                        t.push(n.token);
                        out.push((t, pr * q));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Gives the kept chain rows back to the buffer pool.
fn release(rows: Vec<(Aligned, usize)>) {
    for (Aligned { p, q, .. }, _) in rows {
        crate::pool::give(p);
        crate::pool::give(q);
    }
}

/// Gives a finished traversal's rows back to the buffer pool.
fn release_traversal(tw: Option<Box<TravWalk>>) {
    for r in tw.into_iter().flat_map(|tw| tw.t.into_rows()) {
        crate::pool::give(r.mb);
        crate::pool::give(r.ms);
    }
}
