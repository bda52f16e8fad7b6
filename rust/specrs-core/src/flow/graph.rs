//! The multiset graph of an explicit draft law: draft tuples merged by token *set*.
//!
//! α*(p, law) depends on a tuple only through the set of tokens it contains (Hu et al., ICLR 2025,
//! eq. 9: a tuple may send mass to token i iff i occurs in it), so rows with the same token set
//! become one left node whose capacity is the sum of their probabilities. Token nodes are the
//! tokens that occur in some draft; tokens that occur in none can never carry accepted mass.

use crate::pool;

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
    /// Group of each token-side entry: `tleft[i]` is the set of edge `tedge[i]` (a parallel
    /// array, so scanning a token's sets needs no dependent load).
    pub tleft: Vec<u32>,
    /// Local → global token id, ascending.
    pub tokens: Vec<usize>,
    /// Edges entering token t are `tedge[tstart[t]..tstart[t+1]]`.
    pub tstart: Vec<u32>,
    pub tedge: Vec<u32>,
}

impl SetGraph {
    /// Hands the scratch buffers back to the per-thread pool (`row_group` is kept by the plan).
    pub fn recycle(self) {
        pool::give(self.weight);
        for v in [self.gstart, self.etok, self.tleft, self.tstart, self.tedge] {
            pool::give(v);
        }
    }

    pub fn groups(&self) -> usize {
        self.weight.len()
    }

    pub fn group_edges(&self, j: usize) -> std::ops::Range<usize> {
        self.gstart[j] as usize..self.gstart[j + 1] as usize
    }

    pub fn token_edges(&self, t: usize) -> &[u32] {
        &self.tedge[self.tstart[t] as usize..self.tstart[t + 1] as usize]
    }

    /// The sets of the edges of `token_edges(t)`, in the same order.
    pub fn token_sets(&self, t: usize) -> &[u32] {
        &self.tleft[self.tstart[t] as usize..self.tstart[t + 1] as usize]
    }

    /// Builds the graph from validated rows (`drafts` holds m rows of n ids < `vocab`).
    pub fn build(drafts: &[usize], n: usize, probs: &[f64], vocab: usize) -> Self {
        // Local ids, ascending in global id, for the tokens that occur.
        let mut local = pool::filled::<u32>(vocab, u32::MAX);
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
        let Grouping { row_group, weight, gstart, etok } = match n {
            1 => group_fixed::<1>(drafts, probs, &local, tokens.len()),
            2 => group_fixed::<2>(drafts, probs, &local, tokens.len()),
            3 => group_fixed::<3>(drafts, probs, &local, tokens.len()),
            4 => group_fixed::<4>(drafts, probs, &local, tokens.len()),
            _ => group_general(drafts, n, probs, &local),
        };
        // Token-side adjacency by counting sort.
        let k = tokens.len();
        let mut tstart = pool::filled::<u32>(k + 1, 0);
        for &t in &etok {
            tstart[t as usize + 1] += 1;
        }
        for t in 0..k {
            tstart[t + 1] += tstart[t];
        }
        let mut fill = pool::with_capacity::<u32>(k);
        fill.extend_from_slice(&tstart[..k]);
        let mut tedge = pool::filled::<u32>(etok.len(), 0);
        let mut tleft = pool::filled::<u32>(etok.len(), 0);
        for j in 0..weight.len() {
            let (lo, hi) = (gstart[j] as usize, gstart[j + 1] as usize);
            for (e, &tok) in etok.iter().enumerate().take(hi).skip(lo) {
                let t = tok as usize;
                let pos = fill[t] as usize;
                tedge[pos] = e as u32;
                tleft[pos] = j as u32;
                fill[t] += 1;
            }
        }
        pool::give(fill);
        pool::give(local);
        SetGraph { row_group, weight, gstart, etok, tleft, tokens, tstart, tedge }
    }
}

/// Rows grouped by token set: groups in order of first occurrence, each with its sorted token
/// list (local ids) as edges `etok[gstart[j]..gstart[j+1]]`.
struct Grouping {
    row_group: Vec<u32>,
    weight: Vec<f64>,
    gstart: Vec<u32>,
    etok: Vec<u32>,
}

