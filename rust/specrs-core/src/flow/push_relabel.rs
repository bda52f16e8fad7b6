//! Maximum flow on the multiset graph in f64, by highest-label push-relabel (Goldberg & Tarjan
//! 1988) with the gap and global-relabelling heuristics (Cherkassky & Goldberg 1997), specialised
//! to the bipartite network source → set j (cap w_j) → token i (cap ∞) → sink (cap p_i).
//!
//! Specialisation: the source arcs are saturated up front (each set starts with excess w_j), so
//! the source never appears; an arc set → token has infinite capacity, so a set always pushes its
//! whole excess in one push, and the only finite residuals stored are `flow[e]` (the reverse arc
//! token → set) and `sink_res[t]` (token → sink). Phase 1 computes a maximum preflow; nodes that
//! cannot reach the sink are never processed again. Phase 2 (bipartite, so trivial) returns the
//! excess stuck on tokens to their sets, which turns the preflow into a flow.
//!
//! Exactness in floating point: every push moves δ = min(excess, residual) and the operand equal
//! to δ becomes *exactly* 0 (x − x = 0 in IEEE arithmetic), while x − δ > 0 whenever x > δ
//! (gradual underflow). So "the sender's excess vanished" (non-saturating push) and "the arc is
//! saturated" (saturating push) are exact events, and the classical termination bound of
//! push-relabel, which is purely combinatorial (O(N²) relabels, O(NE) saturating and O(N²√E)
//! non-saturating pushes for highest label), holds verbatim: no tolerance is needed to terminate.
//! Rounding only enters when excess is *added*; a token whose bookkeeping ends with a few ulps of
//! excess and no residual arc left is relabelled "dead" like any node that cannot reach the sink.

use super::graph::SetGraph;

const NONE: u32 = u32::MAX;

/// Result of the solve: the flow on each edge, and which tokens lie on the source side of the
/// minimum cut (the set H of the subset-selection theorem).
pub(crate) struct MaxFlow {
    pub flow: Vec<f64>,
    pub in_cut: Vec<bool>,
}

struct Solver<'a> {
    g: &'a SetGraph,
    /// Number of sets (left nodes); node ids are sets 0..l, then tokens l..l+k.
    l: usize,
    /// Label of nodes that cannot reach the sink (> any distance in the residual graph).
    dead: u32,
    flow: Vec<f64>,
    sink_res: Vec<f64>,
    excess: Vec<f64>,
    label: Vec<u32>,
    cur: Vec<u32>,
    active: Vec<Vec<u32>>,
    top: usize,
    // Doubly linked lists of the live nodes of each label, for the gap heuristic.
    head: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    max_label: usize,
    work: usize,
    relabel_budget: usize,
}

pub(crate) fn max_flow(g: &SetGraph, cap: &[f64]) -> MaxFlow {
    let l = g.groups();
    let k = g.tokens.len();
    let nodes = l + k;
    let dead = (nodes + 1) as u32;
    let mut excess = vec![0.0; nodes];
    excess[..l].copy_from_slice(&g.weight);
    let mut s = Solver {
        g,
        l,
        dead,
        flow: vec![0.0; g.etok.len()],
        sink_res: cap.to_vec(),
        excess,
        label: vec![dead; nodes],
        cur: vec![0; nodes],
        active: vec![Vec::new(); nodes + 2],
        top: 0,
        head: vec![NONE; nodes + 2],
        next: vec![NONE; nodes],
        prev: vec![NONE; nodes],
        max_label: 0,
        work: 0,
        relabel_budget: 6 * nodes + g.etok.len(),
    };
    s.global_relabel();
    s.run();
    let in_cut = s.source_side_tokens();
    s.return_token_excess(&in_cut);
    MaxFlow { flow: s.flow, in_cut }
}

