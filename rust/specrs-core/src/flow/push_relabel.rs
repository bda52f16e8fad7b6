//! Maximum flow on the multiset graph in f64 by bipartite push-relabel with two-edge pushes
//! (Goldberg & Tarjan 1988; Ahuja, Orlin, Stein & Tarjan 1994 for the bipartite rule), highest
//! label first, with global relabelling (Cherkassky & Goldberg 1997).
//!
//! The network source → set j (cap w_j) → token t (cap ∞) → sink (cap p_t) is solved *reversed*:
//! tokens start with excess p_t and send it through sets (arc t → j of capacity ∞) to the sets'
//! sink arcs (residual `res[j]` = w_j minus what j already sends). A push always crosses a set in
//! one step (two-edge push), so only tokens ever hold excess: the active nodes are the (usually
//! few) tokens, not the many token sets. Excess that cannot be placed stays on its token, which
//! in the original orientation simply means that token's sink arc is not saturated: the maximum
//! preflow of the reversed network *is* a maximum flow of the original one, no second phase.
//!
//! Exactness in floating point: every push moves δ = min(excess, residual) and the operand equal
//! to δ becomes *exactly* 0 (x − x = 0 in IEEE arithmetic), while x − δ > 0 whenever x > δ
//! (gradual underflow). So "the sender's excess vanished" and "the arc is saturated" are exact
//! events and the classical termination bound of push-relabel, which is purely combinatorial
//! (O(N²) relabels, O(NE) saturating and O(N³) non-saturating pushes), holds verbatim: no
//! tolerance is needed to terminate. Rounding only enters when flow is *added* to an arc.

use super::graph::SetGraph;
use super::pool;

const NONE: u32 = u32::MAX;

/// Result of the solve: the flow on each edge (set → token), and which tokens lie on the source
/// side of a minimum cut (the set H of the subset-selection theorem).
pub(crate) struct MaxFlow {
    pub flow: Vec<f64>,
    pub in_cut: Vec<bool>,
}

struct Solver<'a> {
    g: &'a SetGraph,
    /// Label of nodes that cannot reach the sink (> any distance in the residual graph).
    dead: u32,
    /// Flow on each edge; it is also the residual of the arc set → token of the reversed network.
    flow: Vec<f64>,
    /// Residual of each set's arc to the (reversed) sink: w_j − what j sends.
    res: Vec<f64>,
    /// Excess of each token: p_t − what t receives.
    excess: Vec<f64>,
    label_tok: Vec<u32>,
    label_set: Vec<u32>,
    cur: Vec<u32>,
    // Active tokens, one singly linked stack per label.
    bucket: Vec<u32>,
    next: Vec<u32>,
    top: usize,
    work: usize,
    budget: usize,
    // Doubly linked lists of the live nodes (sets j as j, tokens t as l + t) of each label, for
    // the gap heuristic: when a relabel empties a level, nothing above it reaches the sink.
    l: usize,
    lhead: Vec<u32>,
    lnext: Vec<u32>,
    lprev: Vec<u32>,
    max_label: usize,
    queue: Vec<u32>,
}

fn copy_f64(v: &[f64]) -> Vec<f64> {
    let mut out = pool::f64s_with_capacity(v.len());
    out.extend_from_slice(v);
    out
}

pub(crate) fn max_flow(g: &SetGraph, cap: &[f64]) -> MaxFlow {
    let l = g.groups();
    let k = g.tokens.len();
    let dead = (l + k + 2) as u32;
    let mut s = Solver {
        g,
        dead,
        flow: pool::f64s(g.etok.len(), 0.0),
        res: copy_f64(&g.weight),
        excess: copy_f64(cap),
        label_tok: pool::u32s(k, dead),
        label_set: pool::u32s(l, dead),
        cur: pool::u32s(k, 0),
        bucket: pool::u32s(dead as usize + 1, NONE),
        next: pool::u32s(k, NONE),
        top: 0,
        work: 0,
        budget: 2 * g.etok.len() + 4 * (l + k),
        l,
        lhead: pool::u32s(dead as usize + 1, NONE),
        lnext: pool::u32s(l + k, NONE),
        lprev: pool::u32s(l + k, NONE),
        queue: pool::u32s_with_capacity(l + k),
        max_label: 0,
    };
    s.greedy_start();
    s.initial_labels();
    s.run();
    // Tokens that can still reach the sink of the reversed network (= the original source):
    // the source side H of a minimum cut in the original orientation.
    s.sink_distances();
    let in_cut = s.label_tok.iter().map(|&d| d < s.dead).collect();
    for v in [s.res, s.excess] {
        pool::give_f64(v);
    }
    for v in [s.label_tok, s.label_set, s.cur, s.bucket, s.next, s.lhead, s.lnext, s.lprev, s.queue] {
        pool::give_u32(v);
    }
    MaxFlow { flow: s.flow, in_cut }
}

