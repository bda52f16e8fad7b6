//! The tree arena. Nodes are appended one level at a time with siblings contiguous, so a node's id
//! is its flat (BFS, depth-major) index: node 0 is the root, the children of a node form one
//! contiguous id range in draw (or score) order. Flattening, frontier ids and the rows of the
//! target distributions all share this numbering.

use super::dist::Dist;
use super::kind::TreeKind;
use crate::{Error, Result, Rng};

#[derive(Debug, Clone)]
pub struct Node {
    /// Token id; the root's is the last committed token (−1 when not given).
    pub token: i64,
    /// Parent id; −1 for the root.
    pub parent: i64,
    pub depth: usize,
    /// Rank among its siblings (0 = drawn first / highest score).
    pub order: usize,
    /// Draft log-likelihood φ of the root-to-node path (SBS only; 0 elsewhere).
    pub phi: f64,
    /// Perturbed score G of the path (SBS: the truncated-Gumbel value; 0 elsewhere).
    pub score: f64,
    /// Index into `DraftTree::dists` of q(·|path) once the node was expanded.
    pub q: Option<usize>,
    pub first_child: usize,
    pub n_children: usize,
}

impl Node {
    /// The root: the last verified token (−1 when unknown), depth 0, no children yet.
    fn root(root_token: Option<i64>) -> Self {
        Node {
            token: root_token.unwrap_or(-1),
            parent: -1,
            depth: 0,
            order: 0,
            phi: 0.0,
            score: 0.0,
            q: None,
            first_child: 1,
            n_children: 0,
        }
    }

    pub fn children(&self) -> std::ops::Range<usize> {
        self.first_child..self.first_child + self.n_children
    }
}

/// A child to append: parent id, token, draft log-likelihood, score.
#[derive(Debug, Clone, Copy)]
pub struct NewChild {
    pub parent: usize,
    pub token: i64,
    pub phi: f64,
    pub score: f64,
}

#[derive(Debug, Clone)]
pub struct DraftTree {
    pub kind: TreeKind,
    /// Branching vector (b_1..b_L), or (W,)*L for RSD-S.
    pub shape: Vec<usize>,
    pub nodes: Vec<Node>,
    pub dists: Vec<Dist>,
    /// Number of levels expanded so far.
    pub level: usize,
    pub frontier: Vec<usize>,
    pub rng: Rng,
    /// When a row's support is smaller than the number of distinct children asked, draw the whole
    /// support instead of failing (still exact: RRS over the full support always accepts).
    pub truncate: bool,
}

impl DraftTree {
    /// An empty tree (root only). `shape` is the branching vector; for RSD-S pass (W,)*L.
    pub fn new(kind: TreeKind, shape: Vec<usize>, root_token: Option<i64>, seed: u64) -> Result<Self> {
        let arg = if kind == TreeKind::RsdS { "beam_width" } else { "branching" };
        if shape.is_empty() {
            return Err(Error::invalid(if kind == TreeKind::RsdS { "depth" } else { "branching" }, "the tree needs depth ≥ 1"));
        }
        if let Some(l) = shape.iter().position(|&b| b == 0) {
            return Err(Error::invalid(arg, format!("is 0 at depth {}; every level needs at least one child", l + 1)));
        }
        if let Some(l) = shape.iter().position(|&b| b > kind.max_branching()) {
            return Err(Error::invalid(
                arg,
                format!("is {} at depth {}; {} draws at most {} children per node", shape[l], l + 1, kind.as_str(), kind.max_branching()),
            ));
        }
        if kind == TreeKind::RsdS && shape.iter().any(|&w| w != shape[0]) {
            return Err(Error::invalid("beam_width", "RSD-S keeps one beam width at every depth"));
        }
        let nodes_total = super::shape::tree_size(kind, &shape);
        if nodes_total > crate::limits::MAX_TREE_NODES {
            return Err(Error::too_large(
                arg,
                format!("the tree would have {nodes_total} draft nodes (limit {})", crate::limits::MAX_TREE_NODES),
            ));
        }
        let root = Node::root(root_token);
        Ok(DraftTree {
            kind,
            shape,
            nodes: vec![root],
            dists: Vec::new(),
            level: 0,
            frontier: vec![0],
            rng: Rng::new(seed),
            truncate: false,
        })
    }

    /// A tree of depth 0: the root only, already complete. Verifying it samples the target at
    /// the root (a plain decoding step; used for rows that draft nothing in a batch).
    pub(crate) fn root_only(kind: TreeKind, root_token: Option<i64>) -> Self {
        let root = Node::root(root_token);
        DraftTree {
            kind,
            shape: Vec::new(),
            nodes: vec![root],
            dists: Vec::new(),
            level: 0,
            frontier: Vec::new(),
            rng: Rng::new(0),
            truncate: false,
        }
    }

    pub fn depth(&self) -> usize {
        self.shape.len()
    }

    pub fn done(&self) -> bool {
        self.frontier.is_empty()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends one level: `children` must be grouped by parent in increasing parent id, each group
    /// in draw/score order. Sets the new frontier (the new nodes, unless the last level is done).
    pub(crate) fn append_level(&mut self, children: &[NewChild]) {
        let start = self.nodes.len();
        for &f in &self.frontier {
            self.nodes[f].first_child = start;
            self.nodes[f].n_children = 0;
        }
        let mut prev_parent = usize::MAX;
        let mut order = 0;
        for (k, c) in children.iter().enumerate() {
            debug_assert!(prev_parent == usize::MAX || c.parent >= prev_parent);
            if c.parent != prev_parent {
                self.nodes[c.parent].first_child = start + k;
                order = 0;
                prev_parent = c.parent;
            }
            self.nodes[c.parent].n_children += 1;
            let depth = self.nodes[c.parent].depth + 1;
            self.nodes.push(Node {
                token: c.token,
                parent: c.parent as i64,
                depth,
                order,
                phi: c.phi,
                score: c.score,
                q: None,
                first_child: 0,
                n_children: 0,
            });
            order += 1;
        }
        let end = self.nodes.len();
        for n in &mut self.nodes[start..end] {
            n.first_child = end;
        }
        self.level += 1;
        self.frontier = if self.level < self.depth() { (start..end).collect() } else { Vec::new() };
    }

    /// Tokens of the root-to-node path, root excluded.
    pub fn path_tokens(&self, mut v: usize) -> Vec<i64> {
        let mut out = Vec::new();
        while v != 0 {
            out.push(self.nodes[v].token);
            v = self.nodes[v].parent as usize;
        }
        out.reverse();
        out
    }
}
