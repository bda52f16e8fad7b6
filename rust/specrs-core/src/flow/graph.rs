//! The multiset graph of an explicit draft law: draft tuples merged by token *set*.
//!
//! α*(p, law) depends on a tuple only through the set of tokens it contains (Hu et al., ICLR 2025,
//! eq. 9: a tuple may send mass to token i iff i occurs in it), so rows with the same token set
//! become one left node whose capacity is the sum of their probabilities. Token nodes are the
//! tokens that occur in some draft; tokens that occur in none can never carry accepted mass.

/// The bipartite graph: `groups` left nodes (token sets) × `tokens.len()` right nodes, with one
/// edge per (set, member token). All indices are `u32` (the size limits of the module keep every
/// count below 2^32), which halves the memory traffic of the solver.
#[derive(Debug, Clone)]
pub(crate) struct SetGraph {
    /// Group (left node) of each original row.
    pub row_group: Vec<u32>,
    /// Σ probs over the rows of each group.
    pub weight: Vec<f64>,
    /// Edges of group j are `gstart[j]..gstart[j+1]`.
    pub gstart: Vec<u32>,
    /// Local token index of each edge (ascending within a group).
    pub etok: Vec<u32>,
    /// Group of each edge.
    pub eleft: Vec<u32>,
    /// Local → global token id, ascending.
    pub tokens: Vec<usize>,
    /// Edges entering token t are `tedge[tstart[t]..tstart[t+1]]`.
    pub tstart: Vec<u32>,
    pub tedge: Vec<u32>,
}

impl SetGraph {
    pub fn groups(&self) -> usize {
        self.weight.len()
    }

    pub fn group_edges(&self, j: usize) -> std::ops::Range<usize> {
        self.gstart[j] as usize..self.gstart[j + 1] as usize
    }

    pub fn token_edges(&self, t: usize) -> &[u32] {
        &self.tedge[self.tstart[t] as usize..self.tstart[t + 1] as usize]
    }

    /// Builds the graph from validated rows (`drafts` holds m rows of n ids < `vocab`).
    pub fn build(drafts: &[usize], n: usize, probs: &[f64], vocab: usize) -> Self {
        let m = probs.len();
        // Local ids, ascending in global id, for the tokens that occur.
        let mut local = vec![u32::MAX; vocab];
        for &x in drafts {
            local[x] = 0;
        }
        let mut tokens = Vec::new();
        for (x, slot) in local.iter_mut().enumerate() {
            if *slot == 0 {
                *slot = tokens.len() as u32;
                tokens.push(x);
            }
        }
        // Key of each row: its sorted, deduplicated local ids, padded with u32::MAX (so two keys
        // are equal iff the token sets are).
        let mut keys = vec![u32::MAX; m * n];
        for r in 0..m {
            let key = &mut keys[r * n..(r + 1) * n];
            for (slot, &x) in key.iter_mut().zip(&drafts[r * n..(r + 1) * n]) {
                *slot = local[x];
            }
            key.sort_unstable();
            let mut w = 0;
            for i in 0..n {
                if i == 0 || key[i] != key[w - 1] {
                    key[w] = key[i];
                    w += 1;
                }
            }
            key[w..].fill(u32::MAX);
        }
        let key = |r: usize| &keys[r * n..(r + 1) * n];
        let mut order: Vec<u32> = (0..m as u32).collect();
        order.sort_unstable_by(|&a, &b| key(a as usize).cmp(key(b as usize)).then(a.cmp(&b)));

        let mut row_group = vec![0u32; m];
        let mut weight: Vec<f64> = Vec::new();
        let mut gstart = vec![0u32];
        let mut etok: Vec<u32> = Vec::new();
        for (pos, &r) in order.iter().enumerate() {
            let r = r as usize;
            if pos == 0 || key(order[pos - 1] as usize) != key(r) {
                weight.push(0.0);
                etok.extend(key(r).iter().copied().take_while(|&t| t != u32::MAX));
                gstart.push(etok.len() as u32);
            }
            let j = weight.len() - 1;
            row_group[r] = j as u32;
            weight[j] += probs[r];
        }
        let mut eleft = vec![0u32; etok.len()];
        for j in 0..weight.len() {
            eleft[gstart[j] as usize..gstart[j + 1] as usize].fill(j as u32);
        }
        // Token-side adjacency by counting sort.
        let k = tokens.len();
        let mut tstart = vec![0u32; k + 1];
        for &t in &etok {
            tstart[t as usize + 1] += 1;
        }
        for t in 0..k {
            tstart[t + 1] += tstart[t];
        }
        let mut fill: Vec<u32> = tstart[..k].to_vec();
        let mut tedge = vec![0u32; etok.len()];
        for (e, &t) in etok.iter().enumerate() {
            tedge[fill[t as usize] as usize] = e as u32;
            fill[t as usize] += 1;
        }
        SetGraph { row_group, weight, gstart, etok, eleft, tokens, tstart, tedge }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_one_token_set_are_merged() {
        // rows: (2,0), (0,2), (1,1), (2,2), (0,2)
        let drafts = [2, 0, 0, 2, 1, 1, 2, 2, 0, 2];
        let probs = [0.1, 0.2, 0.3, 0.15, 0.25];
        let g = SetGraph::build(&drafts, 2, &probs, 4);
        assert_eq!(g.tokens, vec![0, 1, 2]);
        assert_eq!(g.groups(), 3); // {0,2}, {1}, {2}
        assert_eq!(g.row_group[0], g.row_group[1]);
        assert_eq!(g.row_group[0], g.row_group[4]);
        let j = g.row_group[0] as usize;
        assert!((g.weight[j] - 0.55).abs() < 1e-15);
        let toks: Vec<u32> = g.group_edges(j).map(|e| g.etok[e]).collect();
        assert_eq!(toks, vec![0, 2]);
        // Every edge appears once on the token side, pointing back to its group.
        let mut seen = vec![false; g.etok.len()];
        for t in 0..g.tokens.len() {
            for &e in g.token_edges(t) {
                assert_eq!(g.etok[e as usize] as usize, t);
                seen[e as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}
