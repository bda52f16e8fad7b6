//! Acceptance of recursive rejection sampling without replacement (RSD, Jeon et al. 2024;
//! docs/theory.md §4.3) with successive-sampling drafts.
//!
//! Structure used (derived here; checked against brute-force enumeration in the tests): with
//! N(a) = Σ_y (p(y) − a·q(y))_+ and s_k = Σ_{y not drawn before step k} q(y) the q-mass that
//! remains, the residual target at step k is p_k = (p − a_k q)_+ / N(a_k) with a_1 = 0 and
//! a_{k+1} = a_k + N(a_k)/s_k, because every rejected token already has p − a_k q ≤ 0. Hence
//! 1 − α_k = N(a_{k+1}) / N(a_k), the rejection probabilities telescope, and given the rejected
//! drafts Pr[no acceptance] = N(a_{n+1}). The k-th rejected draft y (not yet drawn) has weight
//! (a_{k+1} q(y) − max(p(y), a_k q(y)))_+ / N(a_k), which is (N(a_k)/s_k)·q(y) where p ≤ a_k q.
//!
//! s_k is **summed** over the tokens that remain, never 1 − Σ(drawn q): on a confident row such
//! as q = (1, 1e-15) the difference keeps no correct digit (docs/theory.md, "Remaining mass").
//! p and q enter as given (the recurrence is invariant under scaling either; no normalisation
//! rounds a subnormal entry). Tokens are sorted by p/q and kept in two sum trees (p and q), so
//! the sum over any set of
//! sorted positions minus a few removed ones is a sum of O(n log V) non-negative node sums, with
//! no subtraction. One step costs O(n log V):
//!
//! * exact: the expectation over the sequences of rejected drafts, enumerated (n = 2 is O(V log V));
//!   used when the enumeration has at most [`EXACT_NODES`] nodes;
//! * otherwise a Monte-Carlo estimate: sample the rejected drafts from their law, average
//!   N(a_{n+1}) (Rao–Blackwellised: no accept/reject coin is drawn), report its standard error.

use crate::{Real, Rng};

/// Largest enumeration (number of visited rejected-draft sequences) done exactly.
pub use crate::limits::RRS_WOR_EXACT_NODES as EXACT_NODES;

/// Sums over index ranges as sums of whole nodes (all terms non-negative, so every range sum is
/// relatively accurate, unlike a difference of prefix sums).
struct SumTree {
    size: usize,
    node: Vec<f64>,
}

impl SumTree {
    fn new(v: &[f64]) -> Self {
        let size = v.len().next_power_of_two().max(1);
        let mut node = vec![0.0; 2 * size];
        node[size..size + v.len()].copy_from_slice(v);
        for i in (1..size).rev() {
            node[i] = node[2 * i] + node[2 * i + 1];
        }
        SumTree { size, node }
    }

    /// Σ v[l..r].
    fn sum(&self, l: usize, r: usize) -> f64 {
        let (mut l, mut r) = (l + self.size, r + self.size);
        let (mut left, mut right) = (0.0, 0.0);
        while l < r {
            if l & 1 == 1 {
                left += self.node[l];
                l += 1;
            }
            if r & 1 == 1 {
                r -= 1;
                right += self.node[r];
            }
            l >>= 1;
            r >>= 1;
        }
        left + right
    }
}

/// Tokens with p > 0 or q > 0 sorted by p/q ascending (q = 0 last), with suffix sums and sum trees.
pub struct Curve {
    r: Vec<f64>,
    p: Vec<f64>,
    q: Vec<f64>,
    ps: Vec<f64>,
    qs: Vec<f64>,
    pt: SumTree,
    qt: SumTree,
    /// The factor q was multiplied by (1, or 2^600 on rows with tiny q entries; see `new`).
    scale: f64,
}

/// One step of the recurrence: thresholds a = a_k → a1 = a_{k+1} = a + d with d = N(a_k)/s_k,
/// and the sorted-position bounds ja = #{p/q ≤ a}, jb = #{p/q < a1}.
struct Step {
    a1: f64,
    d: f64,
    ja: usize,
    jb: usize,
}