impl Solver<'_> {
    /// A greedy initial flow: each set, smallest sets first (they have the fewest choices), takes
    /// what it can from its tokens' remaining excess. Push-relabel then only reroutes the rest.
    fn greedy_start(&mut self) {
        let g = self.g;
        let l = g.groups();
        let max_size = (0..l).map(|j| g.group_edges(j).len()).max().unwrap_or(0);
        for size in 1..=max_size {
            for j in 0..l {
                let edges = g.group_edges(j);
                if edges.len() != size {
                    continue;
                }
                let mut r = self.res[j];
                for e in edges {
                    if r == 0.0 {
                        break;
                    }
                    let t = g.etok[e] as usize;
                    let x = self.excess[t];
                    if x > 0.0 {
                        let delta = x.min(r);
                        self.excess[t] = x - delta;
                        self.flow[e] += delta;
                        r -= delta;
                    }
                }
                self.res[j] = r;
            }
        }
    }

    fn run(&mut self) {
        loop {
            while self.top > 0 && self.bucket[self.top] == NONE {
                self.top -= 1;
            }
            let t = self.bucket[self.top];
            if t == NONE {
                return;
            }
            let t = t as usize;
            self.bucket[self.top] = self.next[t];
            if self.label_tok[t] as usize != self.top || self.excess[t] <= 0.0 {
                continue;
            }
            self.discharge(t);
            if self.work > self.budget {
                self.global_relabel();
            }
        }
    }

    #[inline]
    fn activate(&mut self, t: usize) {
        let d = self.label_tok[t];
        if d < self.dead {
            self.next[t] = self.bucket[d as usize];
            self.bucket[d as usize] = t as u32;
            self.top = self.top.max(d as usize);
        }
    }

    /// Pushes the excess of token t through admissible sets until it is 0 or t is dead.
    fn discharge(&mut self, t: usize) {
        let g = self.g;
        let mut x = self.excess[t];
        loop {
            let d = self.label_tok[t];
            let adj = g.token_edges(t);
            let mut c = self.cur[t] as usize;
            while c < adj.len() {
                let e = adj[c] as usize;
                let j = g.eleft[e] as usize;
                if self.label_set[j] + 1 == d {
                    x = self.push_through(e, j, x);
                    if x == 0.0 {
                        self.excess[t] = 0.0;
                        self.cur[t] = c as u32;
                        return;
                    }
                    // j has no admissible arc left: it was relabelled and is no longer admissible.
                }
                c += 1;
            }
            self.relabel_token(t);
            if self.label_tok[t] >= self.dead {
                self.excess[t] = x;
                return;
            }
            if self.work > self.budget {
                // Labels may be climbing one step at a time towards `dead`: stop and let the
                // caller's global relabelling fix them all at once; t stays active.
                self.excess[t] = x;
                self.activate(t);
                return;
            }
        }
    }

    /// Two-edge push of up to x from a token along edge `e` into set j (label d_j) and on along
    /// j's admissible arcs: the sink arc (d_j = 1) or reverse arcs j → t' (flow > 0,
    /// d_t' = d_j − 1). Relabels j if x is not used up. Returns what is left of x.
    fn push_through(&mut self, e: usize, j: usize, mut x: f64) -> f64 {
        let g = self.g;
        let dj = self.label_set[j];
        if dj == 1 {
            let r = self.res[j];
            if r > 0.0 {
                let delta = x.min(r);
                self.res[j] = r - delta;
                self.flow[e] += delta;
                x -= delta;
            }
        } else {
            for e2 in g.group_edges(j) {
                let f = self.flow[e2];
                if f > 0.0 {
                    let t2 = g.etok[e2] as usize;
                    if self.label_tok[t2] + 1 == dj {
                        let delta = x.min(f);
                        self.flow[e2] = f - delta;
                        self.flow[e] += delta;
                        if self.excess[t2] == 0.0 {
                            self.activate(t2);
                        }
                        self.excess[t2] += delta;
                        x -= delta;
                        if x == 0.0 {
                            return 0.0;
                        }
                    }
                }
            }
        }
        if x > 0.0 {
            self.relabel_set(j);
        }
        x
    }

    fn relabel_set(&mut self, j: usize) {
        if self.unlink_and_gap(j) {
            return;
        }
        let g = self.g;
        let mut low = if self.res[j] > 0.0 { 1 } else { self.dead };
        for e in g.group_edges(j) {
            if self.flow[e] > 0.0 {
                low = low.min(self.label_tok[g.etok[e] as usize].saturating_add(1));
            }
        }
        self.work += 1;
        self.label_set[j] = low.min(self.dead);
        self.link(j);
    }

    fn relabel_token(&mut self, t: usize) {
        self.cur[t] = 0;
        if self.unlink_and_gap(self.l + t) {
            return;
        }
        let g = self.g;
        let adj = g.token_edges(t);
        let mut low = self.dead;
        for &e in adj {
            low = low.min(self.label_set[g.eleft[e as usize] as usize]);
        }
        self.work += adj.len() + 1;
        self.label_tok[t] = low.saturating_add(1).min(self.dead);
        self.link(self.l + t);
    }

    fn label(&self, v: usize) -> u32 {
        if v < self.l {
            self.label_set[v]
        } else {
            self.label_tok[v - self.l]
        }
    }

    fn set_label(&mut self, v: usize, d: u32) {
        if v < self.l {
            self.label_set[v] = d;
        } else {
            self.label_tok[v - self.l] = d;
        }
    }

    /// Adds live node v to the list of its label.
    fn link(&mut self, v: usize) {
        let d = self.label(v) as usize;
        if d >= self.dead as usize {
            return;
        }
        let h = self.lhead[d];
        self.lnext[v] = h;
        self.lprev[v] = NONE;
        if h != NONE {
            self.lprev[h as usize] = v as u32;
        }
        self.lhead[d] = v as u32;
        self.max_label = self.max_label.max(d);
    }

    /// Removes v (about to be relabelled upwards) from its level. If that empties the level,
    /// applies the gap rule — every node above it is dead, v included — and returns true.
    fn unlink_and_gap(&mut self, v: usize) -> bool {
        let old = self.label(v) as usize;
        let (p, n) = (self.lprev[v], self.lnext[v]);
        if p == NONE {
            self.lhead[old] = n;
        } else {
            self.lnext[p as usize] = n;
        }
        if n != NONE {
            self.lprev[n as usize] = p;
        }
        if self.lhead[old] != NONE {
            return false;
        }
        for d in old + 1..=self.max_label {
            let mut u = self.lhead[d];
            while u != NONE {
                self.set_label(u as usize, self.dead);
                u = self.lnext[u as usize];
            }
            self.lhead[d] = NONE;
        }
        self.max_label = old.saturating_sub(1);
        self.set_label(v, self.dead);
        true
    }

    /// Exact distances to the (reversed) sink by backward BFS over residual arcs; nodes that
    /// cannot reach it get `dead`.
    fn sink_distances(&mut self) {
        let g = self.g;
        let dead = self.dead;
        self.label_tok.fill(dead);
        self.label_set.fill(dead);
        let l = g.groups();
        // Queue entries: sets as j, tokens as l + t.
        let mut queue = std::mem::take(&mut self.queue);
        queue.clear();
        for j in 0..l {
            if self.res[j] > 0.0 {
                self.label_set[j] = 1;
                queue.push(j as u32);
            }
        }
        let mut qh = 0;
        while qh < queue.len() {
            let v = queue[qh] as usize;
            qh += 1;
            if v < l {
                // Every token of set v reaches it through an infinite arc.
                let d = self.label_set[v] + 1;
                for e in g.group_edges(v) {
                    let t = g.etok[e] as usize;
                    if self.label_tok[t] == dead {
                        self.label_tok[t] = d;
                        queue.push((l + t) as u32);
                    }
                }
            } else {
                // Set j reaches token t iff the edge (j, t) carries flow (reverse residual).
                let t = v - l;
                let d = self.label_tok[t] + 1;
                for &e in g.token_edges(t) {
                    let j = g.eleft[e as usize] as usize;
                    if self.label_set[j] == dead && self.flow[e as usize] > 0.0 {
                        self.label_set[j] = d;
                        queue.push(j as u32);
                    }
                }
            }
        }
        self.queue = queue;
    }

    /// A valid labelling without a BFS: sets that can still send (res > 0) get 1, others 3,
    /// tokens 2. Validity (d(u) ≤ d(v) + 1 on every residual arc): token → set 2 ≤ 1 + 1;
    /// set → sink 1 ≤ 1; set → token (flow > 0) 3 ≤ 2 + 1. Exact distances are computed only
    /// when relabelling work makes them worth a BFS.
    fn initial_labels(&mut self) {
        for j in 0..self.l {
            self.label_set[j] = if self.res[j] > 0.0 { 1 } else { 3 };
        }
        self.label_tok.fill(2.min(self.dead));
        self.rebuild_lists();
    }

    fn rebuild_lists(&mut self) {
        self.lhead.fill(NONE);
        self.max_label = 0;
        for v in 0..self.lnext.len() {
            self.link(v);
        }
        self.bucket.fill(NONE);
        self.top = 0;
        self.cur.fill(0);
        for t in 0..self.g.tokens.len() {
            if self.excess[t] > 0.0 {
                self.activate(t);
            }
        }
    }

    fn global_relabel(&mut self) {
        self.work = 0;
        self.sink_distances();
        self.rebuild_lists();
    }
}
