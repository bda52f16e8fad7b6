//! A batch of draft trees, one per sequence of a batched decoding step, laid out in shared
//! *slots* so that one model forward serves every row (docs/generation.md, "Batches").
//!
//! Every row's tree is grown level by level in lockstep. Level l of the batch has as many slots
//! as the widest row's level l; row r's level-l nodes take the first slots of that level in node
//! order, and the remaining slots of the level are padding (a dummy input that attends only to
//! itself and is never kept). Slot 0 is every row's root. So for a forward over the slots of one
//! level (or of the whole tree) the model sees a rectangular (rows × slots) input, and the mask
//! rows of [`TreeBatch::inputs`] map the tree's ancestor structure onto slot columns.
//!
//! Each row owns one random stream for the whole generation (`Rng::new(seed_r)`), from which every
//! step draws the seeds of its tree and of its verification, so a row's output does not depend on
//! the other rows of the batch.

use std::ops::Range;

use super::arena::DraftTree;
use super::dist::DistRef;
use super::flatten::{check_mask_size, root_position};
use super::kind::TreeKind;
use super::logits::{warped_row, Warp};
use super::walk::{Step, Walk};
use crate::{Error, Result, Rng};

pub use crate::limits::MAX_BATCH_ROWS as MAX_ROWS;

#[derive(Debug, Clone)]
struct Row {
    rng: Rng,
    tree: DraftTree,
    /// Node id of the first node of each level built so far.
    level_first: Vec<usize>,
    walk: Option<Walk>,
}

/// The inputs of one forward over a range of slots (see [`TreeBatch::inputs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SlotInputs {
    pub rows: usize,
    /// Slots per row in this forward.
    pub width: usize,
    /// Columns of `mask`: the `prefix` columns, then every slot from 0 to the end of the range.
    pub cols: usize,
    /// Leading mask columns that are not slots (see [`TreeBatch::inputs_after`]).
    pub prefix: usize,
    /// (rows × width) token ids; padding slots hold `pad_token`.
    pub tokens: Vec<i64>,
    /// (rows × width) position ids: the row's root position + depth (padding: the root's).
    pub positions: Vec<i64>,
    /// (rows × width) true where the slot holds a node of the row.
    pub real: Vec<bool>,
    /// (rows × width × cols) mask: the row's prefix flags on a real slot (nothing on a padding
    /// slot), then the ancestor-or-self flags over slot columns; a padding slot sees only itself.
    pub mask: Vec<bool>,
}

#[derive(Debug, Clone)]
pub struct TreeBatch {
    pub kind: TreeKind,
    pub shape: Vec<usize>,
    pub truncate: bool,
    rows: Vec<Row>,
    /// Set when an `expand` failed part-way (some rows grew, others did not): only `begin` is
    /// allowed then. (Rolling back would mean copying every stored draft row on every level.)
    broken: bool,
    /// First slot of each level built so far, then the end: level l is `level_off[l]..level_off[l + 1]`.
    level_off: Vec<usize>,
    root_pos: Vec<i64>,
}