impl Curve {
    pub fn new<T: Real>(p: &[T], q: &[T]) -> Self {
        let v = p.len();
        // A q entry below 1e-150 (subnormal ones included) could make p/q or N/s overflow; the
        // recurrence is invariant under scaling q, so such rows use q·2^600 (exact; ≤ 4e180).
        let tiny = q.iter().any(|x| x.to_f64() > 0.0 && x.to_f64() < 1e-150);
        let scale = if tiny { crate::verify::kernel::BIG } else { 1.0 };
        let (p, q) = (|i: usize| p[i].to_f64(), |i: usize| q[i].to_f64() * scale);
        let mut idx: Vec<(u64, usize)> = (0..v)
            .filter(|&i| p(i) > 0.0 || q(i) > 0.0)
            .map(|i| ((if q(i) > 0.0 { p(i) / q(i) } else { f64::INFINITY }).to_bits(), i))
            .collect();
        idx.sort_unstable();
        let m = idx.len();
        let sorted_p: Vec<f64> = idx.iter().map(|&(_, i)| p(i)).collect();
        let sorted_q: Vec<f64> = idx.iter().map(|&(_, i)| q(i)).collect();
        let (mut ps, mut qs) = (vec![0.0; m + 1], vec![0.0; m + 1]);
        for j in (0..m).rev() {
            ps[j] = ps[j + 1] + sorted_p[j];
            qs[j] = qs[j + 1] + sorted_q[j];
        }
        Curve {
            r: idx.iter().map(|&(b, _)| f64::from_bits(b)).collect(),
            pt: SumTree::new(&sorted_p),
            qt: SumTree::new(&sorted_q),
            p: sorted_p,
            q: sorted_q,
            ps,
            qs,
            scale,
        }
    }

    /// N(a) = Σ (p − a q)_+ for the q given to [`Curve::new`] (its internal scaling undone): the
    /// RRS (with replacement) recurrence of the acceptance study.
    pub fn residual_mass(&self, a: f64) -> f64 {
        self.big_n(a / self.scale)
    }

    /// β(ρ) = Σ min(p/ρ, q) (K-SEQ) for the q given to [`Curve::new`]: p/ρ on the tokens with
    /// p/q ≤ ρ, q on the others, each part a sum of non-negative terms.
    pub fn beta(&self, rho: f64) -> f64 {
        let j = self.r.partition_point(|&r| r <= rho / self.scale);
        self.pt.sum(0, j) / rho + self.qs[j] / self.scale
    }

    /// N(a) = Σ (p − a q)_+, from suffix sums (sums of non-negative terms).
    pub fn big_n(&self, a: f64) -> f64 {
        let j = self.r.partition_point(|&r| r <= a);
        (self.ps[j] - a * self.qs[j]).max(0.0)
    }

    /// s = Σ q over the positions not in `removed` (sorted ascending), summed gap by gap.
    fn rest(&self, removed: &[usize]) -> f64 {
        let mut lo = 0;
        let mut s = 0.0;
        for &j in removed {
            s += self.qt.sum(lo, j);
            lo = j + 1;
        }
        s + self.qt.sum(lo, self.r.len())
    }

    /// The step from a with residual mass `nk` when the q-mass `rest` remains, and N(a1).
    fn step(&self, a: f64, nk: f64, rest: f64) -> (Step, f64) {
        // rest > 0 (n ≤ support) and ≥ 1e-150 or scaled (see `new`): d stays finite; the clamp
        // only guards against a stray overflow.
        let d = (nk / rest).min(f64::MAX);
        let a1 = (a + d).min(f64::MAX);
        let st = Step { a1, d, ja: self.r.partition_point(|&r| r <= a), jb: self.r.partition_point(|&r| r < a1) };
        (st, self.big_n(a1))
    }

    /// Weight of sorted position j as the rejected draft of the step.
    fn weight(&self, j: usize, st: &Step) -> f64 {
        if j < st.ja {
            st.d * self.q[j]
        } else {
            (st.a1 * self.q[j] - self.p[j]).max(0.0)
        }
    }

    /// Σ of the step's weights over sorted positions [l, r) outside `removed` (sorted), piece by
    /// piece between the removed positions and the zone boundaries ja, jb.
    fn weight_sum(&self, l: usize, r: usize, st: &Step, removed: &[usize]) -> f64 {
        let r = r.min(st.jb);
        let mut total = 0.0;
        let mut piece = |x: usize, y: usize| {
            if x >= y {
                return;
            }
            if y <= st.ja {
                total += st.d * self.qt.sum(x, y);
            } else if x >= st.ja {
                total += (st.a1 * self.qt.sum(x, y) - self.pt.sum(x, y)).max(0.0);
            } else {
                total += st.d * self.qt.sum(x, st.ja) + (st.a1 * self.qt.sum(st.ja, y) - self.pt.sum(st.ja, y)).max(0.0);
            }
        };
        let mut lo = l;
        for &j in removed.iter().filter(|&&j| (l..r).contains(&j)) {
            piece(lo, j);
            lo = j + 1;
        }
        piece(lo, r);
        total
    }

