//! Maximum flow on the multiset graph in f64 by bipartite push-relabel: two-edge pushes with
//! labels on one side only (Goldberg & Tarjan 1988; Ahuja, Orlin, Stein & Tarjan 1994 for the
//! bipartite rule), highest label first, with the gap and global-relabelling heuristics
//! (Cherkassky & Goldberg 1997).
//!
//! The network source → set j (cap w_j) → token t (cap ∞) → sink (cap p_t) is solved *reversed*:
//! tokens start with excess p_t and send it through sets (arc t → j of capacity ∞) to the sets'
//! sink arcs (residual `res[j]` = w_j minus what j already sends) or on to other tokens (arc
//! j → t' with residual flow(j, t')). A push always crosses a set in one step, so only tokens
//! hold excess and only tokens carry labels; a set's label is implicit,
//! d(j) = min(1 if res[j] > 0, 1 + d(t') over t' with flow(j, t') > 0), and token labels are
//! even. Excess that cannot be placed stays on its token, which in the original orientation just
//! means that token's sink arc is not saturated: the maximum preflow of the reversed network
//! *is* a maximum flow of the original one, so there is no second phase.
//!
//! Why implicit set labels stay valid: a push t → j → x is admissible when d(j) = d(t) − 1; it
//! opens the arc j → t, whose candidate d(t) + 1 exceeds the current minimum, so implicit labels
//! never decrease, and d(t) ≤ d(j) + 1 is kept by the token relabel d(t) = 1 + min_j d(j).
//!
//! Exactness in floating point: every push moves δ = min(excess, residual) and the operand equal
//! to δ becomes *exactly* 0 (x − x = 0 in IEEE arithmetic), while x − δ > 0 whenever x > δ
//! (gradual underflow). So "the sender's excess vanished" and "the arc is saturated" are exact
//! events and the termination bound of push-relabel, which is purely combinatorial (each token
//! label only grows and is at most 2K + 2; saturating and non-saturating pushes are bounded by
//! the label counts), holds verbatim: no tolerance is needed to terminate. Rounding only enters
//! when flow is *added* to an arc.

use super::graph::SetGraph;
use crate::pool;

const NONE: u32 = u32::MAX;

/// Result of the solve: the flow on each edge (set → token), and which tokens lie on the source
/// side of a minimum cut (the set H of the subset-selection theorem).
pub(crate) struct MaxFlow {
    pub flow: Vec<f64>,
    pub in_cut: Vec<bool>,
}

struct Solver<'a> {
    g: &'a SetGraph,
    /// Label of tokens that cannot reach the sink (above every even distance 2..2K).
    dead: u32,
    /// Flow on each edge; also the residual of the arc set → token of the reversed network.
    flow: Vec<f64>,
    /// Residual of each set's arc to the (reversed) sink: w_j − what j sends.
    res: Vec<f64>,
    /// Excess of each token: p_t − what t receives.
    excess: Vec<f64>,
    label: Vec<u32>,
    /// Current arc (index into the token's adjacency).
    cur: Vec<u32>,
    // Active tokens: one singly linked stack per label.
    bucket: Vec<u32>,
    next_active: Vec<u32>,
    top: usize,
    // All live tokens: one doubly linked list per label, for the gap heuristic.
    lhead: Vec<u32>,
    lnext: Vec<u32>,
    lprev: Vec<u32>,
    max_label: usize,
    // Relabelling work since the last global relabel, and the budget that triggers one.
    work: usize,
    budget: usize,
    // BFS scratch: queue of tokens, and per-set visit stamps.
    queue: Vec<u32>,
    seen: Vec<u32>,
    stamp: u32,
}

fn copy_f64(v: &[f64]) -> Vec<f64> {
    let mut out = pool::with_capacity::<f64>(v.len());
    out.extend_from_slice(v);
    out
}

