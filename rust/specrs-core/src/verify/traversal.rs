//! Traversal verification of a draft tree (Weng et al., NeurIPS 2025; docs/theory.md §14): the
//! tree is visited leaf to root, in post-order, and each visited node is accepted with the
//! probability that the whole root-to-node sequence may be kept.
//!
//! Per node u: Mb[u] (the target row p(·|path u), replaced by u's residual once a child of u was
//! rejected), Ms[u] (the draft row q(·|path u) the children were drawn from) and α[u]:
//!
//! ```text
//! α[root] = 1,   α[c] = min(α[u] · Mb[u](tok c) / Ms[u](tok c), 1)     (top-down, log space)
//! x = the first live leaf (from the root, always into the first live child)
//! x = root:          emit y ~ Mb[root]; stop
//! coin(α[x]) true:   emit path(x), then y ~ Mb[x] (p(·|path x) when x never had children); stop
//! else, u = parent(x), t = tok x, drop x:
//!   S = Σ (α[u] Mb[u] − Ms[u])₊,  D = Σ (Ms[u] − α[u] Mb[u])₊      (= S + 1 − α[u], summed)
//!   Mb[u] ← (α[u] Mb[u] − Ms[u])₊ / S,  α[u] ← S / D,  wor siblings: Ms[u](t) ← 0, renormalised
//! ```
//!
//! D is the paper's denominator S + 1 − α[u], but summed over the vocabulary (docs/theory.md
//! §10: on a confident row 1 − α cancels, the sum does not). These are block verification's Z
//! and D (`verify::block`, the same residual step): on a chain this is exactly block
//! verification's backward scan, and on one level (α[root] = 1 throughout) RRS without
//! replacement (or, i.i.d. siblings, with replacement).
//!
//! The walk asks for rows lazily: a node's row is needed only once the post-order reaches its
//! subtree ([`Next::Need`]); a leaf's row only for its bonus token. So a step reads the rows of
//! the nodes it visits, never more.

use super::block::log_rho_step;
use super::kernel;
use super::ratio;
use super::source::Source;

/// A node's rows as traversal keeps them: raw values with their sums (both summed, never 1 − x).
#[derive(Debug, Clone)]
pub(crate) struct Rows {
    /// Mb[u]: p(·|path u), or u's residual (raw; its mass is `mb_sum`).
    pub mb: Vec<f64>,
    pub mb_sum: f64,
    /// Ms[u]: q(·|path u), rejected children zeroed for siblings without replacement.
    pub ms: Vec<f64>,
    pub ms_sum: f64,
}

/// Residual masses below this are rescaled by 2^600 (exactly), so that α/Σ never overflows.
const TINY: f64 = 1e-290;

impl Rows {
    pub fn new(mb: Vec<f64>, ms: Vec<f64>) -> Self {
        let [mb_sum, ms_sum] = kernel::sums2(&mb, &ms, |x, y| [x, y]);
        let mut r = Rows { mb, mb_sum, ms, ms_sum };
        r.rescale();
        r
    }

    fn rescale(&mut self) {
        for (v, s) in [(&mut self.mb, &mut self.mb_sum), (&mut self.ms, &mut self.ms_sum)] {
            if *s > 0.0 && *s < TINY {
                v.iter_mut().for_each(|x| *x *= kernel::BIG);
                *s *= kernel::BIG;
            }
        }
    }
}

/// A lossy variant for negative controls (docs/theory.md §14.4); never used outside tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lossy {
    /// α[u] ← min(S / (1 − Ms[u](t)), 1) instead of S / (S + 1 − α[u]).
    ParentUpdate,
    /// The token after a node whose children were all rejected comes from the original p(·|path).
    StaleBonus,
}

/// What traversal decided: the accepted node (its root-to-node path is emitted; 0 = the root,
/// nothing accepted), then `token`, an index into that node's rows drawn from its residual, or
/// `None` when the node never had children: a sample of its p(·|path) (the bonus) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TravOutcome {
    pub node: usize,
    pub token: Option<usize>,
}

/// The next thing a traversal in progress needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// The rows of this node ([`Traversal::give`]).
    Need(usize),
    Done(TravOutcome),
}

/// A traversal in progress over a tree whose nodes are numbered with every parent before its
/// children and siblings contiguous in draw order (the arena's numbering).
#[derive(Debug, Clone)]
pub(crate) struct Traversal {
    parent: Vec<usize>,
    first_child: Vec<usize>,
    n_children: Vec<usize>,
    /// Siblings were drawn without replacement (Ms renormalised after a rejection).
    wor: bool,
    /// tok[c]: the index of c's token in its parent's rows (set with the parent's rows).
    tok: Vec<usize>,
    rows: Vec<Option<Rows>>,
    /// Children of u rejected so far (the live ones follow in draw order).
    rejected: Vec<usize>,
    /// α[u] once a child of u was rejected (before that, α is the top-down value).
    alpha: Vec<Option<f64>>,
    #[cfg(test)]
    pub lossy: Option<Lossy>,
    #[cfg(test)]
    original: Vec<Option<Vec<f64>>>,
}

