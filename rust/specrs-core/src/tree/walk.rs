//! Tree-level verification (docs/theory.md §6.3): from the root, run the node-level verifier of the tree's
//! kind on the node's children (in draw/score order) with the node's target p(·|path) and stored
//! draft q(·|path); continue into the accepted child, stop at the first token that is not a child
//! (a correction) or at a node without children (a bonus sample of p). Emits 1..=L+1 tokens.

use super::arena::DraftTree;
use super::dist::{align, check, DistRef};
use super::node::{self, NodeOutcome};
use crate::{Error, Result, Rng, Verifier};

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
        }
    }

    /// Runs the node verifier at `w.node` with the target row `p` = p(·|path(w.node)), and moves
    /// the walk into the accepted child (or ends it). Returns the next node whose target row is
    /// needed, or None when the step is complete. On error the walk is left unchanged.
    pub fn walk_node(&self, w: &mut Walk, p: DistRef<'_>) -> Result<Option<usize>> {
        let Some(v) = w.node else {
            return Err(Error::invalid("probs", "the verification walk is already complete"));
        };
        let (a, ch) = self.node_inputs(v, p)?;
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
}