impl Grouping {
    fn new(m: usize, n: usize) -> Self {
        let mut gstart = pool::with_capacity::<u32>(m + 1);
        gstart.push(0);
        Grouping {
            row_group: pool::filled::<u32>(m, 0),
            weight: pool::with_capacity::<f64>(m),
            gstart,
            etok: pool::with_capacity::<u32>(m * n),
        }
    }

    fn add_group(&mut self, sorted_tokens: impl Iterator<Item = u32>) -> u32 {
        let j = self.weight.len() as u32;
        self.weight.push(0.0);
        self.etok.extend(sorted_tokens);
        self.gstart.push(self.etok.len() as u32);
        j
    }
}

/// Canonical form of a key: its distinct tokens ascending, the tail padded with the largest one
/// (so {a} in two slots is [a, a] and {a, b} in three is [a, b, b]). Two keys are equal iff the
/// token sets are, and rows listed in lexicographic tuple order (e.g. multisets from
/// `combinations_with_replacement` for n = 2) give non-decreasing keys.
#[inline(always)]
fn canonical(key: &mut [u32]) {
    if key.len() == 2 {
        if key[0] > key[1] {
            key.swap(0, 1);
        }
        return;
    }
    if key.len() == 3 {
        // Sorting network, then pad duplicates with the largest token.
        let (a, b, c) = (key[0], key[1], key[2]);
        let (a, b) = (a.min(b), a.max(b));
        let (b, c) = (b.min(c), b.max(c));
        let (a, b) = (a.min(b), a.max(b));
        key[0] = a;
        if a == b {
            key[1] = c;
        } else {
            key[1] = b;
        }
        key[2] = c;
        return;
    }
    for i in 1..key.len() {
        let mut k = i;
        while k > 0 && key[k - 1] > key[k] {
            key.swap(k - 1, k);
            k -= 1;
        }
    }
    let mut w = 0;
    for i in 0..key.len() {
        if w == 0 || key[i] != key[w - 1] {
            key[w] = key[i];
            w += 1;
        }
    }
    let last = key[w - 1];
    for slot in &mut key[w..] {
        *slot = last;
    }
}

/// The distinct tokens of a canonical key.
fn distinct(key: &[u32]) -> impl Iterator<Item = u32> + '_ {
    key.iter().enumerate().filter(move |&(i, &t)| i == 0 || t != key[i - 1]).map(|(_, &t)| t)
}

fn table_for(m: usize) -> (Vec<u32>, usize) {
    let slots = (2 * m).next_power_of_two().max(2);
    (pool::filled::<u32>(slots, u32::MAX), slots - 1)
}

/// Number of canonical keys (non-decreasing N-tuples over K tokens: multisets, C(K+N−1, N)) when
/// a table indexed by their rank is cheap compared with hashing the m rows (at most 8m + 4096
/// slots and 2^22 in all).
fn dense_key_space<const N: usize>(k: usize, m: usize) -> Option<usize> {
    let space = binomial(k + N - 1, N)?;
    (space <= (8 * m + 4096).min(1 << 22)).then_some(space)
}

/// C(n, r), None on overflow.
fn binomial(n: usize, r: usize) -> Option<usize> {
    if r > n {
        return Some(0);
    }
    let mut c: usize = 1;
    for i in 0..r {
        c = c.checked_mul(n.checked_sub(i)?)? / (i + 1);
    }
    Some(c)
}

/// Grouping through a table indexed by the rank of the canonical key in the combinatorial
/// number system (a non-decreasing key k_0 ≤ … ≤ k_{N−1} ranks as Σ_i C(k_i + i, i + 1)): no
/// hashing, no key comparisons, and no unused slots.
fn group_dense<const N: usize>(drafts: &[usize], probs: &[f64], local: &[u32], k: usize, space: usize) -> Grouping {
    let m = probs.len();
    let mut out = Grouping::new(m, N);
    // binom[i][x] = C(x, i + 1) for x < K + N.
    let width = k + N;
    let mut binom = vec![0usize; N * width];
    for i in 0..N {
        for x in 0..width {
            binom[i * width + x] = binomial(x, i + 1).unwrap_or(0); // ≤ space, cannot overflow
        }
    }
    let mut table = pool::filled::<u32>(space, u32::MAX);
    for r in 0..m {
        let mut key = [0u32; N];
        for i in 0..N {
            key[i] = local[drafts[r * N + i]];
        }
        canonical(&mut key);
        let mut idx = 0usize;
        for i in 0..N {
            idx += binom[i * width + key[i] as usize + i];
        }
        let mut j = table[idx];
        if j == u32::MAX {
            j = out.add_group(distinct(&key));
            table[idx] = j;
        }
        out.row_group[r] = j;
        out.weight[j as usize] += probs[r];
    }
    pool::give(table);
    out
}