impl Solver<'_> {
    fn is_token(&self, v: usize) -> bool {
        v >= self.l
    }

    fn run(&mut self) {
        loop {
            let Some(v) = self.active[self.top].pop() else {
                if self.top == 0 {
                    return;
                }
                self.top -= 1;
                continue;
            };
            let v = v as usize;
            // Stale entries: killed by a gap since they were queued.
            if self.label[v] as usize != self.top || self.excess[v] <= 0.0 {
                continue;
            }
            self.discharge(v);
            if self.work > self.relabel_budget {
                self.global_relabel();
            }
        }
    }

    /// Adds δ > 0 to the excess of `w`, queueing it when it becomes active.
    #[inline]
    fn add_excess(&mut self, w: usize, delta: f64) {
        if self.excess[w] == 0.0 && self.label[w] < self.dead {
            let d = self.label[w] as usize;
            self.active[d].push(w as u32);
            self.top = self.top.max(d);
        }
        self.excess[w] += delta;
    }

    fn discharge(&mut self, v: usize) {
        loop {
            let d = self.label[v];
            if self.is_token(v) {
                if self.push_from_token(v, d) {
                    return;
                }
            } else if self.push_from_set(v, d) {
                return;
            }
            self.relabel(v);
            if self.label[v] >= self.dead {
                return;
            }
        }
    }

    /// A set pushes all its excess through the first admissible (infinite) arc. True if pushed.
    fn push_from_set(&mut self, j: usize, d: u32) -> bool {
        let range = self.g.group_edges(j);
        let start = range.start;
        let mut c = self.cur[j] as usize;
        while start + c < range.end {
            let e = start + c;
            let t = self.l + self.g.etok[e] as usize;
            if self.label[t] + 1 == d {
                let x = self.excess[j];
                self.excess[j] = 0.0;
                self.flow[e] += x;
                self.add_excess(t, x);
                self.cur[j] = c as u32;
                return true;
            }
            c += 1;
        }
        false
    }

    /// A token pushes to the sink, then back along arcs carrying flow. True once its excess is 0.
    fn push_from_token(&mut self, v: usize, d: u32) -> bool {
        let t = v - self.l;
        let mut x = self.excess[v];
        if d == 1 && self.sink_res[t] > 0.0 {
            let delta = x.min(self.sink_res[t]);
            self.sink_res[t] -= delta;
            x -= delta;
            if x == 0.0 {
                self.excess[v] = 0.0;
                return true;
            }
        }
        let edges = self.g.token_edges(t);
        let mut c = self.cur[v] as usize;
        while c < edges.len() {
            let e = edges[c] as usize;
            let j = self.g.eleft[e] as usize;
            if self.flow[e] > 0.0 && self.label[j] + 1 == d {
                let delta = x.min(self.flow[e]);
                self.flow[e] -= delta;
                x -= delta;
                self.add_excess(j, delta);
                if x == 0.0 {
                    self.excess[v] = 0.0;
                    self.cur[v] = c as u32;
                    return true;
                }
            }
            c += 1;
        }
        self.excess[v] = x;
        false
    }

    /// Relabel to 1 + the lowest label over residual arcs (or `dead`), with the gap heuristic.
    fn relabel(&mut self, v: usize) {
        let old = self.label[v] as usize;
        self.unlink(v);
        if self.head[old] == NONE {
            // Gap: no live node has label `old` any more, so no node above it reaches the sink.
            for d in old + 1..=self.max_label {
                let mut u = self.head[d];
                while u != NONE {
                    self.label[u as usize] = self.dead;
                    u = self.next[u as usize];
                }
                self.head[d] = NONE;
            }
            self.max_label = old.saturating_sub(1);
            self.label[v] = self.dead;
            return;
        }
        let mut low = self.dead;
        if self.is_token(v) {
            let t = v - self.l;
            if self.sink_res[t] > 0.0 {
                low = 0;
            }
            let edges = self.g.token_edges(t);
            self.work += edges.len() + 1;
            for &e in edges {
                if self.flow[e as usize] > 0.0 {
                    low = low.min(self.label[self.g.eleft[e as usize] as usize]);
                }
            }
        } else {
            let range = self.g.group_edges(v);
            self.work += range.len() + 1;
            for e in range {
                low = low.min(self.label[self.l + self.g.etok[e] as usize]);
            }
        }
        let new = low.saturating_add(1).min(self.dead);
        self.label[v] = new;
        self.cur[v] = 0;
        if new < self.dead {
            self.link(v, new as usize);
        }
    }

    fn link(&mut self, v: usize, d: usize) {
        let h = self.head[d];
        self.next[v] = h;
        self.prev[v] = NONE;
        if h != NONE {
            self.prev[h as usize] = v as u32;
        }
        self.head[d] = v as u32;
        self.max_label = self.max_label.max(d);
    }

    fn unlink(&mut self, v: usize) {
        let (p, n) = (self.prev[v], self.next[v]);
        if p == NONE {
            self.head[self.label[v] as usize] = n;
        } else {
            self.next[p as usize] = n;
        }
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    /// Exact distances to the sink in the residual graph by reverse BFS; rebuilds the buckets.
    fn sink_distances(&mut self) -> Vec<u32> {
        let (l, dead) = (self.l, self.dead);
        let k = self.g.tokens.len();
        let mut dist = vec![dead; l + k];
        let mut queue: Vec<u32> = Vec::with_capacity(l + k);
        for t in 0..k {
            if self.sink_res[t] > 0.0 {
                dist[l + t] = 1;
                queue.push((l + t) as u32);
            }
        }
        let mut qh = 0;
        while qh < queue.len() {
            let v = queue[qh] as usize;
            qh += 1;
            let d = dist[v] + 1;
            if v >= l {
                // Every set containing token v reaches it through an infinite arc.
                for &e in self.g.token_edges(v - l) {
                    let j = self.g.eleft[e as usize] as usize;
                    if dist[j] == dead {
                        dist[j] = d;
                        queue.push(j as u32);
                    }
                }
            } else {
                // Token t reaches set v iff the arc v → t carries flow (reverse residual).
                for e in self.g.group_edges(v) {
                    let t = l + self.g.etok[e] as usize;
                    if dist[t] == dead && self.flow[e] > 0.0 {
                        dist[t] = d;
                        queue.push(t as u32);
                    }
                }
            }
        }
        dist
    }

    fn global_relabel(&mut self) {
        self.work = 0;
        self.label = self.sink_distances();
        self.head.fill(NONE);
        self.max_label = 0;
        for a in &mut self.active {
            a.clear();
        }
        self.top = 0;
        for v in 0..self.label.len() {
            let d = self.label[v];
            self.cur[v] = 0;
            if d < self.dead {
                self.link(v, d as usize);
                if self.excess[v] > 0.0 {
                    self.active[d as usize].push(v as u32);
                    self.top = self.top.max(d as usize);
                }
            }
        }
    }

    /// Tokens that cannot reach the sink in the final residual graph: the source side H of a
    /// minimum cut (the largest one, since every node that can reach the sink is excluded).
    fn source_side_tokens(&mut self) -> Vec<bool> {
        let dist = self.sink_distances();
        dist[self.l..].iter().map(|&d| d == self.dead).collect()
    }

    /// Phase 2: excess left on a token (it lies in H and cannot reach the sink) goes back to the
    /// sets that sent it, which only lowers their source-arc flow. This makes the preflow a flow.
    fn return_token_excess(&mut self, in_cut: &[bool]) {
        for (t, &cut) in in_cut.iter().enumerate() {
            let mut x = self.excess[self.l + t];
            if x <= 0.0 {
                continue;
            }
            debug_assert!(cut, "a token that reaches the sink kept excess");
            let _ = cut;
            for &e in self.g.token_edges(t) {
                let delta = x.min(self.flow[e as usize]);
                self.flow[e as usize] -= delta;
                x -= delta;
                if x == 0.0 {
                    break;
                }
            }
            self.excess[self.l + t] = 0.0;
        }
    }
}