impl TreeBatch {
    /// A batch whose row r draws from the stream `Rng::new(seeds[r])`. `shape` is the branching
    /// vector (`(W,)*L` for RSD-S); each step may use a prefix of it per row (see [`Self::begin`]).
    pub fn new(kind: TreeKind, shape: Vec<usize>, seeds: &[u64], truncate: bool) -> Result<Self> {
        if seeds.is_empty() {
            return Err(Error::invalid("seeds", "the batch needs at least one row"));
        }
        if seeds.len() > MAX_ROWS {
            return Err(Error::too_large("seeds", format!("{} rows; the limit is {MAX_ROWS}", seeds.len())));
        }
        // Validates the shape as a tree would (an empty shape is a target-only step).
        if !shape.is_empty() {
            DraftTree::new(kind, shape.clone(), None, 0)?;
        }
        let rows = seeds
            .iter()
            .map(|&s| Row { rng: Rng::new(s), tree: DraftTree::root_only(kind, None), level_first: vec![0], walk: None })
            .collect();
        Ok(TreeBatch { kind, shape, truncate, rows, broken: false, level_off: vec![0, 1], root_pos: vec![0; seeds.len()] })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn check_usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::invalid("probs", "an earlier expand failed; start a new step with begin()"));
        }
        Ok(())
    }

    /// Keeps the rows listed (in that order), e.g. once some rows have finished; their random
    /// streams continue. This step's trees are discarded (call it between steps).
    pub fn select(&mut self, keep: &[usize]) -> Result<()> {
        if keep.is_empty() {
            return Err(Error::invalid("rows", "must keep at least one row"));
        }
        if let Some(&r) = keep.iter().find(|&&r| r >= self.rows.len()) {
            return Err(Error::invalid("rows", format!("row {r} is out of range for a batch of {}", self.rows.len())));
        }
        let mut seen = vec![false; self.rows.len()];
        for &r in keep {
            if std::mem::replace(&mut seen[r], true) {
                return Err(Error::invalid("rows", format!("row {r} is listed twice")));
            }
        }
        let mut old: Vec<Option<Row>> = std::mem::take(&mut self.rows).into_iter().map(Some).collect();
        let mut rows: Vec<Row> = keep.iter().filter_map(|&r| old[r].take()).collect();
        for row in &mut rows {
            row.tree = DraftTree::root_only(self.kind, None);
            row.level_first = vec![0];
            row.walk = None;
        }
        self.rows = rows;
        self.root_pos = keep.iter().map(|&r| self.root_pos[r]).collect();
        self.level_off = vec![0, 1];
        Ok(())
    }

    /// Starts a step: row r's tree has root token `roots[r]`, `prefix_lens[r]` committed tokens
    /// (root included; the root sits at position prefix_len − 1) and the first `depths[r]` levels
    /// of the shape (0: no draft, the step samples the target at the root).
    pub fn begin(&mut self, roots: &[i64], prefix_lens: &[usize], depths: &[usize]) -> Result<()> {
        let b = self.rows.len();
        for (arg, n) in [("roots", roots.len()), ("prefix_lens", prefix_lens.len()), ("depths", depths.len())] {
            if n != b {
                return Err(Error::invalid(arg, format!("has {n} entries but the batch has {b} rows")));
            }
        }
        if let Some(&d) = depths.iter().find(|&&d| d > self.shape.len()) {
            return Err(Error::invalid("depths", format!("depth {d} exceeds the shape's {} levels", self.shape.len())));
        }
        let mut pos = Vec::with_capacity(b);
        for (&pl, &d) in prefix_lens.iter().zip(depths) {
            pos.push(root_position(pl, d)?);
        }
        for ((row, &root), &d) in self.rows.iter_mut().zip(roots).zip(depths) {
            let seed = row.rng.next_u64();
            row.tree = if d == 0 {
                DraftTree::root_only(self.kind, Some(root))
            } else {
                DraftTree::new(self.kind, self.shape[..d].to_vec(), Some(root), seed)?
            };
            row.tree.truncate = self.truncate;
            row.level_first = vec![0];
            row.walk = None;
        }
        self.root_pos = pos;
        self.level_off = vec![0, 1];
        self.broken = false;
        Ok(())
    }

    /// Levels built so far (1 after `begin`: the roots).
    pub fn levels(&self) -> usize {
        self.level_off.len() - 1
    }

    /// Slots so far (every level).
    pub fn slots(&self) -> usize {
        *self.level_off.last().unwrap_or(&0)
    }

    /// The slots of level `l`.
    pub fn level_slots(&self, l: usize) -> Range<usize> {
        self.level_off[l]..self.level_off[l + 1]
    }

    /// True when no row has a level left to expand.
    pub fn done(&self) -> bool {
        self.rows.iter().all(|r| r.tree.done())
    }

    /// Frontier size of each row (0 for a row whose tree is complete).
    pub fn frontier_sizes(&self) -> Vec<usize> {
        self.rows.iter().map(|r| if r.tree.done() { 0 } else { r.tree.frontier.len() }).collect()
    }

    /// Checks that a (rows × `columns` × V) input named `arg` has a column for every frontier
    /// node of every row (extra columns are ignored), before `expand`/`expand_logits` read it.
    pub fn check_frontier_columns(&self, arg: &str, columns: usize) -> Result<()> {
        let need = self.frontier_sizes().into_iter().max().unwrap_or(0);
        if columns < need {
            return Err(Error::invalid(arg, format!("has {columns} frontier columns but a row has {need} frontier nodes")));
        }
        Ok(())
    }

    /// Expands one level of every unfinished row: `q(r, i)` is the draft distribution of row r's
    /// i-th frontier node, i < `frontier_sizes()[r]` (the slots of the last level, in order).
    /// After an error only `begin` may follow.
    pub fn expand<'a>(&mut self, q: impl Fn(usize, usize) -> DistRef<'a>) -> Result<()> {
        self.expand_rows(|r, tree| {
            let qs: Vec<DistRef<'a>> = (0..tree.frontier.len()).map(|i| q(r, i)).collect();
            tree.expand(&qs)
        })
    }

    /// [`Self::expand`] from the draft's float32 logits `logits(r, i)` (row r, frontier node i),
    /// warped by `w` in the one pass of [`super::logits::warped_row`]: the stored q rows are that
    /// kernel's softmax.
    pub fn expand_logits<'a>(&mut self, logits: impl Fn(usize, usize) -> &'a [f32], w: &Warp) -> Result<()> {
        self.expand_rows(|r, tree| {
            let rows = (0..tree.frontier.len())
                .map(|i| warped_row("logits", logits(r, i), w).map_err(|e| e.in_row(i)))
                .collect::<Result<Vec<_>>>()?;
            tree.expand_checked(rows)
        })
    }

    fn expand_rows(&mut self, mut grow: impl FnMut(usize, &mut DraftTree) -> Result<Vec<usize>>) -> Result<()> {
        self.check_usable()?;
        if self.done() {
            return Err(Error::invalid("probs", "every tree is complete; no frontier is left to expand"));
        }
        let mut width = 0;
        for (r, row) in self.rows.iter_mut().enumerate() {
            if row.tree.done() {
                continue;
            }
            match grow(r, &mut row.tree) {
                Ok(new) => {
                    row.level_first.push(new.first().copied().unwrap_or(row.tree.len()));
                    width = width.max(new.len());
                }
                Err(e) => {
                    self.broken = r > 0;
                    return Err(batch_row(e, r));
                }
            }
        }
        let end = self.slots();
        self.level_off.push(end + width.max(1));
        Ok(())
    }

    /// Slot of node `node` of row `r` (nodes of levels the row has built).
    fn slot(&self, r: usize, node: usize) -> usize {
        let row = &self.rows[r];
        let d = row.tree.nodes[node].depth;
        self.level_off[d] + node - row.level_first[d]
    }

    /// The node of row r in slot `s`, if any.
    pub fn node_at(&self, r: usize, s: usize) -> Option<usize> {
        let row = &self.rows[r];
        let l = self.level_off.partition_point(|&o| o <= s).checked_sub(1)?;
        if l >= row.level_first.len() {
            return None;
        }
        let first = row.level_first[l];
        let end = row.level_first.get(l + 1).copied().unwrap_or(row.tree.len());
        let node = first + (s - self.level_off[l]);
        (node < end).then_some(node)
    }

    /// Inputs of one forward over the slots `levels` (e.g. the level just built, for the draft;
    /// every level, for the target): tokens, positions, real-slot flags and mask rows against every
    /// slot up to the end of the range. With `frontier_only`, slots of rows whose tree is complete
    /// count as padding (the draft needs only the nodes it will expand).
    pub fn inputs(&self, levels: Range<usize>, frontier_only: bool, pad_token: i64) -> Result<SlotInputs> {
        self.inputs_after(levels, frontier_only, pad_token, &[], 0)
    }

    /// [`Self::inputs`] with `prefix_cols` mask columns before the slots: `prefix` is (rows ×
    /// prefix_cols) flags (e.g. the cached positions each row attends to), copied into the mask
    /// row of every real slot of the row; padding slots see none of them. So a model forward gets
    /// its whole mask from one call.
    pub fn inputs_after(
        &self,
        levels: Range<usize>,
        frontier_only: bool,
        pad_token: i64,
        prefix: &[bool],
        prefix_cols: usize,
    ) -> Result<SlotInputs> {
        self.check_usable()?;
        if levels.start >= levels.end || levels.end > self.levels() {
            return Err(Error::invalid(
                "levels",
                format!("{}..{} is not a range of the {} levels built", levels.start, levels.end, self.levels()),
            ));
        }
        let slots = self.level_off[levels.start]..self.level_off[levels.end];
        let (b, w) = (self.rows.len(), slots.len());
        if Some(prefix.len()) != b.checked_mul(prefix_cols) {
            return Err(Error::invalid("prefix", format!("has {} flags; expected rows ({b}) × {prefix_cols}", prefix.len())));
        }
        let cols = prefix_cols.checked_add(slots.end).ok_or_else(|| Error::too_large("prefix", "too many columns"))?;
        check_mask_size("levels", b.saturating_mul(w), cols)?;
        let mut out = SlotInputs {
            rows: b,
            width: w,
            cols,
            prefix: prefix_cols,
            tokens: vec![pad_token; b * w],
            positions: vec![0; b * w],
            real: vec![false; b * w],
            mask: vec![false; b * w * cols],
        };
        for r in 0..b {
            let tree = &self.rows[r].tree;
            let skip = frontier_only && tree.done();
            let pre = &prefix[r * prefix_cols..(r + 1) * prefix_cols];
            for (k, s) in slots.clone().enumerate() {
                let i = r * w + k;
                out.positions[i] = self.root_pos[r];
                let (mp, m) = out.mask[i * cols..(i + 1) * cols].split_at_mut(prefix_cols);
                match self.node_at(r, s).filter(|_| !skip) {
                    Some(node) => {
                        out.tokens[i] = tree.nodes[node].token;
                        out.positions[i] += tree.nodes[node].depth as i64;
                        out.real[i] = true;
                        mp.copy_from_slice(pre);
                        for v in tree.ancestors(node) {
                            m[self.slot(r, v)] = true;
                        }
                    }
                    None => m[s] = true,
                }
            }
        }
        Ok(out)
    }

    /// Verifies every row with its target rows `p(r, s)` (row r, slot s; only slots on the walk
    /// are read).
    pub fn verify<'a>(&mut self, p: impl Fn(usize, usize) -> DistRef<'a>) -> Result<()> {
        self.walk_begin()?;
        for r in 0..self.rows.len() {
            while let Some(s) = self.need(r) {
                self.walk_row(r, p(r, s))?;
            }
        }
        Ok(())
    }

    /// Starts every row's verification walk (drawing its seed from the row's stream).
    pub fn walk_begin(&mut self) -> Result<()> {
        self.check_usable()?;
        for row in &mut self.rows {
            let seed = row.rng.next_u64();
            row.walk = Some(row.tree.walk(seed));
        }
        Ok(())
    }

    fn need(&self, r: usize) -> Option<usize> {
        self.rows[r].walk.as_ref().and_then(|w| w.node).map(|v| self.slot(r, v))
    }

    /// The slot whose target row each row's walk needs next (None: that row's step is complete).
    pub fn walk_needs(&self) -> Vec<Option<usize>> {
        (0..self.rows.len()).map(|r| self.need(r)).collect()
    }

    /// Feeds row r's walk the target row of the slot it needs.
    pub fn walk_row(&mut self, r: usize, p: DistRef<'_>) -> Result<()> {
        self.walk_row_with(r, p, false)
    }

    /// [`Self::walk_row`]; `kernel_row`: `p` was made by `logits::warped_row` (not validated again).
    fn walk_row_with(&mut self, r: usize, p: DistRef<'_>, kernel_row: bool) -> Result<()> {
        let row = self.rows.get_mut(r).ok_or_else(|| Error::invalid("rows", format!("row {r} is out of range")))?;
        let mut w = row.walk.take().ok_or_else(|| Error::invalid("probs", "no verification walk was started"))?;
        w.p_checked = kernel_row;
        let res = row.tree.walk_node(&mut w, p).map_err(|e| batch_row(e, r));
        w.p_checked = false;
        row.walk = Some(w);
        res.map(|_| ())
    }

    /// [`Self::walk_row`] from the target's float32 logits at that slot, warped by `w` with the
    /// kernel that made the draft rows (only the visited nodes' rows are ever computed).
    pub fn walk_row_logits(&mut self, r: usize, logits: &[f32], w: &Warp) -> Result<()> {
        let (_, _, p) = warped_row("logits", logits, w).map_err(|e| batch_row(e, r))?;
        self.walk_row_with(r, p.as_ref(), true)
    }

    /// Row r's verification step once its walk is complete, and the slots to keep (the root's,
    /// then the accepted path's).
    pub fn step(&self, r: usize) -> Result<(Step, Vec<usize>)> {
        let row = self.rows.get(r).ok_or_else(|| Error::invalid("rows", format!("row {r} is out of range")))?;
        match &row.walk {
            Some(w) if w.node.is_none() => {
                let keep = w.step.keep.iter().map(|&v| self.slot(r, v)).collect();
                Ok((w.step.clone(), keep))
            }
            _ => Err(Error::invalid("rows", format!("row {r} has not finished its verification walk"))),
        }
    }

    /// Row r's tree of this step.
    pub fn tree(&self, r: usize) -> &DraftTree {
        &self.rows[r].tree
    }
}