pub(crate) fn max_flow(g: &SetGraph, cap: &[f64]) -> MaxFlow {
    let l = g.groups();
    let k = g.tokens.len();
    let dead = (2 * k + 2) as u32;
    let mut s = Solver {
        g,
        dead,
        flow: pool::filled::<f64>(g.etok.len(), 0.0),
        res: copy_f64(&g.weight),
        excess: copy_f64(cap),
        label: pool::filled::<u32>(k, 2),
        cur: pool::filled::<u32>(k, 0),
        bucket: pool::filled::<u32>(dead as usize + 1, NONE),
        next_active: pool::filled::<u32>(k, NONE),
        top: 0,
        lhead: pool::filled::<u32>(dead as usize + 1, NONE),
        lnext: pool::filled::<u32>(k, NONE),
        lprev: pool::filled::<u32>(k, NONE),
        max_label: 0,
        work: 0,
        // Global relabels after work worth ~4 BFS passes: measured faster than more frequent
        // ones on the benchmark laws, and still a constant fraction of the total work.
        budget: 8 * g.etok.len() + 32 * k + 4 * l,
        queue: pool::with_capacity::<u32>(k),
        seen: pool::filled::<u32>(l, 0),
        stamp: 0,
    };
    // Start from the zero flow (every set can send, so each implicit set label is 1) with every
    // token at label 2: a valid labelling, no BFS needed. (A greedy initial flow was measured to
    // slow the solve down on the benchmark laws.)
    s.rebuild_lists();
    s.run();
    // Tokens that can still reach the sink of the reversed network (= the original source):
    // the source side H of a minimum cut in the original orientation.
    s.sink_distances();
    let in_cut = s.label.iter().map(|&d| d < s.dead).collect();
    for v in [s.res, s.excess] {
        pool::give(v);
    }
    for v in [s.label, s.cur, s.bucket, s.next_active, s.lhead, s.lnext, s.lprev, s.queue, s.seen] {
        pool::give(v);
    }
    MaxFlow { flow: s.flow, in_cut }
}

