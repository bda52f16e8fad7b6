//! Minimum-cost flow with small integer edge costs and real capacities, for the exact
//! full-information tree optimum (docs/theory.md §14.5): small networks only.
//!
//! Primal–dual method (Ahuja, Magnanti & Orlin, *Network Flows*, §9.8): with node potentials π
//! that keep every residual reduced cost c(u, v) + π(u) − π(v) non-negative, one Dijkstra pass
//! finds the shortest residual distances d; adding d to π makes every shortest path's edges
//! zero-reduced-cost ("admissible"), and a blocking flow (Dinic) on the admissible edges pushes as
//! much flow as the current distance allows. Repeat until the sink is unreachable. Costs are
//! integers, so distances, potentials and the admissibility test are exact; only capacities are
//! real.
//!
//! Exactness in floating point, as in [`super::push_relabel`]: an augmentation moves the path's
//! bottleneck δ, and the edge whose residual equals δ becomes *exactly* 0 (x − x = 0), so every
//! augmentation saturates an edge and the blocking-flow phase ends; rounding only enters when
//! flow is added to an edge.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::Result;

/// A residual edge; edges come in pairs (2k forward, 2k + 1 its reverse).
#[derive(Debug, Clone)]
struct Edge {
    to: usize,
    /// Residual capacity (f64::INFINITY for an uncapacitated forward edge).
    cap: f64,
    cost: i64,
}

/// A flow network under construction; [`MinCostFlow::solve`] sends the most flow from `s` to `t`
/// at the least total cost.
#[derive(Debug, Clone, Default)]
pub struct MinCostFlow {
    edges: Vec<Edge>,
    adj: Vec<Vec<usize>>,
}

/// The optimal flow's value and cost, and the flow on each edge in the order they were added.
#[derive(Debug, Clone, PartialEq)]
pub struct MinCostSolution {
    pub flow: f64,
    pub cost: f64,
    pub edge_flow: Vec<f64>,
}

impl MinCostFlow {
    pub fn new(nodes: usize) -> Self {
        MinCostFlow { edges: Vec::new(), adj: vec![Vec::new(); nodes] }
    }

    pub fn nodes(&self) -> usize {
        self.adj.len()
    }

    /// Adds an edge u → v of capacity `cap` ≥ 0 (may be infinite) and cost `cost` ≥ 0; returns
    /// its index into [`MinCostSolution::edge_flow`].
    pub fn add_edge(&mut self, u: usize, v: usize, cap: f64, cost: i64) -> usize {
        debug_assert!(cap >= 0.0 && cost >= 0, "non-negative capacities and costs");
        let k = self.edges.len();
        self.edges.push(Edge { to: v, cap, cost });
        self.edges.push(Edge { to: u, cap: 0.0, cost: -cost });
        self.adj[u].push(k);
        self.adj[v].push(k + 1);
        k / 2
    }

    /// Sends a maximum flow from `s` to `t` at minimum cost (every cost ≥ 0, so π = 0 starts
    /// valid). Honours cancellation between passes.
    pub fn solve(mut self, s: usize, t: usize) -> Result<MinCostSolution> {
        let n = self.nodes();
        let mut pot = vec![0i64; n];
        let mut dist = vec![i64::MAX; n];
        let mut level = vec![u32::MAX; n];
        let mut next = vec![0usize; n];
        loop {
            self.shortest_distances(s, &pot, &mut dist)?;
            if dist[t] == i64::MAX {
                break;
            }
            for (p, &d) in pot.iter_mut().zip(&dist) {
                if d != i64::MAX {
                    *p += d;
                }
            }
            while self.levels(s, t, &pot, &mut level)? {
                next.iter_mut().for_each(|x| *x = 0);
                self.blocking_flow(s, t, &pot, &level, &mut next)?;
            }
        }
        let edge_flow: Vec<f64> = self.edges.chunks_exact(2).map(|e| e[1].cap).collect();
        let flow = self.adj[s].iter().filter(|&&k| k % 2 == 0).map(|&k| edge_flow[k / 2]).sum();
        let cost = self.edges.chunks_exact(2).zip(&edge_flow).map(|(e, &f)| f * e[0].cost as f64).sum();
        Ok(MinCostSolution { flow, cost, edge_flow })
    }