/// Re-attributes a tree's error to batch row `r`: `probs[row i]` (the tree's i-th row) becomes
/// `probs[row r]` with "node i" in the message.
fn batch_row(e: Error, r: usize) -> Error {
    let split = |arg: &str| match arg.find('[') {
        Some(k) => (arg[..k].to_string(), Some(arg[k + 1..].trim_end_matches(']').replace("row ", ""))),
        None => (arg.to_string(), None),
    };
    let re = |arg: String, msg: String| {
        let (base, inner) = split(&arg);
        let msg = match inner {
            Some(i) => format!("frontier node {i}: {msg}"),
            None => msg,
        };
        (format!("{base}[row {r}]"), msg)
    };
    match e {
        Error::InvalidArgument { arg, msg } => {
            let (arg, msg) = re(arg, msg);
            Error::InvalidArgument { arg, msg }
        }
        Error::TooLarge { arg, msg } => {
            let (arg, msg) = re(arg, msg);
            Error::TooLarge { arg, msg }
        }
        Error::Interrupted => Error::Interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::super::dist::Dist;
    use super::*;

    fn uniform(v: usize) -> Vec<f64> {
        vec![1.0 / v as f64; v]
    }

    /// Slots, masks and keeps against each row's own tree: padding slots see only themselves,
    /// real slots see exactly their ancestors' slots, and a row of the batch draws what a batch
    /// of one with its seed draws.
    #[test]
    fn slots_map_each_row_onto_its_own_tree() {
        let v = 6;
        let q = uniform(v);
        // Row 1 has a narrow support: truncation gives it fewer nodes per level.
        let narrow = [0.5, 0.5, 0.0, 0.0, 0.0, 0.0];
        let mut b = TreeBatch::new(TreeKind::RsdC, vec![3, 2], &[11, 12, 13], true).unwrap();
        b.begin(&[1, 2, 3], &[5, 9, 7], &[2, 2, 1]).unwrap();
        while !b.done() {
            b.expand(|r, _| if r == 1 { DistRef::D64(&narrow) } else { DistRef::D64(&q) }).unwrap();
        }
        assert_eq!(b.levels(), 3);
        // Level widths: 3 (rows 0 and 2), then 6 (row 0; row 1 has 2 × 2 = 4; row 2 stopped).
        assert_eq!(b.level_slots(1), 1..4);
        assert_eq!(b.level_slots(2), 4..10);
        let all = b.inputs(0..3, false, -7).unwrap();
        for r in 0..3 {
            let t = b.tree(r);
            let f = t.flatten([5, 9, 7][r]).unwrap();
            for s in 0..all.width {
                let i = r * all.width + s;
                let m = &all.mask[i * all.cols..(i + 1) * all.cols];
                match b.node_at(r, s) {
                    Some(node) => {
                        assert!(all.real[i]);
                        assert_eq!(all.tokens[i], t.nodes[node].token);
                        assert_eq!(all.positions[i], f.positions[node]);
                        let want: Vec<usize> =
                            (0..all.cols).filter(|&c| b.node_at(r, c).is_some_and(|n| t.ancestors(node).any(|a| a == n))).collect();
                        let got: Vec<usize> = (0..all.cols).filter(|&c| m[c]).collect();
                        assert_eq!(got, want, "row {r} slot {s}");
                    }
                    None => {
                        assert!(!all.real[i]);
                        assert_eq!(all.tokens[i], -7);
                        assert_eq!((0..all.cols).filter(|&c| m[c]).collect::<Vec<_>>(), vec![s]);
                    }
                }
            }
        }
        // With prefix columns: each real slot's mask row is its row's prefix, then the same tree
        // columns; padding slots see no prefix column.
        let pre: Vec<bool> = (0..3 * 4).map(|i| (i * 7) % 3 != 0).collect();
        let with = b.inputs_after(0..3, false, -7, &pre, 4).unwrap();
        assert_eq!((with.cols, with.prefix), (all.cols + 4, 4));
        assert_eq!((&with.tokens, &with.positions, &with.real), (&all.tokens, &all.positions, &all.real));
        for i in 0..3 * all.width {
            let (mp, m) = with.mask[i * with.cols..(i + 1) * with.cols].split_at(4);
            assert_eq!(m, &all.mask[i * all.cols..(i + 1) * all.cols]);
            let r = i / all.width;
            assert_eq!(mp, if all.real[i] { &pre[r * 4..r * 4 + 4] } else { &[false; 4][..] });
        }
        assert_eq!(b.inputs_after(0..3, false, 0, &pre, 3).unwrap_err().arg(), "prefix");
        // The draft's forward over the last level skips complete rows: none here is expanded.
        let last = b.inputs(2..3, true, 0).unwrap();
        assert!(last.real.iter().all(|&x| !x));
        // Row 2 alone in a batch of one with the same seed builds the same tree.
        let mut one = TreeBatch::new(TreeKind::RsdC, vec![3, 2], &[13], true).unwrap();
        one.begin(&[3], &[7], &[1]).unwrap();
        one.expand(|_, _| DistRef::D64(&q)).unwrap();
        assert_eq!(exact_key(one.tree(0)), exact_key(b.tree(2)));
        // Verification: keeps are slots of the accepted path, starting with the root.
        let p = uniform(v);
        b.verify(|_, _| DistRef::D64(&p)).unwrap();
        one.verify(|_, _| DistRef::D64(&p)).unwrap();
        assert_eq!(b.step(2).unwrap(), one.step(0).unwrap());
        for r in 0..3 {
            let (step, keep) = b.step(r).unwrap();
            assert_eq!(keep[0], 0);
            let nodes: Vec<usize> = keep.iter().map(|&s| b.node_at(r, s).unwrap()).collect();
            assert_eq!(nodes, step.keep);
        }
    }

    fn exact_key(t: &DraftTree) -> Vec<(i64, i64)> {
        t.nodes.iter().map(|n| (n.parent, n.token)).collect()
    }

    /// Logits in: the same trees and steps as the warped rows of the one kernel passed as
    /// probabilities (dense and top-k), so the exactness tests of `expand`/`walk_row` carry over;
    /// a NaN logit is refused naming the row and frontier node.
    #[test]
    fn logits_in_equals_the_kernel_rows_in() {
        let v = 600;
        let mut rng = crate::Rng::new(5);
        let logits: Vec<Vec<f32>> = (0..8).map(|_| (0..v).map(|_| (rng.gumbel() * 2.0) as f32).collect()).collect();
        for (kind, shape) in [(TreeKind::RsdS, vec![3, 3]), (TreeKind::RsdC, vec![3, 1])] {
            for w in [Warp::new(0.7, None).unwrap(), Warp::new(1.0, Some(5)).unwrap()] {
                let rows: Vec<Dist> = logits.iter().map(|x| warped_row("q", x, &w).unwrap().2).collect();
                let (mut a, mut b) = (
                    TreeBatch::new(kind, shape.clone(), &[1, 2], true).unwrap(),
                    TreeBatch::new(kind, shape.clone(), &[1, 2], true).unwrap(),
                );
                a.begin(&[0, 0], &[4, 4], &[2, 2]).unwrap();
                b.begin(&[0, 0], &[4, 4], &[2, 2]).unwrap();
                while !a.done() {
                    a.expand_logits(|r, i| &logits[(r * 3 + i) % 8], &w).unwrap();
                    b.expand(|r, i| rows[(r * 3 + i) % 8].as_ref()).unwrap();
                }
                for r in 0..2 {
                    assert_eq!(exact_key(a.tree(r)), exact_key(b.tree(r)));
                }
                a.walk_begin().unwrap();
                b.walk_begin().unwrap();
                for r in 0..2 {
                    while let Some(s) = a.need(r) {
                        a.walk_row_logits(r, &logits[(s + r) % 8], &w).unwrap();
                        b.walk_row(r, rows[(s + r) % 8].as_ref()).unwrap();
                    }
                    assert_eq!(a.step(r).unwrap(), b.step(r).unwrap());
                }
            }
        }
        let mut bad = logits[0].clone();
        bad[3] = f32::NAN;
        let w = Warp::new(1.0, None).unwrap();
        let mut t = TreeBatch::new(TreeKind::RsdC, vec![2], &[1, 2], false).unwrap();
        t.begin(&[0, 0], &[4, 4], &[1, 1]).unwrap();
        let e = t.expand_logits(|r, _| if r == 1 { &bad } else { &logits[0] }, &w).unwrap_err();
        assert_eq!(e.arg(), "logits[row 1]");
        assert!(e.to_string().contains("frontier node 0: has the non-finite logit NaN at index 3"), "{e}");
    }

    #[test]
    fn target_only_rows_sample_the_root_and_bad_input_is_named() {
        let p = [0.0, 1.0, 0.0];
        let mut b = TreeBatch::new(TreeKind::RsdS, vec![2, 2], &[1, 2], false).unwrap();
        b.begin(&[0, 0], &[3, 3], &[0, 0]).unwrap();
        assert!(b.done());
        b.verify(|_, _| DistRef::D64(&p)).unwrap();
        for r in 0..2 {
            let (step, keep) = b.step(r).unwrap();
            assert_eq!((step.tokens, keep, step.n_nodes), (vec![1], vec![0], 0));
        }
        assert_eq!(b.begin(&[0], &[3, 3], &[0, 0]).unwrap_err().arg(), "roots");
        assert_eq!(b.begin(&[0, 0], &[3, 3], &[0, 3]).unwrap_err().arg(), "depths");
        assert_eq!(b.begin(&[0, 0], &[0, 3], &[0, 1]).unwrap_err().arg(), "prefix_len");
        assert_eq!(TreeBatch::new(TreeKind::RsdS, vec![2, 3], &[1], false).unwrap_err().arg(), "beam_width");
        assert_eq!(TreeBatch::new(TreeKind::RsdS, vec![2], &[], false).unwrap_err().arg(), "seeds");
        b.begin(&[0, 0], &[3, 3], &[1, 1]).unwrap();
        let e = b.expand(|r, _| if r == 1 { DistRef::D64(&[0.5, 0.6, 0.0]) } else { DistRef::D64(&[0.5, 0.5, 0.0]) });
        let e = e.unwrap_err();
        assert_eq!(e.arg(), "probs[row 1]");
        assert!(e.to_string().contains("frontier node 0: sums to"), "{e}");
        assert_eq!(b.inputs(0..1, false, 0).unwrap_err().arg(), "probs", "unusable until begin");
        b.begin(&[0, 0], &[3, 3], &[1, 1]).unwrap();
        assert!(b.inputs(0..1, false, 0).is_ok());
    }
}