    /// The position whose weight interval holds `target` (0 ≤ target < Σ weights), by descent of
    /// the sum tree; a rounding miss lands on the nearest position with positive weight.
    fn pick(&self, st: &Step, removed: &[usize], mut target: f64) -> usize {
        let (mut lo, mut hi) = (0usize, self.qt.size);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let left = self.weight_sum(lo, mid, st, removed);
            if target < left {
                hi = mid;
            } else {
                target -= left;
                lo = mid;
            }
        }
        let valid = |i: usize| self.weight(i, st) > 0.0 && removed.binary_search(&i).is_err();
        let j = lo.min(st.jb.saturating_sub(1));
        if valid(j) {
            j
        } else {
            (j..st.jb).chain((0..j).rev()).find(|&i| valid(i)).unwrap_or(j)
        }
    }
}

/// Exact Pr[no acceptance], or None when the enumeration would exceed `budget` nodes.
pub fn exact_rejection(c: &Curve, n: usize, budget: usize) -> Option<f64> {
    if n > crate::limits::MAX_RECURSION_DEPTH {
        return None; // the enumeration recurses once per draft
    }
    // The first step branches over the tokens with p/q < a_2 = 1 and later steps over at least as
    // many (thresholds grow) minus the removed ones: skip hopeless enumerations up front.
    let first = c.r.partition_point(|&r| r < 1.0) as f64;
    let mut leaves = 1.0f64;
    for k in 1..n {
        leaves *= (first - (k - 1) as f64).max(1.0);
    }
    if leaves > budget as f64 {
        return None;
    }
    let mut left = budget;
    let mut removed = Vec::with_capacity(n);
    rec(c, n, 1, 0.0, c.ps[0], &mut removed, &mut left)
}

/// `removed`: the sorted positions rejected so far.
fn rec(c: &Curve, n: usize, k: usize, a: f64, nk: f64, removed: &mut Vec<usize>, left: &mut usize) -> Option<f64> {
    let (st, n1) = c.step(a, nk, c.rest(removed));
    if k == n || n1 <= 0.0 {
        return Some(n1 / nk); // 1 − α_k: the last step, or acceptance is certain
    }
    let mut sum = 0.0f64;
    for j in 0..st.jb {
        let Err(at) = removed.binary_search(&j) else { continue };
        let u = c.weight(j, &st);
        if u <= 0.0 {
            continue;
        }
        *left = left.checked_sub(1)?;
        crate::cancel::check(n).ok()?; // Ctrl-C (the caller discards the result)
        removed.insert(at, j);
        let sub = rec(c, n, k + 1, st.a1, n1, removed, left);
        removed.remove(at);
        sum += u / nk * sub?;
    }
    Some(sum)
}

/// Monte-Carlo estimate of Pr[no acceptance]: (mean, standard error of the mean).
pub fn sampled_rejection(c: &Curve, n: usize, samples: usize, rng: &mut Rng) -> (f64, f64) {
    let samples = samples.max(2);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut removed: Vec<usize> = Vec::with_capacity(n); // sorted positions
    for _ in 0..samples {
        // One sample costs ~n binary searches plus O(n²) bookkeeping of the removed drafts.
        if crate::cancel::check(n * (n + 32)).is_err() {
            break; // Ctrl-C: the caller discards the result
        }
        removed.clear();
        let (mut a, mut nk) = (0.0f64, c.ps[0]);
        let mut est = 0.0f64;
        for k in 1..=n {
            let (st, n1) = c.step(a, nk, c.rest(&removed));
            let total = c.weight_sum(0, st.jb, &st, &removed);
            // total = N(a_{k+1}) in exact arithmetic; no positive weight left: acceptance certain.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            if k == n || n1 <= 0.0 || !(total > 0.0) {
                est = n1 / c.ps[0];
                break;
            }
            let j = c.pick(&st, &removed, rng.uniform() * total);
            let Err(at) = removed.binary_search(&j) else {
                est = n1 / c.ps[0]; // no valid draft found: only rounding-level weight was left
                break;
            };
            removed.insert(at, j);
            a = st.a1;
            nk = n1;
        }
        s1 += est;
        s2 += est * est;
    }
    let m = samples as f64;
    let mean = s1 / m;
    let var = ((s2 - m * mean * mean) / (m - 1.0)).max(0.0);
    (mean, (var / m).sqrt())
}