    fn reduced(&self, u: usize, k: usize, pot: &[i64]) -> i64 {
        let e = &self.edges[k];
        e.cost + pot[u] - pot[e.to]
    }

    /// Dijkstra on reduced costs over the edges with residual capacity.
    fn shortest_distances(&self, s: usize, pot: &[i64], dist: &mut [i64]) -> Result<()> {
        dist.iter_mut().for_each(|d| *d = i64::MAX);
        dist[s] = 0;
        let mut heap = BinaryHeap::from([Reverse((0i64, s))]);
        while let Some(Reverse((d, u))) = heap.pop() {
            if d > dist[u] {
                continue;
            }
            crate::cancel::check(self.adj[u].len() + 1)?;
            for &k in &self.adj[u] {
                let e = &self.edges[k];
                if e.cap > 0.0 {
                    let nd = d + self.reduced(u, k, pot);
                    if nd < dist[e.to] {
                        dist[e.to] = nd;
                        heap.push(Reverse((nd, e.to)));
                    }
                }
            }
        }
        Ok(())
    }

    fn admissible(&self, u: usize, k: usize, pot: &[i64]) -> bool {
        self.edges[k].cap > 0.0 && self.reduced(u, k, pot) == 0
    }

    /// BFS levels over admissible edges; whether `t` is reachable.
    fn levels(&self, s: usize, t: usize, pot: &[i64], level: &mut [u32]) -> Result<bool> {
        level.iter_mut().for_each(|l| *l = u32::MAX);
        level[s] = 0;
        let mut queue = std::collections::VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            crate::cancel::check(self.adj[u].len() + 1)?;
            for &k in &self.adj[u] {
                let v = self.edges[k].to;
                if level[v] == u32::MAX && self.admissible(u, k, pot) {
                    level[v] = level[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        Ok(level[t] != u32::MAX)
    }

    /// One blocking flow on the level graph, by iterative depth-first search with current-edge
    /// pointers (`next`): a dead end advances its parent's pointer, an augmentation retreats to
    /// the first saturated edge of the path.
    fn blocking_flow(&mut self, s: usize, t: usize, pot: &[i64], level: &[u32], next: &mut [usize]) -> Result<()> {
        let mut path: Vec<usize> = Vec::new();
        let mut u = s;
        loop {
            if u == t {
                let delta = path.iter().map(|&k| self.edges[k].cap).fold(f64::INFINITY, f64::min);
                let mut first_saturated = path.len();
                for (i, &k) in path.iter().enumerate() {
                    self.edges[k].cap -= delta;
                    self.edges[k ^ 1].cap += delta;
                    if self.edges[k].cap == 0.0 && first_saturated == path.len() {
                        first_saturated = i;
                    }
                }
                crate::cancel::check(path.len() + 1)?;
                path.truncate(first_saturated);
                u = path.last().map_or(s, |&k| self.edges[k].to);
                continue;
            }
            let mut advanced = false;
            while next[u] < self.adj[u].len() {
                let k = self.adj[u][next[u]];
                let v = self.edges[k].to;
                if level[v] == level[u].wrapping_add(1) && self.admissible(u, k, pot) {
                    path.push(k);
                    u = v;
                    advanced = true;
                    break;
                }
                next[u] += 1;
            }
            if advanced {
                continue;
            }
            // Dead end: retreat, and the parent skips the edge into u.
            match path.pop() {
                None => return Ok(()),
                Some(k) => {
                    u = self.edges[k ^ 1].to;
                    next[u] += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cheapest of all n! assignments of n sources (unit supply) to n sinks (unit demand).
    fn brute_assignment(cost: &[Vec<i64>]) -> i64 {
        fn go(cost: &[Vec<i64>], row: usize, used: &mut Vec<bool>) -> i64 {
            if row == cost.len() {
                return 0;
            }
            let mut best = i64::MAX;
            for j in 0..cost.len() {
                if !used[j] {
                    used[j] = true;
                    best = best.min(cost[row][j] + go(cost, row + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        go(cost, 0, &mut vec![false; cost.len()])
    }

    #[test]
    fn assignments_match_brute_force() {
        let mut rng = crate::Rng::new(7);
        for n in 1..=6usize {
            for _ in 0..20 {
                let cost: Vec<Vec<i64>> = (0..n).map(|_| (0..n).map(|_| (rng.uniform() * 5.0) as i64).collect()).collect();
                let (s, t) = (2 * n, 2 * n + 1);
                let mut g = MinCostFlow::new(2 * n + 2);
                for (i, row) in cost.iter().enumerate() {
                    g.add_edge(s, i, 1.0, 0);
                    g.add_edge(n + i, t, 1.0, 0);
                    for (j, &c) in row.iter().enumerate() {
                        g.add_edge(i, n + j, f64::INFINITY, c);
                    }
                }
                let sol = g.solve(s, t).unwrap();
                assert_eq!(sol.flow, n as f64);
                assert_eq!(sol.cost, brute_assignment(&cost) as f64, "{cost:?}");
            }
        }
    }

    /// A 2 × 2 transport with real supplies: the cheap diagonal takes what it can.
    #[test]
    fn a_real_valued_transport_is_solved_exactly() {
        let mut g = MinCostFlow::new(6);
        let (s, t) = (4, 5);
        g.add_edge(s, 0, 0.3, 0);
        g.add_edge(s, 1, 0.7, 0);
        g.add_edge(2, t, 0.6, 0);
        g.add_edge(3, t, 0.4, 0);
        let e00 = g.add_edge(0, 2, f64::INFINITY, 0);
        g.add_edge(0, 3, f64::INFINITY, 2);
        g.add_edge(1, 2, f64::INFINITY, 1);
        let e11 = g.add_edge(1, 3, f64::INFINITY, 0);
        let sol = g.solve(s, t).unwrap();
        assert!((sol.flow - 1.0).abs() < 1e-15);
        // 0 → 2 takes 0.3, 1 → 3 takes 0.4, 1 → 2 the remaining 0.3 at cost 1.
        assert!((sol.cost - 0.3).abs() < 1e-15, "{sol:?}");
        assert!((sol.edge_flow[e00] - 0.3).abs() < 1e-15 && (sol.edge_flow[e11] - 0.4).abs() < 1e-15);
    }

    /// Flow must be rerouted through a reverse edge to reach the optimum (a greedy cheapest-first
    /// fill would stop at cost 2·1 + … ); capacity limits the flow below the supplies.
    #[test]
    fn rerouting_through_reverse_edges_and_capacity_limits() {
        // s → a → b → t is the cheap path but a → b blocks s → c → b → t; the optimum sends
        // a → d → t instead.
        let (s, a, b, c, d, t) = (0, 1, 2, 3, 4, 5);
        let mut g = MinCostFlow::new(6);
        g.add_edge(s, a, 1.0, 0);
        g.add_edge(s, c, 1.0, 0);
        g.add_edge(a, b, 1.0, 0);
        g.add_edge(a, d, 1.0, 1);
        g.add_edge(c, b, 1.0, 0);
        g.add_edge(b, t, 1.0, 0);
        g.add_edge(d, t, 0.5, 0);
        let sol = g.solve(s, t).unwrap();
        assert_eq!(sol.flow, 1.5);
        assert_eq!(sol.cost, 0.5);
    }
}
