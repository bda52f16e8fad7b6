//! Flattening for one tree-attention forward (rsd.md §8): BFS order with the root first, position
//! ids prefix_len − 1 + depth, an ancestor-or-self mask built row by row as
//! mask[i] = mask[parent(i)] OR onehot(i), parents, and root-to-leaf retrieve indices.

use super::arena::DraftTree;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Flat {
    pub n: usize,
    pub tokens: Vec<i64>,
    pub positions: Vec<i64>,
    pub depths: Vec<i64>,
    pub parents: Vec<i64>,
    /// Row-major (n × n) booleans.
    pub mask: Vec<bool>,
    /// Row-major (leaves × (max_depth + 1)), −1 padded.
    pub retrieve: Vec<i64>,
    pub retrieve_cols: usize,
    pub expanded: Vec<bool>,
}

impl DraftTree {
    /// Flattens the tree built so far. `prefix_len` counts the committed tokens, root included.
    pub fn flatten(&self, prefix_len: usize) -> Result<Flat> {
        if prefix_len == 0 {
            return Err(Error::invalid("prefix_len", "must be at least 1 (the root is the last committed token)"));
        }
        let n = self.nodes.len();
        let mut mask = vec![false; n * n];
        let (mut tokens, mut positions, mut depths, mut parents, mut expanded) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for (i, node) in self.nodes.iter().enumerate() {
            if node.parent >= 0 {
                let p = node.parent as usize;
                // Parents precede children in BFS order, so row p is final.
                let (before, row) = mask.split_at_mut(i * n);
                row[..n].copy_from_slice(&before[p * n..p * n + n]);
            }
            mask[i * n + i] = true;
            tokens.push(node.token);
            positions.push((prefix_len - 1 + node.depth) as i64);
            depths.push(node.depth as i64);
            parents.push(node.parent);
            expanded.push(node.q.is_some());
        }
        let max_depth = self.nodes.last().map_or(0, |x| x.depth);
        let cols = max_depth + 1;
        let mut retrieve = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.n_children == 0 {
                let mut path = vec![-1i64; cols];
                let mut v = i;
                loop {
                    path[self.nodes[v].depth] = v as i64;
                    if v == 0 {
                        break;
                    }
                    v = self.nodes[v].parent as usize;
                }
                retrieve.extend(path);
            }
        }
        Ok(Flat { n, tokens, positions, depths, parents, mask, retrieve, retrieve_cols: cols, expanded })
    }
}
