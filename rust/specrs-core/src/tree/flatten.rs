//! Flattening for one tree-attention forward (docs/theory.md §7; docs/generation.md, "Tree attention"): BFS order with
//! the root first, position ids prefix_len − 1 + depth, parents, root-to-leaf retrieve indices,
//! and ancestor-or-self mask rows.
//!
//! The mask is never built whole unless a caller asks for it: a T-node tree has a T × T mask, but
//! a forward over a range of rows (one new level against the cached ones) needs only those rows,
//! and each row is its node's ancestor chain (depth + 1 entries), found by walking parent links.

use std::ops::Range;

use super::arena::DraftTree;
use crate::{limits, Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Flat {
    pub n: usize,
    pub tokens: Vec<i64>,
    pub positions: Vec<i64>,
    pub depths: Vec<i64>,
    pub parents: Vec<i64>,
    /// Row-major (leaves × (max_depth + 1)), −1 padded.
    pub retrieve: Vec<i64>,
    pub retrieve_cols: usize,
    pub expanded: Vec<bool>,
}

/// Position of the root for `prefix_len` committed tokens (root included), checked so that
/// `root + depth` fits an i64 position id for every node of a tree of depth `max_depth`.
pub fn root_position(prefix_len: usize, max_depth: usize) -> Result<i64> {
    // At least 1: the root is the last committed token.
    crate::validate::positive_n("prefix_len", prefix_len)?;
    match i64::try_from(prefix_len - 1) {
        Ok(r) if r.checked_add(max_depth as i64).is_some() => Ok(r),
        _ => {
            Err(Error::invalid("prefix_len", format!("is {prefix_len}; positions prefix_len - 1 + depth must fit a 64-bit signed integer")))
        }
    }
}

/// Checks a mask request of `rows` × `cols` entries against [`limits::MAX_MASK_ENTRIES`],
/// blaming `arg`.
pub fn check_mask_size(arg: &str, rows: usize, cols: usize) -> Result<()> {
    match rows.checked_mul(cols) {
        Some(n) if n <= limits::MAX_MASK_ENTRIES => Ok(()),
        _ => Err(Error::too_large(
            arg,
            format!("a {rows} × {cols} mask exceeds the limit of {} entries; ask for fewer rows", limits::MAX_MASK_ENTRIES),
        )),
    }
}

impl DraftTree {
    /// Flattens the tree built so far. `prefix_len` counts the committed tokens, root included.
    pub fn flatten(&self, prefix_len: usize) -> Result<Flat> {
        let max_depth = self.nodes.last().map_or(0, |x| x.depth);
        let root = root_position(prefix_len, max_depth)?;
        let n = self.nodes.len();
        let (mut tokens, mut positions, mut depths, mut parents, mut expanded) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for node in &self.nodes {
            tokens.push(node.token);
            positions.push(root + node.depth as i64);
            depths.push(node.depth as i64);
            parents.push(node.parent);
            expanded.push(node.q.is_some());
        }
        let cols = max_depth + 1;
        let mut retrieve = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.n_children == 0 {
                let mut path = vec![-1i64; cols];
                for v in self.ancestors(i) {
                    path[self.nodes[v].depth] = v as i64;
                }
                retrieve.extend(path);
            }
        }
        Ok(Flat { n, tokens, positions, depths, parents, retrieve, retrieve_cols: cols, expanded })
    }

    /// Node `i` and its ancestors, up to the root.
    pub fn ancestors(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        chain(move |v| self.nodes[v].parent, i)
    }

    /// Ancestor-or-self mask of the nodes `rows` over node columns `0..cols`, row-major
    /// (`rows.len()` × `cols`): entry [i, j] is true iff node j is node `rows.start + i` or one
    /// of its ancestors. `cols` must cover the rows (`cols ≥ rows.end`; ancestors come first in
    /// BFS order, so they are all covered).
    pub fn mask_rows(&self, rows: Range<usize>, cols: usize) -> Result<Vec<bool>> {
        ancestor_mask(self.nodes.len(), |i| self.nodes[i].parent, rows, cols)
    }
}

impl Flat {
    /// [`DraftTree::mask_rows`] of the flattened tree.
    pub fn mask_rows(&self, rows: Range<usize>, cols: usize) -> Result<Vec<bool>> {
        ancestor_mask(self.n, |i| self.parents[i], rows, cols)
    }
}

/// Node `i` and its ancestors through `parent` (−1 at the root).
fn chain(parent: impl Fn(usize) -> i64, i: usize) -> impl Iterator<Item = usize> {
    let mut v = Some(i);
    std::iter::from_fn(move || {
        let cur = v?;
        let p = parent(cur);
        v = (p >= 0).then_some(p as usize);
        Some(cur)
    })
}

/// The one ancestor-mask builder: row i marks node i and every ancestor reached through
/// `parent` (−1 at the root).
fn ancestor_mask(n: usize, parent: impl Fn(usize) -> i64, rows: Range<usize>, cols: usize) -> Result<Vec<bool>> {
    if rows.start > rows.end || rows.end > n {
        return Err(Error::invalid("rows", format!("{}..{} is not a range of the tree's {n} nodes", rows.start, rows.end)));
    }
    if cols < rows.end || cols > n {
        return Err(Error::invalid("cols", format!("is {cols}; must lie in {}..={n} (the rows and their ancestors)", rows.end)));
    }
    check_mask_size("rows", rows.len(), cols)?;
    let mut mask = vec![false; rows.len() * cols];
    for (r, i) in rows.enumerate() {
        for v in chain(&parent, i) {
            mask[r * cols + v] = true;
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::TreeKind;

    #[test]
    fn positions_never_wrap_and_big_masks_are_refused() {
        assert_eq!(root_position(1, 4).unwrap(), 0);
        assert_eq!(root_position(0, 0).unwrap_err().arg(), "prefix_len");
        let max = i64::MAX as usize;
        assert_eq!(root_position(max + 1, 0).unwrap(), i64::MAX);
        assert_eq!(root_position(max + 1, 1).unwrap_err().arg(), "prefix_len");
        assert!(root_position(usize::MAX, 0).is_err());
        let mut t = DraftTree::new(TreeKind::RsdC, vec![1], Some(3), 0).unwrap();
        t.expand(&[crate::tree::DistRef::D64(&[0.0, 1.0])]).unwrap();
        assert_eq!(t.flatten(max).unwrap().positions, vec![i64::MAX - 1, i64::MAX]);
        assert_eq!(t.flatten(max + 1).unwrap_err().arg(), "prefix_len");
        assert!(check_mask_size("rows", 1 << 14, 1 << 14).is_ok());
        assert!(matches!(check_mask_size("rows", 1 << 15, 1 << 14), Err(crate::Error::TooLarge { .. })));
        assert!(check_mask_size("rows", usize::MAX, 2).is_err());
    }
}