impl Solver<'_> {
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
            self.bucket[self.top] = self.next_active[t];
            if self.label[t] as usize != self.top || self.excess[t] <= 0.0 {
                continue; // stale: killed by a gap since it was queued
            }
            self.discharge(t);
            if crate::cancel::check(1).is_err() {
                return; // Ctrl-C: the caller discards the result
            }
            if self.work > self.budget {
                self.global_relabel();
            }
        }
    }

    #[inline]
    fn activate(&mut self, t: usize) {
        let d = self.label[t];
        if d < self.dead {
            self.next_active[t] = self.bucket[d as usize];
            self.bucket[d as usize] = t as u32;
            self.top = self.top.max(d as usize);
        }
    }

    /// Pushes the excess of token t through its sets until it is 0, t is dead, or the relabel
    /// budget asks for a global relabel (then t stays active).
    fn discharge(&mut self, t: usize) {
        let g = self.g;
        let mut x = self.excess[t];
        loop {
            let d = self.label[t];
            let adj = g.token_edges(t);
            let sets = g.token_sets(t);
            let mut c = self.cur[t] as usize;
            while c < adj.len() {
                x = self.push_through(t, adj[c] as usize, sets[c] as usize, d, x);
                if x == 0.0 {
                    self.excess[t] = 0.0;
                    self.cur[t] = c as u32;
                    return;
                }
                c += 1;
            }
            self.relabel(t);
            if self.label[t] >= self.dead {
                self.excess[t] = x;
                return;
            }
            if self.work > self.budget {
                self.excess[t] = x;
                self.activate(t);
                return;
            }
        }
    }

    /// Two-edge pushes of up to x from token t (label d) into the set j of edge `e` and on
    /// along j's admissible arcs: the sink arc when d = 2, else arcs j → t' with flow > 0 and
    /// d(t') = d − 2. Returns what is left of x.
    #[inline]
    fn push_through(&mut self, t: usize, e: usize, j: usize, d: u32, mut x: f64) -> f64 {
        let g = self.g;
        if d == 2 {
            let r = self.res[j];
            if r > 0.0 {
                let delta = x.min(r);
                self.res[j] = r - delta;
                self.flow[e] += delta;
                x -= delta;
            }
            return x;
        }
        for e2 in g.group_edges(j) {
            let f = self.flow[e2];
            if f > 0.0 {
                let t2 = g.etok[e2] as usize;
                if t2 != t && self.label[t2] + 2 == d {
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
        x
    }

    /// d(t) = 1 + min over sets j ∋ t of the implicit d(j), with the gap rule.
    fn relabel(&mut self, t: usize) {
        self.cur[t] = 0;
        if self.unlink_and_gap(t) {
            return;
        }
        let g = self.g;
        let adj = g.token_sets(t);
        let mut low = self.dead;
        for &j in adj {
            let j = j as usize;
            if self.res[j] > 0.0 {
                low = 2;
                break;
            }
            for e2 in g.group_edges(j) {
                let t2 = g.etok[e2] as usize;
                if t2 != t && self.flow[e2] > 0.0 {
                    low = low.min(self.label[t2].saturating_add(2));
                }
            }
            self.work += g.group_edges(j).len();
        }
        self.work += adj.len() + 1;
        self.label[t] = low.min(self.dead);
        self.link(t);
    }

    /// Adds live token t to the list of its label.
    fn link(&mut self, t: usize) {
        let d = self.label[t] as usize;
        if d >= self.dead as usize {
            return;
        }
        let h = self.lhead[d];
        self.lnext[t] = h;
        self.lprev[t] = NONE;
        if h != NONE {
            self.lprev[h as usize] = t as u32;
        }
        self.lhead[d] = t as u32;
        self.max_label = self.max_label.max(d);
    }

    /// Removes t (about to be relabelled upwards) from its level. If that empties the level,
    /// applies the gap rule — token labels are even and drop by at most 2 per token-to-token
    /// step, so no token above an empty level reaches the sink: all of them, t included, die.
    fn unlink_and_gap(&mut self, t: usize) -> bool {
        let old = self.label[t] as usize;
        let (p, n) = (self.lprev[t], self.lnext[t]);
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
                self.label[u as usize] = self.dead;
                u = self.lnext[u as usize];
            }
            self.lhead[d] = NONE;
        }
        self.max_label = old.saturating_sub(2);
        self.label[t] = self.dead;
        true
    }

    /// Exact (even) distances of tokens to the reversed sink by backward BFS over residual arcs;
    /// tokens that cannot reach it get `dead`.
    fn sink_distances(&mut self) {
        let g = self.g;
        let dead = self.dead;
        self.label.fill(dead);
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.seen.fill(0);
            self.stamp = 1;
        }
        let stamp = self.stamp;
        let mut queue = std::mem::take(&mut self.queue);
        queue.clear();
        // Sets that can still send reach the sink in one step; their tokens in two.
        for j in 0..g.groups() {
            if self.res[j] > 0.0 {
                self.seen[j] = stamp;
                for e in g.group_edges(j) {
                    let t = g.etok[e] as usize;
                    if self.label[t] == dead {
                        self.label[t] = 2;
                        queue.push(t as u32);
                    }
                }
            }
        }
        let mut qh = 0;
        while qh < queue.len() {
            let t = queue[qh] as usize;
            qh += 1;
            let d = self.label[t] + 2;
            // A set j with flow(j, t) > 0 reaches t; every token of j reaches j.
            for (&e, &j) in g.token_edges(t).iter().zip(g.token_sets(t)) {
                let j = j as usize;
                if self.seen[j] == stamp || self.flow[e as usize] <= 0.0 {
                    continue;
                }
                self.seen[j] = stamp;
                for e2 in g.group_edges(j) {
                    let t2 = g.etok[e2] as usize;
                    if self.label[t2] == dead {
                        self.label[t2] = d;
                        queue.push(t2 as u32);
                    }
                }
            }
        }
        self.queue = queue;
    }

    fn rebuild_lists(&mut self) {
        self.lhead.fill(NONE);
        self.max_label = 0;
        self.bucket.fill(NONE);
        self.top = 0;
        self.cur.fill(0);
        for t in 0..self.label.len() {
            self.link(t);
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