/// Grouping for n = N ≤ 4 drafts with keys held in fixed arrays (the common case; no
/// per-row allocation or slice comparison): a directly indexed table when the key space is
/// small, otherwise sorted runs and hashing. While the rows' canonical keys are non-decreasing
/// (laws listed in lexicographic order) equal keys are adjacent and no hashing is needed; at the
/// first descent the groups so far go into an open-addressing hash table (linear probing) that
/// serves the remaining rows.
fn group_fixed<const N: usize>(drafts: &[usize], probs: &[f64], local: &[u32], k: usize) -> Grouping {
    let m = probs.len();
    match dense_key_space::<N>(k, m) {
        Some(space) => group_dense::<N>(drafts, probs, local, k, space),
        None => group_sorted_or_hashed::<N>(drafts, probs, local),
    }
}

fn group_sorted_or_hashed<const N: usize>(drafts: &[usize], probs: &[f64], local: &[u32]) -> Grouping {
    let m = probs.len();
    let mut out = Grouping::new(m, N);
    let mut keys = pool::with_capacity::<u32>(N * m);
    let mut table: Option<(Vec<u32>, usize)> = None;
    let mut prev = [0u32; N];
    for r in 0..m {
        let mut key = [0u32; N];
        for i in 0..N {
            key[i] = local[drafts[r * N + i]];
        }
        canonical(&mut key);
        if table.is_none() {
            if r > 0 && key == prev {
                let j = (out.weight.len() - 1) as u32;
                out.row_group[r] = j;
                out.weight[j as usize] += probs[r];
                continue;
            }
            if r == 0 || key > prev {
                let j = out.add_group(distinct(&key));
                keys.extend_from_slice(&key);
                out.row_group[r] = j;
                out.weight[j as usize] += probs[r];
                prev = key;
                continue;
            }
            // Not sorted: index the groups so far, then hash every remaining row.
            let (mut t, mask) = table_for(m);
            for j in 0..out.weight.len() {
                let mut h = hash_key(&keys[j * N..(j + 1) * N]) as usize & mask;
                while t[h] != u32::MAX {
                    h = (h + 1) & mask;
                }
                t[h] = j as u32;
            }
            table = Some((t, mask));
        }
        if let Some((t, mask)) = table.as_mut() {
            let mut h = hash_key(&key) as usize & *mask;
            let j = loop {
                let slot = t[h];
                if slot == u32::MAX {
                    let j = out.add_group(distinct(&key));
                    keys.extend_from_slice(&key);
                    t[h] = j;
                    break j;
                }
                let s = slot as usize;
                if keys[s * N..(s + 1) * N] == key[..] {
                    break slot;
                }
                h = (h + 1) & *mask;
            };
            out.row_group[r] = j;
            out.weight[j as usize] += probs[r];
        }
    }
    if let Some((t, _)) = table {
        pool::give(t);
    }
    pool::give(keys);
    out
}

/// Grouping for any n, keys stored flat.
fn group_general(drafts: &[usize], n: usize, probs: &[f64], local: &[u32]) -> Grouping {
    let m = probs.len();
    let mut out = Grouping::new(m, n);
    let (mut table, mask) = table_for(m);
    let mut keys = pool::with_capacity::<u32>(n * m);
    let mut key = vec![u32::MAX; n];
    for r in 0..m {
        for (slot, &x) in key.iter_mut().zip(&drafts[r * n..(r + 1) * n]) {
            *slot = local[x];
        }
        canonical(&mut key);
        let mut h = hash_key(&key) as usize & mask;
        let j = loop {
            let slot = table[h];
            if slot == u32::MAX {
                let j = out.add_group(distinct(&key));
                keys.extend_from_slice(&key);
                table[h] = j;
                break j;
            }
            let s = slot as usize;
            if keys[s * n..(s + 1) * n] == key[..] {
                break slot;
            }
            h = (h + 1) & mask;
        };
        out.row_group[r] = j;
        out.weight[j as usize] += probs[r];
    }
    pool::give(table);
    pool::give(keys);
    out
}