impl Traversal {
    /// `parent[c]` for c ≥ 1 (`parent[0]` is ignored), `first_child`, `n_children` per node.
    pub fn new(parent: Vec<usize>, first_child: Vec<usize>, n_children: Vec<usize>, wor: bool) -> Self {
        let n = parent.len();
        Traversal {
            parent,
            first_child,
            n_children,
            wor,
            tok: vec![0; n],
            rows: vec![None; n],
            rejected: vec![0; n],
            alpha: vec![None; n],
            #[cfg(test)]
            lossy: None,
            #[cfg(test)]
            original: vec![None; n],
        }
    }

    /// Node v's rows: p(·|path v), q(·|path v) on one index set, and its children's tokens as
    /// indices into them (draw order).
    pub fn give(&mut self, v: usize, p: Vec<f64>, q: Vec<f64>, children: &[usize]) {
        for (k, &i) in children.iter().enumerate() {
            self.tok[self.first_child[v] + k] = i;
        }
        self.rows[v] = Some(Rows::new(p, q));
    }

    /// The rows given so far (to hand their buffers back).
    pub fn into_rows(self) -> impl Iterator<Item = Rows> {
        self.rows.into_iter().flatten()
    }

    fn live(&self, u: usize) -> Option<usize> {
        (self.rejected[u] < self.n_children[u]).then(|| self.first_child[u] + self.rejected[u])
    }

    /// Runs until the step is decided or a node's rows are missing.
    pub fn advance<S: Source>(&mut self, src: &mut S) -> Next {
        loop {
            // The first live leaf x, with α along the path (log α for the top-down ratios).
            let (mut x, mut alpha, mut log_alpha, mut alpha_parent) = (0usize, 1.0f64, 0.0f64, 1.0f64);
            while let Some(c) = self.live(x) {
                alpha_parent = alpha;
                let Some(r) = &self.rows[x] else { return Next::Need(x) };
                (alpha, log_alpha) = match self.alpha[c] {
                    Some(a) => (a, a.ln()),
                    None => {
                        let t = self.tok[c];
                        let l = log_rho_step(log_alpha, r.mb[t], r.mb_sum, r.ms[t], r.ms_sum);
                        (l.exp(), l)
                    }
                };
                x = c;
            }
            if x != 0 && !src.coin(alpha) {
                self.reject(x, alpha_parent);
                continue;
            }
            return Next::Done(TravOutcome { node: x, token: self.emit(x, src) });
        }
    }

    /// The token after accepting x: a pick from x's residual, or None (x never had children).
    fn emit<S: Source>(&self, x: usize, src: &mut S) -> Option<usize> {
        if self.n_children[x] == 0 {
            return None;
        }
        #[cfg(test)]
        if self.lossy == Some(Lossy::StaleBonus) {
            if let Some(p) = &self.original[x] {
                let s: f64 = p.iter().sum();
                return Some(src.pick(p, p, s, &[], |x, _| x));
            }
        }
        let r = self.rows[x].as_ref().expect("an accepted node with children has rows");
        Some(src.pick(&r.mb, &r.mb, r.mb_sum, &[], |x, _| x))
    }

    /// Drops x and updates its parent u, whose α on the path is `alpha_u`: the residual step of
    /// block verification.
    fn reject(&mut self, x: usize, alpha_u: f64) {
        let u = self.parent[x];
        let t = self.tok[x];
        self.rejected[u] += 1;
        #[cfg(test)]
        let lossy = self.lossy;
        #[cfg(test)]
        if lossy == Some(Lossy::StaleBonus) && self.original[u].is_none() {
            self.original[u] = self.rows[u].as_ref().map(|r| r.mb.iter().map(|&x| x / r.mb_sum).collect());
        }
        let r = self.rows[u].as_mut().expect("a parent on the path has rows");
        let (a, b) = (alpha_u / r.mb_sum, 1.0 / r.ms_sum);
        let [s, d] = kernel::sums2(&r.mb, &r.ms, |p, q| {
            let x = a * p - b * q;
            [x.max(0.0), (-x).max(0.0)]
        });
        // α = 1 stays 1 (S/(S + 1 − 1)): the root, so one level is exactly RRS.
        #[allow(unused_mut)]
        let mut new_alpha = if alpha_u == 1.0 { 1.0 } else { ratio(s, d) };
        #[cfg(test)]
        if lossy == Some(Lossy::ParentUpdate) {
            new_alpha = (s / (1.0 - r.ms[t] / r.ms_sum)).min(1.0);
        }
        if s > 0.0 && s.is_finite() {
            r.mb.iter_mut().zip(&r.ms).for_each(|(p, &q)| *p = (a * *p - b * q).max(0.0));
            r.mb_sum = s;
        }
        // Else rounding left no residual (probability 0 in exact arithmetic): keep Mb, a valid law.
        if self.wor {
            r.ms[t] = 0.0;
            r.ms_sum = kernel::sums2(&r.ms, &r.ms, |x, _| [x])[0];
        }
        r.rescale();
        self.alpha[u] = Some(new_alpha);
    }
}

#[cfg(test)]
mod tests;