/// FxHash-style mix of a key (fast; the table compares keys on collision, so any hash is exact).
#[inline]
fn hash_key(key: &[u32]) -> u64 {
    let mut h: u64 = 0;
    for &x in key {
        h = (h.rotate_left(5) ^ x as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every grouping path partitions rows exactly by token set, with summed weights and each
    /// group's token list ascending and distinct.
    fn check_grouping(out: &Grouping, drafts: &[usize], n: usize, probs: &[f64]) {
        use std::collections::{BTreeSet, HashMap};
        let m = probs.len();
        let mut by_set: HashMap<BTreeSet<usize>, u32> = HashMap::new();
        for r in 0..m {
            let set: BTreeSet<usize> = drafts[r * n..(r + 1) * n].iter().copied().collect();
            let j = *by_set.entry(set.clone()).or_insert(out.row_group[r]);
            assert_eq!(j, out.row_group[r], "row {r} split from its set");
            let toks: Vec<usize> =
                out.etok[out.gstart[j as usize] as usize..out.gstart[j as usize + 1] as usize].iter().map(|&t| t as usize).collect();
            assert_eq!(toks, set.into_iter().collect::<Vec<_>>());
        }
        assert_eq!(by_set.len(), out.weight.len(), "two groups share a set");
        let mut w = vec![0.0; out.weight.len()];
        for r in 0..m {
            w[out.row_group[r] as usize] += probs[r];
        }
        for (a, b) in w.iter().zip(&out.weight) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn binomials_and_key_space() {
        assert_eq!(binomial(5, 2), Some(10));
        assert_eq!(binomial(1, 3), Some(0));
        assert_eq!(binomial(129, 2), Some(8256));
        assert_eq!(dense_key_space::<3>(40, 11480), Some(11480));
        assert_eq!(dense_key_space::<2>(100_000, 10), None);
    }

    #[test]
    fn dense_sorted_hashed_and_general_paths_agree_with_a_naive_grouping() {
        let mut rng = crate::Rng::new(3);
        for &(k, n, m) in &[(5usize, 2usize, 40usize), (3000, 2, 500), (7, 3, 300), (2000, 3, 400), (9, 5, 200)] {
            let local: Vec<u32> = (0..k as u32).collect();
            // Random rows with duplicates and permutations, then the same rows sorted.
            let base: Vec<usize> = (0..m / 4 * n).map(|_| (rng.uniform() * k as f64) as usize).collect();
            let mut drafts = Vec::new();
            for _ in 0..m {
                let r = (rng.uniform() * (m / 4) as f64) as usize;
                let mut row = base[r * n..(r + 1) * n].to_vec();
                if rng.uniform() < 0.5 {
                    row.reverse();
                }
                drafts.extend(row);
            }
            let probs: Vec<f64> = (0..m).map(|_| rng.uniform()).collect();
            let mut rows: Vec<Vec<usize>> = drafts.chunks(n).map(|c| c.to_vec()).collect();
            rows.sort();
            let sorted: Vec<usize> = rows.concat();
            for d in [&drafts, &sorted] {
                check_grouping(&group_general(d, n, &probs, &local), d, n, &probs);
                match n {
                    2 => {
                        check_grouping(&group_sorted_or_hashed::<2>(d, &probs, &local), d, n, &probs);
                        if let Some(s) = dense_key_space::<2>(k, m) {
                            check_grouping(&group_dense::<2>(d, &probs, &local, k, s), d, n, &probs);
                        }
                    }
                    3 => {
                        check_grouping(&group_sorted_or_hashed::<3>(d, &probs, &local), d, n, &probs);
                        if let Some(s) = dense_key_space::<3>(k, m) {
                            check_grouping(&group_dense::<3>(d, &probs, &local, k, s), d, n, &probs);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

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
