//! Acceptance of recursive rejection sampling without replacement (RSD, Jeon et al. 2024) with
//! successive-sampling drafts, for any n and any vocabulary size (docs/theory.md §4.3 and §12).
//!
//! **Structure.** Sort the tokens by r = p/q. With N(a) = Σ_y (p(y) − a·q(y))_+ and c_k the q-mass
//! not yet drawn before step k, the residual target at step k is p_k = (p − a_k q)_+ / N(a_k) with
//! a_1 = 0 and a_{k+1} = a_k + d_k, d_k = N(a_k)/c_k: every rejected token already has
//! p − a_k q ≤ 0. Step k draws x (undrawn) and rejects it with joint weight w_k(x)/N(a_k),
//! w_k(x) = q(x)·(a_{k+1} − max(r(x), a_k))_+ (= d_k·q(x) where r(x) ≤ a_k), and the last step
//! rejects with N(a_{n+1})/N(a_n). So, with F_k the probability that steps k..n all reject,
//!
//! ```text
//! F_k(a_k, c_k, R) = Σ_{x ∉ R} w_k(x) F_{k+1}(a_{k+1}, c_k − q(x), R ∪ {x}) / N(a_k),
//! F_n = N(a_{n+1}) / N(a_n),     α = 1 − F_1(0, 1, ∅).
//! ```
//!
//! **Exactness on confident rows.** c_k is **summed** over the tokens that remain, never
//! 1 − Σ(drawn q): on a row such as q = (1, 1e-15) the difference keeps no correct digit
//! (docs/theory.md, "Remaining mass"). p and q enter as given (the recurrence is invariant under
//! scaling either); a row with a q entry below 1e-150 is scaled by 2^600 (exact) so that p/q and
//! N/c never overflow. Range sums over the sorted tokens come from sum trees (sums of whole
//! non-negative nodes, no difference of prefix sums).
//!
//! Three methods, one curve:
//!
//! * [`enumerate_rejection`]: every sequence of rejected drafts, O(n log V) per node (n = 2 is
//!   O(V log V)); exact up to rounding; used while it has at most [`ENUMERATE_NODES`] nodes, and
//!   the tests' reference;
//! * [`rejection`], the deterministic method for any n at large V (below): exact series for the
//!   last rejected draft, adaptive Chebyshev quadrature over the masses of the earlier ones, to
//!   [`TOLERANCE`];
//! * [`sampled_rejection`]: a Rao–Blackwellised Monte-Carlo estimate (no accept/reject coin is
//!   drawn) with its standard error, beyond the deterministic method's work budget (e.g. large n).
//!
//! **The deterministic method.** A drawn token x has r(x) < a_{k+1}, hence full weight
//! q(x)·d_j at every later step j: F_{k+1} depends on x through q(x) only. Three ideas make the
//! (n−1)-fold sum fast:
//!
//! * **Exclusion by mass.** Σ_{x∉R} = Σ_{all x} − Σ_{y∈R}, and the term of y ∈ R only needs q(y):
//!   a drawn token is carried as its mass (a "phantom"), except large ones, carried by position.
//! * **Outer steps (k < n−1): quadrature in q.** Tokens with q ≤ ε_k = min(1/32, c_k/4) form the
//!   measure μ = Σ w_k(x) δ_{q(x)}; Φ(t) = F_{k+1}(·, c_k − t, R ∪ {t}) is smooth in t away from
//!   a few kinks, so ∫Φ dμ uses adaptive Chebyshev interpolation (degree [`DEGREE`], bisection
//!   until the coefficient tail times the piece's μ-mass meets the tolerance; pieces with few
//!   tokens are evaluated token by token, exactly). Larger tokens are evaluated one by one.
//! * **Step n−1: exact series.** Here Φ(t) = N(a_n + N(a_n)/(c − t))/N(a_n) in closed form. Below
//!   the mass θ at which a_{n+1} reaches the next ratio r above its value at t = 0, N is linear,
//!   and 1/(c − t) is a geometric series with ratio ≤ 1/8: the sum over those tokens is a
//!   combination of moments Σ q^{j+1}·(1, r) over an r-range, read from prefix sums kept per
//!   binary-exponent bin of q. Tokens above θ are evaluated one by one. No approximation beyond
//!   the truncated series (terms below 1e-17 relative) and rounding.
//!
//! Remaining mass in the deterministic method: c − q(x) when q(x) ≤ c/2, otherwise recomputed
//! from the mass outside the top tokens plus the undrawn top tokens.

use super::prep;
use crate::verify::kseq::{KseqMasses, Masses};
use crate::{Real, Rng};

/// Largest enumeration (visited rejected-draft sequences) the verifier uses before switching to
/// the deterministic method (n = 2 at any V, n = 3 up to V ≈ 400).
pub const ENUMERATE_NODES: usize = 200_000;

/// Default work budget of the deterministic methods (the one size limit, `limits.rs`): nodes +
/// tokens scanned + tokens evaluated one by one, about 2e7 per second of one core; beyond it the
/// caller falls back to Monte Carlo. V = 32,000 with n = 4 takes about 1e6 units.
pub use crate::limits::RRS_WOR_EXACT_NODES as EXACT_NODES;

/// Largest n the verifier hands to the deterministic method (larger n: enumeration while small,
/// else Monte Carlo). [`rejection`] itself takes any n within its budget.
pub const DETERMINISTIC_MAX_N: usize = 4;

/// Chebyshev degree of the outer-step quadrature.
pub const DEGREE: usize = 8;

/// Absolute tolerance target of the deterministic method on Pr[no acceptance].
pub const TOLERANCE: f64 = 1e-9;

/// Outer-step tokens with q above this (in units of the row's q mass, or above a quarter of the
/// remaining mass) are evaluated one by one.
const EPS_ABS: f64 = 1.0 / 32.0;

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

/// The study's K-SEQ root runs on the curve, in O(log V) per evaluation.
impl KseqMasses for &Curve {
    fn at(&mut self, rho: f64) -> Masses {
        self.kseq_masses(rho)
    }
}

/// One step of the recurrence: thresholds a = a_k → a1 = a_{k+1} = a + d with d = N(a_k)/c_k,
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
        // A q entry below 1e-150 (subnormal ones included) could make p/q or N/c overflow; the
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

    fn len(&self) -> usize {
        self.r.len()
    }

    /// The prefix scan's order ([`prep::sorted`] of the same p, q with unit factors), read off
    /// this curve's sort instead of sorting again: both key a token by the bits of p/q with ties
    /// in index order, and the curve's tokens with q > 0 come first. None when the curve scaled q
    /// (tiny entries), where the two keys differ.
    pub(crate) fn scan_order(&self) -> Option<prep::Sorted> {
        if self.scale != 1.0 {
            return None;
        }
        let m = self.r.partition_point(|r| r.is_finite());
        let (p, q) = (self.p[..m].to_vec(), self.q[..m].to_vec());
        let mut p_total = 0.0;
        for &x in &p {
            p_total += x;
        }
        Some(prep::Sorted { p, q, p_total })
    }

    /// N(a) = Σ (p − a q)_+ for the q given to [`Curve::new`] (its internal scaling undone): the
    /// RRS (with replacement) recurrence of the acceptance study.
    pub fn residual_mass(&self, a: f64) -> f64 {
        self.big_n(a / self.scale)
    }

    /// K-SEQ's masses at ρ (docs/theory.md §4.4) for the q given to [`Curve::new`]: with the
    /// tokens split at p/q ≤ ρ, β = Σ_below p/ρ + Σ_above q, 1 − β = Σ_below (q − p/ρ) and
    /// 1 − ρβ = Σ (p − ρq)₊, each from sums of its own side (no 1 − x).
    pub(crate) fn kseq_masses(&self, rho: f64) -> Masses {
        let j = self.r.partition_point(|&r| r <= rho / self.scale);
        let (below_p, below_q) = (self.pt.sum(0, j), self.qt.sum(0, j) / self.scale);
        Masses {
            beta: below_p / rho + self.qs[j] / self.scale,
            omb: (below_q - below_p / rho).max(0.0),
            over: self.n_at(j, rho / self.scale),
        }
    }

    /// N(a) = Σ (p − a q)_+ (internal q scale), from suffix sums (sums of non-negative terms).
    fn big_n(&self, a: f64) -> f64 {
        self.n_at(self.r.partition_point(|&r| r <= a), a)
    }

    /// N(a) given j = #{r ≤ a}; safe for a = ∞ (only tokens with q = 0 are left).
    #[inline]
    fn n_at(&self, j: usize, a: f64) -> f64 {
        let qs = self.qs[j];
        if qs > 0.0 {
            (self.ps[j] - a * qs).max(0.0)
        } else {
            self.ps[j]
        }
    }

    /// The q-mass (summed directly) of all tokens.
    fn total_q(&self) -> f64 {
        self.qs[0]
    }

    /// Weight of sorted position j as the rejected draft of a step a → a1 = a + d: d·q where
    /// r ≤ a (no cancellation when d ≪ a), else (a1 q − p)_+.
    #[inline]
    fn weight_ad(&self, j: usize, a: f64, d: f64, a1: f64) -> f64 {
        if self.r[j] <= a {
            d * self.q[j]
        } else {
            (a1 * self.q[j] - self.p[j]).max(0.0)
        }
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

    /// [`Self::weight_sum`] over the positions [x, y) of sum-tree node `node`, read off the node
    /// where the range lies in one weight zone and holds no removed position (the value
    /// `weight_sum` gives: the sum tree's range sum of a whole node is that node), else
    /// `weight_sum` itself (gap by gap: never a removed mass subtracted from a node). The descent
    /// of [`Self::pick`] then costs O(log V) instead of O(log² V) per draw.
    #[inline]
    fn node_weight(&self, node: usize, x: usize, y: usize, st: &Step, removed: &[usize]) -> f64 {
        if x >= st.jb {
            return 0.0;
        }
        // (jb < ja only when a1 rounds to a: then weight_sum stops at jb, so does this.)
        if y <= st.jb && !removed.iter().any(|&j| x <= j && j < y) {
            if y <= st.ja {
                return st.d * self.qt.node[node];
            }
            if x >= st.ja {
                return (st.a1 * self.qt.node[node] - self.pt.node[node]).max(0.0);
            }
        }
        self.weight_sum(x, y, st, removed)
    }

    /// The position whose weight interval holds `target` (0 ≤ target < Σ weights), by descent of
    /// the sum tree; a rounding miss lands on the nearest position with positive weight.
    fn pick(&self, st: &Step, removed: &[usize], mut target: f64) -> usize {
        let (mut lo, mut hi, mut node) = (0usize, self.qt.size, 1usize);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let left = self.node_weight(2 * node, lo, mid, st, removed);
            if target < left {
                hi = mid;
                node *= 2;
            } else {
                target -= left;
                lo = mid;
                node = 2 * node + 1;
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

/// Exact Pr[no acceptance] by enumerating every sequence of rejected drafts, or None when the
/// enumeration would exceed `budget` nodes.
pub fn enumerate_rejection(c: &Curve, n: usize, budget: usize) -> Option<f64> {
    if c.len() == 0 {
        return Some(0.0);
    }
    if n > crate::limits::MAX_RECURSION_DEPTH {
        return None; // the enumeration recurses once per draft
    }
    // The first step branches over the tokens with p/q < a_2 = 1 and later steps over at least as
    // many (thresholds grow) minus the removed ones: skip hopeless enumerations up front.
    let first = c.r.partition_point(|&r| r < c.ps[0] / c.qs[0]) as f64;
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
        return Some((n1 / nk).min(1.0)); // 1 − α_k: the last step, or acceptance is certain
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
    Some(sum.min(1.0))
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

/// Remaining q-mass after removing a set of tokens, summed from what remains: the mass outside
/// the `top` largest tokens (summed once) plus the undrawn top tokens, minus drawn tokens outside
/// the top. With at most |top| tokens drawn, every drawn token outside the top is smaller than
/// every undrawn top token, so the subtraction never cancels.
struct Remaining {
    /// Sorted positions of the largest q, largest first.
    top: Vec<usize>,
    rest: f64,
}

impl Remaining {
    fn new(c: &Curve, k: usize) -> Self {
        let mut pos: Vec<usize> = (0..c.len()).collect();
        let k = k.min(pos.len());
        let by_q = |a: &usize, b: &usize| c.q[*b].total_cmp(&c.q[*a]).then(a.cmp(b));
        if k < pos.len() && k > 0 {
            pos.select_nth_unstable_by(k - 1, by_q);
        }
        pos.truncate(k);
        pos.sort_unstable_by(by_q);
        let mut is_top = vec![false; c.len()];
        for &t in &pos {
            is_top[t] = true;
        }
        let rest = (0..c.len()).filter(|&j| !is_top[j]).map(|j| c.q[j]).sum();
        Remaining { top: pos, rest }
    }

    /// Σ q over the tokens not in `removed` (sorted positions).
    fn after(&self, c: &Curve, removed: &[usize]) -> f64 {
        let top_left: f64 = self.top.iter().filter(|t| !removed.contains(t)).map(|&t| c.q[t]).sum();
        let off_top: f64 = removed.iter().filter(|t| !self.top.contains(t)).map(|&t| c.q[t]).sum();
        (self.rest + top_left - off_top).max(0.0)
    }
}

// ---------------------------------------------------------------------------------------------
// The deterministic method.

/// Prefix moments of one quarter-octave bin of q (tokens with q ∈ [2^{k/4}, 2^{(k+1)/4})), in r
/// order: with S_j(i) = Σ_{t<i} q_t (q_t/hi)^j and T_j(i) = Σ_{t<i} q_t (q_t/hi)^j r_t for j < the
/// bin's order (scaled by hi^j so that tiny masses neither underflow nor overflow the series),
/// `m[i·2·order + j]` = S_j(i) and `m[i·2·order + order + j]` = T_j(i): one prefix's moments sit
/// together, so a member's look-up reads two short runs instead of 4·order scattered entries.
struct Bin {
    /// Upper end 2^{(k+1)/4} of the bin's q range (every q of the bin is below it).
    hi: f64,
    /// r of the bin's tokens, ascending (their sorted positions ascend with it).
    r: Vec<f64>,
    /// The bin's tokens by q ascending (so that a_{n+1}(q) ascends along them): q, r and sorted
    /// position side by side, so that the one-by-one evaluation reads them in order.
    q_by_q: Vec<f64>,
    r_by_q: Vec<f64>,
    pos_by_q: Vec<u32>,
    order: usize,
    m: Vec<f64>,
}

/// 2^{k/4} for k = 0..=4 (as rounded f64; the bin of q and its upper end use the same constants).
const QUARTERS: [f64; 5] = [1.0, 1.189_207_115_002_721, std::f64::consts::SQRT_2, 1.681_792_830_507_429, 2.0];

/// The quarter-octave bin of a positive finite q: key 4e + k with 2^e·2^{k/4} ≤ q < 2^e·2^{(k+1)/4}.
/// Quarter octaves (instead of octaves) make the bin that straddles a member's series limit θ, whose
/// tokens are evaluated one by one, four times narrower.
fn bin_key(q: f64) -> i32 {
    let e = exponent(q);
    let m = q / 2f64.powi(e); // exact: a division by a power of two, m ∈ [1, 2)
    let k = (m >= QUARTERS[1]) as i32 + (m >= QUARTERS[2]) as i32 + (m >= QUARTERS[3]) as i32;
    4 * e + k
}

/// Upper end of the bin with this key (above every q of the bin).
fn bin_hi(key: i32) -> f64 {
    let (e, k) = (key.div_euclid(4), key.rem_euclid(4));
    2f64.powi(e) * QUARTERS[k as usize + 1]
}

/// Number of series terms 1/(c − t) = Σ_j t^j / c^{j+1} needed for t ≤ hi at c ≥ c_floor (ratio
/// at most 1/8 where the series is used), so that the dropped terms are below 1e-17 relative.
fn series_terms(hi: f64, c_floor: f64) -> usize {
    let ratio = (hi / c_floor.max(f64::MIN_POSITIVE)).min(0.125);
    if ratio <= 0.0 {
        return 2;
    }
    ((-17.0 * std::f64::consts::LN_10 / ratio.ln()).ceil() as usize + 1).clamp(2, 20)
}

/// Per-row tables of the deterministic method.
struct Tables<'a> {
    c: &'a Curve,
    rem: Remaining,
    /// Sorted positions by q ascending (q > 0 only).
    by_q: Vec<usize>,
    /// q, r and p along `by_q` (contiguous, so that the outer steps' scan of the small tokens
    /// reads memory in order instead of gathering through `by_q`).
    q_by_q: Vec<f64>,
    r_by_q: Vec<f64>,
    p_by_q: Vec<f64>,
    /// Bins by q, largest first (non-empty only).
    bins: Vec<Bin>,
    /// Smallest q among `rem.top`: outer steps draw every token with q ≥ this one by one, so a
    /// phantom is never a top token and "remaining minus phantoms" never cancels (at least nine
    /// undrawn top tokens, each at least as heavy as any phantom, stay in what remains).
    top_floor: f64,
}

impl<'a> Tables<'a> {
    /// The tables for every n ≤ `n` (one row's tables serve all its n ≤ [`DETERMINISTIC_MAX_N`]
    /// when built for that n: see [`Prepared`]).
    fn new(c: &'a Curve, n: usize) -> Self {
        let rem = Remaining::new(c, n + 8);
        // q ascending, ties by position: for q ≥ 0 the bits order like the values, and sorting
        // (bits, position) pairs avoids gathering q in every comparison.
        let mut keyed: Vec<(u64, u32)> = (0..c.len()).filter(|&j| c.q[j] > 0.0).map(|j| (c.q[j].to_bits(), j as u32)).collect();
        keyed.sort_unstable();
        let by_q: Vec<usize> = keyed.iter().map(|&(_, j)| j as usize).collect();
        let q_by_q: Vec<f64> = by_q.iter().map(|&j| c.q[j]).collect();
        let r_by_q: Vec<f64> = by_q.iter().map(|&j| c.r[j]).collect();
        let p_by_q: Vec<f64> = by_q.iter().map(|&j| c.p[j]).collect();
        // Lower bound of the remaining mass at step n−1, also after the formal double draws of
        // the exclusion terms (each removes at most a quarter of what remains).
        let drawn = n.saturating_sub(2);
        let top_drawn: f64 = rem.top.iter().skip(drawn).map(|&t| c.q[t]).sum();
        let c_floor = (rem.rest + top_drawn) * 0.75f64.powi(drawn as i32);
        // Bin of key e (quarter octaves, `bin_key`); a counting sort by key keeps the r order.
        let exps: Vec<i32> = c.q.iter().map(|&q| if q > 0.0 { bin_key(q) } else { i32::MIN }).collect();
        let (emin, emax) = exps.iter().filter(|&&e| e != i32::MIN).fold((i32::MAX, i32::MIN), |(lo, hi), &e| (lo.min(e), hi.max(e)));
        let mut bins: Vec<Bin> = Vec::new();
        if emin <= emax {
            let span = (emax - emin + 1) as usize;
            let mut count = vec![0usize; span];
            for &e in &exps {
                if e != i32::MIN {
                    count[(emax - e) as usize] += 1; // largest exponent first
                }
            }
            let mut lists: Vec<Vec<usize>> = count.iter().map(|&k| Vec::with_capacity(k)).collect();
            for (j, &e) in exps.iter().enumerate() {
                if e != i32::MIN {
                    lists[(emax - e) as usize].push(j);
                }
            }
            // Each bin's tokens in q order, read off the global q order (no sort per bin).
            let mut bin_by_q: Vec<Vec<u32>> = count.iter().map(|&k| Vec::with_capacity(k)).collect();
            for &j in &by_q {
                bin_by_q[(emax - exps[j]) as usize].push(j as u32);
            }
            for (b, (pos, by_q)) in lists.into_iter().zip(bin_by_q).enumerate() {
                if pos.is_empty() {
                    continue;
                }
                let hi = bin_hi(emax - b as i32);
                let order = series_terms(hi, c_floor);
                let stride = 2 * order;
                let mut m = vec![0.0; (pos.len() + 1) * stride];
                for (i, &j) in pos.iter().enumerate() {
                    let (q, r) = (c.q[j], c.r[j]);
                    let (prev, next) = m[i * stride..(i + 2) * stride].split_at_mut(stride);
                    let mut qp = q;
                    for k in 0..order {
                        next[k] = prev[k] + qp;
                        next[order + k] = prev[order + k] + qp * r;
                        qp *= q / hi;
                    }
                }
                let r = pos.iter().map(|&j| c.r[j]).collect();
                let q_by_q = by_q.iter().map(|&j| c.q[j as usize]).collect();
                let r_by_q = by_q.iter().map(|&j| c.r[j as usize]).collect();
                bins.push(Bin { hi, r, q_by_q, r_by_q, pos_by_q: by_q, order, m });
            }
        }
        let top_floor = rem.top.iter().map(|&t| c.q[t]).fold(f64::INFINITY, f64::min);
        Tables { c, rem, by_q, q_by_q, r_by_q, p_by_q, bins, top_floor }
    }
}

/// The largest f64 below x ≥ 0 (f64::MAX for ∞, the negative subnormal for 0): `f64::next_down`,
/// which needs Rust 1.86.
fn below(x: f64) -> f64 {
    if x == f64::INFINITY {
        f64::MAX
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() - 1)
    } else {
        -f64::from_bits(1)
    }
}

/// The binary exponent e of a positive finite f64 q: 2^e ≤ q < 2^{e+1}.
fn exponent(q: f64) -> i32 {
    let bits = q.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    if e == 0 {
        // Subnormal: scale up first.
        exponent(q * 2f64.powi(64)) - 64
    } else {
        e - 1023
    }
}

/// Drawn tokens along the current path: large ones by sorted position, the rest by mass.
#[derive(Default, Clone)]
struct Drawn {
    real: Vec<usize>,
    phantom: Vec<f64>,
}

/// A value with an estimate of its absolute error.
#[derive(Debug, Clone, Copy, Default)]
struct Val {
    v: f64,
    e: f64,
}

/// Lebesgue constant bound of degree-8 interpolation at Chebyshev points (errors of the node
/// values are amplified at most this much).
const LEBESGUE: f64 = 2.5;

/// Share of a quadrature's error target that dropping trailing Chebyshev coefficients may add.
const TRUNCATION_SHARE: f64 = 0.05;

/// Most child evaluations one node's quadrature may spend.
const NODE_EVALS: usize = 4096;

/// One piece of a node's quadrature: tokens `i0..i1` of the node's small-token list.
#[derive(Clone, Copy)]
struct Piece {
    i0: usize,
    i1: usize,
    /// Chebyshev coefficients on [lo, hi] (None: every token evaluated exactly, `exact` holds
    /// the sum).
    coef: Option<[f64; DEGREE + 1]>,
    exact: f64,
    /// Estimated absolute error of this piece's contribution.
    err: f64,
    /// μ-mass of the piece (interpolated pieces).
    mu: f64,
}

struct Engine<'t, 'a> {
    t: &'t Tables<'a>,
    n: usize,
    /// Work units left (a node, a scanned token, a token evaluated one by one: one each).
    left: usize,
    exhausted: bool,
    scratch: Vec<Vec<f64>>,
    /// Scratch of [`Self::last_batch_at`]: one bin's tokens evaluated one by one (q, r, position).
    cand: Vec<(f64, f64, u32)>,
    /// Bins above θ summed from their own anchors (else token by token; see `rejection_with`).
    anchor_bins: bool,
    work: Work,
}

/// Work done by one run of the deterministic method (for tuning and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Outer-step nodes (each scans the small tokens once).
    pub outer: usize,
    /// Step-(n−1) evaluations (closed form).
    pub last: usize,
    /// Tokens evaluated one by one at step n−1 (or corrected past a series anchor's kink).
    pub single: usize,
    /// Bin sums at step n−1 anchored at the bin's own smallest mass (bins above θ).
    pub anchored: usize,
}

/// Pr[no acceptance] of RRS without replacement with n drafts by the deterministic method
/// (module docs): (value, estimated absolute error), the outer-step quadrature refined until the
/// estimate is below `tol` (or a node's evaluation cap is reached). None when it would evaluate
/// more than `budget` nodes.
pub fn rejection(c: &Curve, n: usize, tol: f64, budget: usize) -> Option<(f64, f64)> {
    if c.len() == 0 {
        return Some((0.0, 0.0));
    }
    rejection_work(c, n, tol, budget).map(|(v, e, _)| (v, e))
}

/// [`rejection`] with the work it did.
pub fn rejection_work(c: &Curve, n: usize, tol: f64, budget: usize) -> Option<(f64, f64, Work)> {
    Prepared::new(c, n).rejection_work(n, tol, budget)
}

/// One row's tables of the deterministic method (q order, series bins, top tokens), built once
/// and shared by every n up to the one it was built for; built for any n ≤
/// [`DETERMINISTIC_MAX_N`] they are the same tables, so [`Prepared::rejection`] gives exactly what
/// the single-n [`rejection`] gives (the acceptance study uses one for all its n).
pub struct Prepared<'a> {
    t: Tables<'a>,
    n_max: usize,
}

impl<'a> Prepared<'a> {
    /// Tables for every n ≤ max(n_max, [`DETERMINISTIC_MAX_N`]).
    pub fn new(c: &'a Curve, n_max: usize) -> Self {
        let n_max = n_max.max(DETERMINISTIC_MAX_N);
        Prepared { t: Tables::new(c, n_max), n_max }
    }

    /// [`rejection`] on these tables (None also when n exceeds what they were built for).
    pub fn rejection(&self, n: usize, tol: f64, budget: usize) -> Option<(f64, f64)> {
        self.rejection_work(n, tol, budget).map(|(v, e, _)| (v, e))
    }

    /// [`rejection_work`] on these tables.
    pub fn rejection_work(&self, n: usize, tol: f64, budget: usize) -> Option<(f64, f64, Work)> {
        self.rejection_with(n, tol, budget, true)
    }

    /// `anchor_bins = false`: the bins above θ are evaluated token by token instead of from
    /// their own anchors (docs/theory.md §12.2); the tests compare the two.
    fn rejection_with(&self, n: usize, tol: f64, budget: usize, anchor_bins: bool) -> Option<(f64, f64, Work)> {
        let c = self.t.c;
        if c.len() == 0 {
            return Some((0.0, 0.0, Work::default()));
        }
        if n > crate::limits::MAX_RECURSION_DEPTH || n > self.n_max {
            return None; // the method recurses once per draft; the tables cover n ≤ n_max
        }
        let mut e = Engine {
            t: &self.t,
            n,
            left: budget,
            exhausted: false,
            scratch: Vec::new(),
            cand: Vec::new(),
            anchor_bins,
            work: Work::default(),
        };
        let mut drawn = Drawn::default();
        let v = e.node(1, 0.0, c.ps[0], c.total_q(), &mut drawn, tol.max(0.0))?;
        // A non-finite intermediate (not seen in the tests) falls back to Monte Carlo.
        if !(v.v.is_finite() && v.e.is_finite()) {
            return None;
        }
        Some((v.v.clamp(0.0, 1.0), v.e, e.work))
    }
}

impl Engine<'_, '_> {
    /// F_k at state (a_k = a, N(a_k) = nk, remaining mass cm, drawn) with tolerance tau.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // negated on purpose: NaN takes the safe branch
    fn node(&mut self, k: usize, a: f64, nk: f64, cm: f64, drawn: &mut Drawn, tau: f64) -> Option<Val> {
        self.left = self.left.checked_sub(1)?;
        crate::cancel::check(1).ok()?; // Ctrl-C (the caller discards the result)
        let c = self.t.c;
        if !(nk > 0.0) || !(cm > 0.0) {
            return Some(Val::default());
        }
        let d = (nk / cm).min(f64::MAX);
        let a1 = (a + d).min(f64::MAX);
        let n1 = c.big_n(a1);
        if k == self.n || !(n1 > 0.0) {
            return Some(Val { v: (n1 / nk).min(1.0), e: 0.0 });
        }
        if k + 1 == self.n {
            let v = self.last_pair(a, nk, cm, drawn);
            return if self.exhausted { None } else { Some(Val { v, e: 0.0 }) };
        }
        self.work.outer += 1;
        let eps = (EPS_ABS * c.scale).min(cm / 4.0).min(below(self.t.top_floor));
        let jb = c.r.partition_point(|&r| r < a1);
        let tau_child = tau / 4.0;
        let (mut total, mut err) = (0.0f64, 0.0f64);
        // Large tokens one by one (largest q first).
        for idx in (0..self.t.by_q.len()).rev() {
            let j = self.t.by_q[idx];
            if c.q[j] <= eps {
                break;
            }
            if j >= jb || drawn.real.contains(&j) {
                continue;
            }
            let w = c.weight_ad(j, a, d, a1);
            if w <= 0.0 {
                continue;
            }
            let q = c.q[j];
            drawn.real.push(j);
            let c2 = if q <= cm / 2.0 { cm - q } else { self.remaining(drawn) };
            let f = self.node(k + 1, a1, n1, c2, drawn, tau_child);
            drawn.real.pop();
            let f = f?;
            total += w * f.v;
            err += w * f.e;
        }
        // Small tokens by quadrature in q.
        let mut ql = self.scratch.pop().unwrap_or_default();
        let mut wl = self.scratch.pop().unwrap_or_default();
        ql.clear();
        wl.clear();
        // The tokens with q ≤ eps, in q order: positions below jb are those with r < a1, and the
        // weight is `Curve::weight_ad`'s, read from the contiguous copies.
        let small = self.t.q_by_q.partition_point(|&q| q <= eps);
        let (qs, rs, ps) = (&self.t.q_by_q[..small], &self.t.r_by_q[..small], &self.t.p_by_q[..small]);
        for ((&q, &r), &p) in qs.iter().zip(rs).zip(ps) {
            if r < a1 {
                let w = if r <= a { d * q } else { (a1 * q - p).max(0.0) };
                if w > 0.0 {
                    ql.push(q);
                    wl.push(w);
                }
            }
        }
        self.left = self.left.saturating_sub(ql.len());
        let light = if ql.is_empty() || self.left == 0 {
            if self.left == 0 {
                self.scratch.push(ql);
                self.scratch.push(wl);
                return None;
            }
            Some(Val::default())
        } else {
            let mut phi = |e: &mut Self, ts: &[f64], out: &mut Vec<Val>| -> Option<()> {
                e.phantom_children(k + 1, a1, n1, cm, drawn, ts, tau_child, out)
            };
            self.quad(&ql, &wl, 0.5 * tau * nk, &mut phi)
        };
        self.scratch.push(ql);
        self.scratch.push(wl);
        let light = light?;
        total += light.v;
        err += light.e;
        // Exclusion of the tokens drawn as masses: each has full weight m·d.
        if !drawn.phantom.is_empty() {
            let masses = drawn.phantom.clone();
            let mut out = Vec::with_capacity(masses.len());
            self.phantom_children(k + 1, a1, n1, cm, drawn, &masses, tau_child, &mut out)?;
            for (&m, f) in masses.iter().zip(&out) {
                total -= m * d * f.v;
                err += m * d * f.e;
            }
        }
        Some(Val { v: (total / nk).clamp(0.0, 1.0), e: err / nk })
    }

    /// Remaining mass after the drawn tokens, summed from what remains.
    fn remaining(&self, drawn: &Drawn) -> f64 {
        let ph: f64 = drawn.phantom.iter().sum();
        (self.t.rem.after(self.t.c, &drawn.real) - ph).max(0.0)
    }

    /// The children F_k(a, nk, cm − t, drawn ∪ {t}) for every mass t of `ts`, appended to `out`;
    /// at step n−1 evaluated together ([`Self::last_batch`]), as their states are close.
    #[allow(clippy::too_many_arguments)]
    fn phantom_children(
        &mut self,
        k: usize,
        a: f64,
        nk: f64,
        cm: f64,
        drawn: &mut Drawn,
        ts: &[f64],
        tau: f64,
        out: &mut Vec<Val>,
    ) -> Option<()> {
        if k + 1 == self.n && nk > 0.0 {
            self.left = self.left.checked_sub(ts.len())?;
            let start = out.len();
            out.resize(start + ts.len(), Val::default());
            let mut vals = vec![0.0; ts.len()];
            self.last_batch(a, nk, cm, ts, drawn, &mut vals);
            if self.exhausted {
                return None;
            }
            for (o, v) in out[start..].iter_mut().zip(vals) {
                o.v = v;
            }
            return Some(());
        }
        for &t in ts {
            drawn.phantom.push(t);
            let f = self.node(k, a, nk, cm - t, drawn, tau);
            drawn.phantom.pop();
            out.push(f?);
        }
        Some(())
    }

    /// One piece's approximation: exact when it holds few tokens (or one mass), else degree-8
    /// Chebyshev interpolation of Φ on [ql[i0], ql[i1−1]] with its error estimate.
    fn piece<F: FnMut(&mut Self, &[f64], &mut Vec<Val>) -> Option<()>>(
        &mut self,
        ql: &[f64],
        wl: &[f64],
        i0: usize,
        i1: usize,
        phi: &mut F,
        evals: &mut usize,
    ) -> Option<Piece> {
        let (lo, hi) = (ql[i0], ql[i1 - 1]);
        if i1 - i0 <= DEGREE + 1 || hi <= lo {
            // Distinct masses and their summed weights.
            let (mut ts, mut ws) = (Vec::with_capacity(i1 - i0), Vec::with_capacity(i1 - i0));
            let mut i = i0;
            while i < i1 {
                let mut w = 0.0;
                let mut j = i;
                while j < i1 && ql[j] == ql[i] {
                    w += wl[j];
                    j += 1;
                }
                ts.push(ql[i]);
                ws.push(w);
                i = j;
            }
            let mut vals = Vec::with_capacity(ts.len());
            phi(self, &ts, &mut vals)?;
            *evals += ts.len();
            let (mut total, mut err) = (0.0, 0.0);
            for (w, f) in ws.iter().zip(&vals) {
                total += w * f.v;
                err += w * f.e;
            }
            return Some(Piece { i0, i1, coef: None, exact: total, err, mu: 0.0 });
        }
        let m = DEGREE + 1;
        let cheb = chebyshev_table();
        let (mid, half) = (0.5 * (lo + hi), 0.5 * (hi - lo));
        let mut ts = [0.0f64; DEGREE + 1];
        for (k, t) in ts.iter_mut().enumerate() {
            *t = (mid + half * cheb[1][k]).clamp(lo, hi);
        }
        let mut vals = Vec::with_capacity(m);
        phi(self, &ts, &mut vals)?;
        *evals += m;
        let mut f = [0.0f64; DEGREE + 1];
        let mut node_err = 0.0f64;
        for (fk, v) in f.iter_mut().zip(&vals) {
            *fk = v.v;
            node_err = node_err.max(v.e);
        }
        let mut coef = [0.0f64; DEGREE + 1];
        for (j, cj) in coef.iter_mut().enumerate() {
            let mut s = 0.0;
            for (k, fk) in f.iter().enumerate() {
                s += fk * cheb[j][k];
            }
            *cj = 2.0 * s / m as f64;
        }
        coef[0] *= 0.5;
        let mu: f64 = wl[i0..i1].iter().sum();
        let est = 2.0 * (coef[DEGREE].abs() + coef[DEGREE - 1].abs()) + LEBESGUE * node_err;
        Some(Piece { i0, i1, coef: Some(coef), exact: 0.0, err: est * mu, mu })
    }

    /// ∫ Φ dμ over the small tokens `ql` (ascending q) with weights `wl`: globally adaptive,
    /// splitting the piece with the largest error estimate until the total is ≤ `target`.
    fn quad<F: FnMut(&mut Self, &[f64], &mut Vec<Val>) -> Option<()>>(
        &mut self,
        ql: &[f64],
        wl: &[f64],
        target: f64,
        phi: &mut F,
    ) -> Option<Val> {
        let mut evals = 0usize;
        let mut pieces = vec![self.piece(ql, wl, 0, ql.len(), phi, &mut evals)?];
        loop {
            let total_err: f64 = pieces.iter().map(|p| p.err).sum();
            if total_err <= target || evals >= NODE_EVALS {
                break;
            }
            // The worst piece that can still be split.
            let worst =
                pieces.iter().enumerate().filter(|(_, p)| p.coef.is_some()).max_by(|a, b| a.1.err.total_cmp(&b.1.err)).map(|(i, _)| i);
            let Some(w) = worst else { break };
            let p = pieces.swap_remove(w);
            let mid = 0.5 * (ql[p.i0] + ql[p.i1 - 1]);
            let s = p.i0 + ql[p.i0..p.i1].partition_point(|&x| x <= mid);
            pieces.push(self.piece(ql, wl, p.i0, s, phi, &mut evals)?);
            pieces.push(self.piece(ql, wl, s, p.i1, phi, &mut evals)?);
        }
        // Summing an interpolant over its piece's tokens costs its degree per token. Trailing
        // coefficients whose magnitudes sum (times μ, as |T_j| ≤ 1) to at most a 1/20 share of the
        // target are dropped and their bound added to the estimate: on the pieces of the
        // smallest masses, which hold most tokens, Φ is nearly linear and the sum costs one FMA
        // per token.
        let slack = TRUNCATION_SHARE * target / pieces.len() as f64;
        let (mut total, mut err) = (0.0, 0.0);
        for p in &pieces {
            err += p.err;
            match p.coef {
                None => total += p.exact,
                Some(coef) => {
                    let (lo, hi) = (ql[p.i0], ql[p.i1 - 1]);
                    let (mid, half) = (0.5 * (lo + hi), 0.5 * (hi - lo));
                    let mut deg = DEGREE;
                    let mut dropped = 0.0;
                    while deg > 0 && (dropped + coef[deg].abs()) * p.mu <= slack {
                        dropped += coef[deg].abs();
                        deg -= 1;
                    }
                    err += dropped * p.mu;
                    total += weighted_clenshaw(&coef[..=deg], &ql[p.i0..p.i1], &wl[p.i0..p.i1], mid, half);
                }
            }
        }
        Some(Val { v: total, e: err })
    }

    /// F_{n−1} at state (a_{n−1} = a, N(a_{n−1}) = nk, remaining cm): the sum over the last
    /// rejected draft in closed form (module docs).
    fn last_pair(&mut self, a: f64, nk: f64, cm: f64, drawn: &Drawn) -> f64 {
        let mut out = [0.0];
        self.last_batch_at(a, nk, &[cm], &[None], drawn, &mut out);
        out[0]
    }

    /// [`Self::last_pair`] for the children of one piece: member i has remaining mass cm − ts[i]
    /// and the extra drawn mass ts[i].
    fn last_batch(&mut self, a: f64, nk: f64, cm: f64, ts: &[f64], drawn: &Drawn, out: &mut [f64]) {
        let cms: Vec<f64> = ts.iter().map(|&t| cm - t).collect();
        let extra: Vec<Option<f64>> = ts.iter().map(|&t| Some(t)).collect();
        self.last_batch_at(a, nk, &cms, &extra, drawn, out);
    }

    /// The members share a and N(a) and differ in the remaining mass and one extra drawn mass:
    /// the searches of one member start from the previous member's positions (the states are
    /// close), and the tokens evaluated one by one are the same for all members.
    fn last_batch_at(&mut self, a: f64, nk: f64, cms: &[f64], extra: &[Option<f64>], drawn: &Drawn, out: &mut [f64]) {
        let c = self.t.c;
        let m = cms.len();
        self.work.last += m;
        let mut single = 0usize;
        // Per member: a1 = a_n, n1 = N(a_n), a0 = a_{n+1}(t = 0), N and slope at a0, θ.
        let mut st: Vec<Member> = Vec::with_capacity(m);
        let mut hint = c.r.partition_point(|&r| r <= a + nk / cms[0].max(f64::MIN_POSITIVE));
        let mut hint0 = hint;
        for &cm in cms {
            let cm = cm.max(f64::MIN_POSITIVE);
            let d = (nk / cm).min(f64::MAX);
            let a1 = (a + d).min(f64::MAX);
            let j1 = gallop(&c.r, a1, hint);
            hint = j1;
            let n1 = c.n_at(j1, a1);
            let a0 = (a1 + n1 / cm).min(f64::MAX);
            let j0 = gallop(&c.r, a0, hint0.max(j1));
            hint0 = j0;
            let na0 = c.n_at(j0, a0);
            let r_next = c.r.get(j0).copied().unwrap_or(f64::INFINITY);
            let theta = (cm - n1 / (r_next - a1)).min(cm / 8.0);
            let series_max = if self.anchor_bins { cm / 8.0 } else { theta };
            st.push(Member {
                cm,
                a1,
                d,
                n1,
                na0,
                slope: c.qs[j0],
                theta,
                series_max,
                total: 0.0,
                live: n1 > 0.0 && na0 > 0.0,
                hint: j0,
                anchor: None,
            });
        }
        let mut mom = [0.0f64; 20];
        let mut cand = std::mem::take(&mut self.cand);
        for bin in &self.t.bins {
            let order = bin.order;
            let stride = 2 * order;
            let i0 = bin.r.partition_point(|&r| r <= a);
            let mut i1 = i0;
            let mut heavy_a1 = f64::NEG_INFINITY; // members evaluating this bin token by token
            let mut anchored_a1 = f64::NEG_INFINITY; // members correcting an anchored series
            for s in st.iter_mut().filter(|s| s.live) {
                s.anchor = None;
                if bin.hi > s.series_max {
                    heavy_a1 = heavy_a1.max(s.a1);
                    continue;
                }
                i1 = gallop_lt(&bin.r, s.a1, i1);
                let (m0, m1) = (&bin.m[i0 * stride..(i0 + 1) * stride], &bin.m[i1 * stride..(i1 + 1) * stride]);
                for (j, o) in mom[..order].iter_mut().enumerate() {
                    *o = s.d * m0[j] + (s.a1 * (m1[j] - m0[j]) - (m1[order + j] - m0[order + j])).max(0.0);
                }
                // Σ w [N(a0) − slope·(a(t) − a0)], a(t) − a0 = (n1/cm) Σ_{j≥1} (t/cm)^j, with the
                // moments scaled by hi^j: Σ_j M̃_j (hi/cm)^j.
                let ratio = bin.hi / s.cm;
                let mut series = 0.0;
                let mut scale = ratio;
                for &mj in &mom[1..order] {
                    series += mj * scale;
                    scale *= ratio;
                }
                if bin.hi <= s.theta {
                    s.total += s.na0 * mom[0] - s.slope * (s.n1 / s.cm) * series;
                    continue;
                }
                // The bin's own anchor A = a_{n+1}(t_min) ≥ a0 (t_min its smallest mass): N is
                // linear from A up to the next ratio r⁺ > A, so Σ w N_lin(a(t)) over the bin is
                // N(A)·M̃_0 − S_A·Σ w (a(t) − A), with Σ w (a(t) − A) = (n1/cm)·series − (A − a0)·M̃_0
                // and A − a0 = n1·t_min/(cm (cm − t_min)); the tokens past r⁺ are corrected below.
                let t_min = bin.q_by_q[0];
                let at = (s.a1 + s.n1 / (s.cm - t_min)).min(f64::MAX);
                let ja = gallop(&c.r, at, s.hint);
                let anchor =
                    Anchor { at, n: c.n_at(ja, at), slope: c.qs[ja], r_next: c.r.get(ja).copied().unwrap_or(f64::INFINITY), j: ja };
                let shift = s.n1 * t_min / (s.cm * (s.cm - t_min));
                s.total += anchor.n * mom[0] - anchor.slope * ((s.n1 / s.cm) * series - shift * mom[0]);
                if anchor.r_next < f64::INFINITY {
                    anchored_a1 = anchored_a1.max(s.a1);
                    s.anchor = Some(anchor);
                }
                self.work.anchored += 1;
            }
            if heavy_a1 == f64::NEG_INFINITY && anchored_a1 == f64::NEG_INFINITY {
                continue;
            }
            // Token by token in q order: a_{n+1}(q) ascends, so each member's search gallops on.
            // The candidates (weight zone of some member) are gathered once per bin, then each
            // member runs over them with its state in registers.
            cand.clear();
            let zone = heavy_a1.max(anchored_a1);
            for ((&q, &r), &j) in bin.q_by_q.iter().zip(&bin.r_by_q).zip(&bin.pos_by_q) {
                if r < zone {
                    cand.push((q, r, j));
                }
            }
            for s in st.iter_mut() {
                let Some(an) = s.anchor else { continue };
                // The exact N minus its linear extension from A, for the tokens past r⁺ (largest
                // masses first; a(t) descends, so the scan stops at the first token below r⁺).
                // Drawn tokens are kept: the series summed them, the exclusion removes them.
                let (mut total, mut hint) = (s.total, an.j);
                for &(q, r, _) in cand.iter().rev() {
                    let at = (s.a1 + s.n1 / (s.cm - q)).min(f64::MAX);
                    if at <= an.r_next {
                        break;
                    }
                    let w = if r <= a { q * s.d } else { q * (s.a1 - r) };
                    if w <= 0.0 {
                        continue;
                    }
                    single += 1;
                    let jj = gallop(&c.r, at, hint);
                    hint = jj;
                    total += w * (c.n_at(jj, at) - (an.n - an.slope * (at - an.at)));
                }
                s.total = total;
            }
            if heavy_a1 == f64::NEG_INFINITY {
                continue;
            }
            for (mi, s) in st.iter_mut().enumerate() {
                if !s.live || bin.hi <= s.series_max {
                    continue;
                }
                let (mut total, mut hint) = (s.total, s.hint);
                for &(q, r, j) in &cand {
                    if drawn.real.contains(&(j as usize)) {
                        continue;
                    }
                    let w = if r <= a { q * s.d } else { q * (s.a1 - r) };
                    if w <= 0.0 {
                        continue;
                    }
                    let rest = if q <= s.cm / 2.0 {
                        s.cm - q
                    } else {
                        // Summed from what remains (q is most of the remaining mass).
                        let mut d = drawn.real.clone();
                        d.push(j as usize);
                        let ph: f64 = drawn.phantom.iter().sum::<f64>() + extra[mi].unwrap_or(0.0);
                        (self.t.rem.after(c, &d) - ph).max(0.0)
                    };
                    single += 1;
                    let at = (s.a1 + s.n1 / rest.max(f64::MIN_POSITIVE)).min(f64::MAX);
                    let jj = gallop(&c.r, at, hint);
                    hint = jj;
                    total += w * c.n_at(jj, at);
                }
                s.total = total;
                s.hint = hint;
            }
        }
        self.cand = cand;
        self.work.single += single;
        if crate::cancel::check(single + m).is_err() {
            self.exhausted = true; // Ctrl-C (the caller discards the result)
        }
        match self.left.checked_sub(single) {
            Some(l) => self.left = l,
            None => self.exhausted = true,
        }
        for (i, s) in st.iter_mut().enumerate() {
            if !s.live {
                out[i] = 0.0;
                continue;
            }
            let term = |rest: f64| -> f64 { c.big_n((s.a1 + s.n1 / rest.max(f64::MIN_POSITIVE)).min(f64::MAX)) };
            // Exclusion: drawn real tokens that were summed in a series bin, and every phantom
            // (the member's extra mass included).
            let full = s.d;
            let mut excl = 0.0;
            for &j in &drawn.real {
                let q = c.q[j];
                if bin_hi(bin_key(q)) <= s.series_max {
                    excl += q * full * term(s.cm - q);
                }
            }
            for &mph in drawn.phantom.iter().chain(extra[i].iter()) {
                excl += mph * full * term(s.cm - mph);
            }
            out[i] = ((s.total - excl) / nk / s.n1).clamp(0.0, 1.0);
        }
    }
}

/// Per-member state of [`Engine::last_batch_at`].
struct Member {
    cm: f64,
    a1: f64,
    /// a_n − a_{n−1} = N(a_{n−1})/c (kept, not recomputed as a1 − a).
    d: f64,
    n1: f64,
    na0: f64,
    slope: f64,
    theta: f64,
    /// Bins with hi ≤ this are summed by the series: cm/8 (ratio of the geometric series
    /// ≤ 1/8), or θ when bins are not anchored.
    series_max: f64,
    total: f64,
    live: bool,
    /// Position of the member's last search in the curve.
    hint: usize,
    /// The current bin's anchor, when it was summed from one above θ and has kinks to correct.
    anchor: Option<Anchor>,
}

/// Where a bin's series is anchored: a = a_{n+1}(t_min), N(a), the slope S = Σ_{r > a} q, the
/// next ratio r⁺ > a and the position of a in the curve.
#[derive(Clone, Copy)]
struct Anchor {
    at: f64,
    n: f64,
    slope: f64,
    r_next: f64,
    j: usize,
}

/// `r.partition_point(|v| v <= x)` by galloping from `hint` (exact for any hint ≤ len).
fn gallop(r: &[f64], x: f64, hint: usize) -> usize {
    gallop_by(r, hint, |v| v <= x)
}

/// `r.partition_point(|v| v < x)` by galloping from `hint`.
fn gallop_lt(r: &[f64], x: f64, hint: usize) -> usize {
    gallop_by(r, hint, |v| v < x)
}

fn gallop_by<F: Fn(f64) -> bool>(r: &[f64], hint: usize, pred: F) -> usize {
    let n = r.len();
    let h = hint.min(n);
    if h < n && pred(r[h]) {
        // Answer is above h.
        let mut step = 1usize;
        let mut lo = h + 1;
        loop {
            let probe = h + step;
            if probe >= n || !pred(r[probe]) {
                let hi = probe.min(n);
                return lo + r[lo..hi].partition_point(|&v| pred(v));
            }
            lo = probe + 1;
            step *= 2;
        }
    } else {
        // Answer is at or below h.
        let mut step = 1usize;
        let mut hi = h;
        loop {
            if step > hi {
                return r[..hi].partition_point(|&v| pred(v));
            }
            let probe = hi - step;
            if pred(r[probe]) {
                return probe + 1 + r[probe + 1..hi].partition_point(|&v| pred(v));
            }
            hi = probe;
            step *= 2;
        }
    }
}

/// cos(π j (k + ½) / (DEGREE + 1)) = T_j at the k-th Chebyshev node (row 1: the nodes), computed once.
fn chebyshev_table() -> &'static [[f64; DEGREE + 1]; DEGREE + 1] {
    static TABLE: std::sync::OnceLock<[[f64; DEGREE + 1]; DEGREE + 1]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let m = (DEGREE + 1) as f64;
        let mut t = [[0.0; DEGREE + 1]; DEGREE + 1];
        for (j, row) in t.iter_mut().enumerate() {
            for (k, v) in row.iter_mut().enumerate() {
                *v = (std::f64::consts::PI * j as f64 * (k as f64 + 0.5) / m).cos();
            }
        }
        t
    })
}

/// Tokens per group of [`weighted_clenshaw`] (independent recurrences the CPU overlaps).
const CLENSHAW_LANES: usize = 8;

/// Σ_i w[i] · Σ_j coef[j] T_j((t[i] − mid)/half): the interpolant summed over a piece's tokens.
/// One token's Clenshaw recurrence is a chain of dependent multiply-adds; groups of
/// [`CLENSHAW_LANES`] tokens run their chains side by side (and vectorise).
fn weighted_clenshaw(coef: &[f64], t: &[f64], w: &[f64], mid: f64, half: f64) -> f64 {
    const L: usize = CLENSHAW_LANES;
    let groups = t.len() / L;
    let mut acc = [0.0f64; L];
    for g in 0..groups {
        let (tg, wg) = (&t[g * L..(g + 1) * L], &w[g * L..(g + 1) * L]);
        let mut x = [0.0f64; L];
        for l in 0..L {
            x[l] = (tg[l] - mid) / half;
        }
        let (mut b1, mut b2) = ([0.0f64; L], [0.0f64; L]);
        for &cj in coef.iter().skip(1).rev() {
            for l in 0..L {
                let b0 = 2.0 * x[l] * b1[l] - b2[l] + cj;
                b2[l] = b1[l];
                b1[l] = b0;
            }
        }
        for l in 0..L {
            acc[l] += wg[l] * (x[l] * b1[l] - b2[l] + coef[0]);
        }
    }
    let mut total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (&ti, &wi) in t[groups * L..].iter().zip(&w[groups * L..]) {
        total += wi * clenshaw(coef, (ti - mid) / half);
    }
    total
}

/// Σ_j coef[j] T_j(x) by Clenshaw's recurrence.
fn clenshaw(coef: &[f64], x: f64) -> f64 {
    let (mut b1, mut b2) = (0.0f64, 0.0f64);
    for &cj in coef.iter().skip(1).rev() {
        let b0 = 2.0 * x * b1 - b2 + cj;
        b2 = b1;
        b1 = b0;
    }
    x * b1 - b2 + coef[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounds::brute;
    use crate::Rng;
    use proptest::prelude::{prop_assert, prop_assume, prop_oneof, proptest, Just, ProptestConfig, Strategy};

    /// The definition, on its own: every ordered tuple of distinct drafts with its successive-
    /// sampling probability (each conditional normalised by the sum of what remains), and RRS with
    /// the residual p_{k+1} = norm((p_k − q_k)_+). Returns Pr[some draft accepted].
    fn definition(p: &[f64], q: &[f64], n: usize) -> f64 {
        fn rec(pk: &[f64], q: &[f64], drawn: &mut Vec<usize>, n: usize, prob: f64) -> f64 {
            let rest: f64 = (0..q.len()).filter(|i| !drawn.contains(i)).map(|i| q[i]).sum();
            let qk: Vec<f64> = (0..q.len()).map(|i| if drawn.contains(&i) { 0.0 } else { q[i] / rest }).collect();
            let res: Vec<f64> = pk.iter().zip(&qk).map(|(a, b)| (a - b).max(0.0)).collect();
            let z: f64 = res.iter().sum();
            let mut acc = 0.0;
            for x in 0..q.len() {
                if qk[x] <= 0.0 {
                    continue;
                }
                let a = (pk[x] / qk[x]).min(1.0);
                acc += prob * qk[x] * a;
                if drawn.len() + 1 < n && a < 1.0 && z > 0.0 {
                    let next: Vec<f64> = res.iter().map(|r| r / z).collect();
                    drawn.push(x);
                    acc += rec(&next, q, drawn, n, prob * qk[x] * (1.0 - a));
                    drawn.pop();
                }
            }
            acc
        }
        rec(&brute::normalise(p), &brute::normalise(q), &mut Vec::new(), n, 1.0)
    }

    fn curve(p: &[f64], q: &[f64]) -> Curve {
        Curve::new(&brute::normalise(p), &brute::normalise(q))
    }

    #[test]
    fn confident_rows_are_exact() {
        // Issue 9: p = (.5, .5), q = (1, 1e-15), n = 2: both tokens are drafted, so acceptance is 1.
        let c = curve(&[0.5, 0.5], &[1.0, 1e-15]);
        assert_eq!(enumerate_rejection(&c, 2, 100).unwrap(), 0.0);
        assert!(rejection(&c, 2, TOLERANCE, EXACT_NODES).unwrap().0 < 1e-15);
        let (m, _) = sampled_rejection(&c, 2, 100, &mut Rng::new(1));
        assert!(m < 1e-15);
        for tail in [1e-15, 1e-40, 1e-100, 1e-300] {
            let q = [1.0, tail, tail, 2.0 * tail];
            let p = [0.25, 0.25, 0.25, 0.25];
            let c = Curve::new(&p, &q);
            let want = definition(&p, &q, 3);
            let got = 1.0 - rejection(&c, 3, TOLERANCE, EXACT_NODES).unwrap().0;
            let en = 1.0 - enumerate_rejection(&c, 3, 1000).unwrap();
            assert!((got - want).abs() < 1e-12 && (en - want).abs() < 1e-12, "tail {tail}: {got} {en} vs {want}");
        }
    }

    /// Peaked Zipf-like pair (deterministic from the seed).
    pub(crate) fn peaked(v: usize, seed: u64, temp: f64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let logits: Vec<f64> = (0..v).map(|i| -1.1 * ((i + 1) as f64).ln() + 0.7 * rng.gumbel()).collect();
        let p: Vec<f64> = logits.iter().map(|l| (l / temp).exp()).collect();
        let q: Vec<f64> = logits.iter().map(|l| ((l + 0.6 * rng.gumbel()) / temp).exp()).collect();
        (brute::normalise(&p), brute::normalise(&q))
    }

    /// Rows with confident tops (tail masses 1e-15 .. 1e-300), exact zeros, ties and float32
    /// rounding, V ≤ 7.
    fn row(v: usize) -> impl Strategy<Value = Vec<f64>> {
        let plain = proptest::collection::vec(prop_oneof![2 => Just(0.0f64), 5 => 0.05f64..1.0, 1 => Just(0.25)], v);
        let confident =
            (proptest::collection::vec(0.0f64..1.0, v), 0usize..v, prop_oneof![Just(1e-15), Just(1e-40), Just(1e-100), Just(1e-300)])
                .prop_map(|(w, top, tail)| w.iter().enumerate().map(|(i, &x)| if i == top { 1.0 } else { tail * (0.5 + x) }).collect());
        let f32ish = proptest::collection::vec(0.0f64..10.0, v).prop_map(|w| {
            let m = w.iter().cloned().fold(0.0, f64::max);
            w.iter().map(|&x| ((4.0 * (x - m)).exp() as f32) as f64).collect()
        });
        prop_oneof![3 => plain, 2 => confident, 1 => f32ish]
            .prop_filter("needs mass", |w: &Vec<f64>| w.iter().any(|&x| x > 0.0))
            .prop_map(|w| brute::normalise(&w))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, rng_seed: proptest::test_runner::RngSeed::Fixed(13), ..ProptestConfig::default() })]

        /// The deterministic method and the enumeration agree with the definition (the verifier
        /// simulated on every draft tuple with renormalised conditionals).
        #[test]
        fn matches_the_definition((p, q) in (2usize..=7).prop_flat_map(|v| (row(v), row(v))), n in 1usize..=5) {
            let support = q.iter().filter(|&&x| x > 0.0).count();
            prop_assume!(n <= support);
            let want = definition(&p, &q, n);
            let c = Curve::new(&p, &q);
            let (rej, est) = rejection(&c, n, TOLERANCE, EXACT_NODES).unwrap();
            prop_assert!(((1.0 - rej) - want).abs() <= 1e-9, "fast {} vs {want} (est {est:e}) p={p:?} q={q:?}", 1.0 - rej);
            let en = 1.0 - enumerate_rejection(&c, n, EXACT_NODES).unwrap();
            prop_assert!((en - want).abs() <= 1e-9, "enumeration {en} vs {want}");
        }
    }

    /// Vocabularies where the series bins and the quadrature do the work, against the
    /// enumeration of every rejected-draft sequence.
    #[test]
    fn series_and_quadrature_match_the_enumeration() {
        let mut cases: Vec<(Vec<f64>, Vec<f64>, usize)> = Vec::new();
        for (v, n, seed) in [(120usize, 3usize, 1u64), (400, 3, 2), (60, 4, 3), (30, 5, 4)] {
            let (p, q) = peaked(v, seed, 1.0);
            cases.push((p, q, n));
            let (p, q) = peaked(v, seed + 10, 0.7);
            cases.push((p, q, n));
        }
        // Flat rows and rows with a block of equal ratios (a large kink of N).
        let mut rng = Rng::new(5);
        let flat = |rng: &mut Rng, v: usize| brute::normalise(&(0..v).map(|_| rng.uniform() + 0.01).collect::<Vec<_>>());
        let (p, q) = (flat(&mut rng, 300), flat(&mut rng, 300));
        cases.push((p, q, 3));
        let p = flat(&mut rng, 200);
        let mut q = p.clone();
        for x in q.iter_mut().take(100) {
            *x *= 1.0 + rng.uniform();
        }
        cases.push((p, brute::normalise(&q), 3));
        // A confident draft: the top token holds 0.9 of q.
        let p = flat(&mut rng, 50);
        let mut q = flat(&mut rng, 50);
        q.iter_mut().for_each(|x| *x *= 0.1);
        q[7] += 0.9;
        cases.push((p, q, 4));
        let mut anchored = 0;
        for (i, (p, q, n)) in cases.iter().enumerate() {
            let c = Curve::new(p, q);
            let want = enumerate_rejection(&c, *n, usize::MAX).unwrap();
            let (got, est, work) = rejection_work(&c, *n, TOLERANCE, EXACT_NODES).unwrap();
            anchored += work.anchored;
            assert!((got - want).abs() <= 1e-9, "case {i} (V = {}, n = {n}): {got} vs {want}, est {est:e}", p.len());
            assert!(est <= 1e-8, "case {i}: error estimate {est:e}");
            // The approximations were used: not every token was evaluated one by one.
            assert!(work.single < p.len() * work.last.max(1), "case {i}: {work:?}");
        }
        assert!(anchored > 0, "no bin was summed from its own anchor");
    }

    /// A row of `v` tokens of one of the hard shapes (deterministic from the rng): dense, confident
    /// (top token with the rest at 1e-15 .. 1e-300), top-k (exact zeros), float32-rounded softmax,
    /// a few heavy tokens over a negligible tail, or one dominant token, two mid ones (≤ 1/32: the
    /// quadrature's range) and a negligible tail (what remains after drawing them is tiny: the
    /// remaining mass must be summed, not obtained by cancellation).
    fn hard_row(rng: &mut Rng, v: usize, shape: usize) -> Vec<f64> {
        let w: Vec<f64> = match shape {
            0 => (0..v).map(|_| rng.uniform() + 1e-3).collect(),
            1 => {
                let tail = [1e-15, 1e-40, 1e-100, 1e-300][(rng.uniform() * 4.0) as usize % 4];
                let top = (rng.uniform() * v as f64) as usize % v;
                (0..v).map(|i| if i == top { 1.0 } else { tail * (0.5 + rng.uniform()) }).collect()
            }
            2 => (0..v).map(|i| if i % 3 == 0 { rng.uniform() + 0.01 } else { 0.0 }).collect(),
            3 => (0..v).map(|_| ((-8.0 * rng.uniform()).exp() as f32) as f64).collect(),
            4 => (0..v).map(|i| if i < 3 { 0.2 + rng.uniform() } else { 1e-14 * rng.uniform() }).collect(),
            _ => (0..v).map(|i| [0.97, 0.02, 0.01].get(i).copied().unwrap_or(1e-15 * (0.5 + rng.uniform()))).collect(),
        };
        brute::normalise(&w)
    }

    /// The deterministic method against the enumeration (and the definition where it is cheap) on
    /// vocabularies large enough for the quadrature, the phantoms and the series bins, with every
    /// pairing of the hard row shapes (both rows shuffled independently).
    #[test]
    fn hard_rows_match_the_enumeration() {
        let mut rng = Rng::new(77);
        let mut tried = 0;
        for case in 0..216usize {
            let v = [12usize, 24, 48, 90][case % 4];
            let n = 2 + (case / 4) % 3;
            let (sp, sq) = ((case / 12) % 6, (case / 72 + case) % 6);
            let p = hard_row(&mut rng, v, sp);
            let mut q = hard_row(&mut rng, v, sq);
            q.rotate_left(case % v);
            if q.iter().filter(|&&x| x > 0.0).count() < n {
                continue;
            }
            let c = Curve::new(&p, &q);
            let want = enumerate_rejection(&c, n, usize::MAX).unwrap();
            let (got, est) = rejection(&c, n, TOLERANCE, EXACT_NODES).unwrap();
            assert!((got - want).abs() <= 1e-9, "case {case} (V = {v}, n = {n}, shapes {sp}/{sq}): {got} vs {want}, est {est:e}");
            if v <= 12 {
                let def = 1.0 - definition(&p, &q, n);
                assert!((want - def).abs() <= 1e-9, "case {case}: enumeration {want} vs definition {def}");
            }
            tried += 1;
        }
        assert!(tried >= 180, "only {tried} cases had n ≤ support");
    }

    /// Case `case` of 72 pairings of the hard row shapes at V = 12, 90, 400 (q shifted).
    fn hard_pair(rng: &mut Rng, case: usize) -> (Vec<f64>, Vec<f64>) {
        let v = [12usize, 90, 400][case % 3];
        let p = hard_row(rng, v, case % 6);
        let mut q = hard_row(rng, v, (case / 6) % 6);
        q.rotate_left(case % v);
        (p, q)
    }

    /// The O(log V) descent of `pick` picks what the descent by gap sums (`weight_sum` at every
    /// level) picks, on the hard row shapes with drafts already removed.
    #[test]
    fn pick_descends_like_the_gap_sums() {
        let reference = |c: &Curve, st: &Step, removed: &[usize], mut target: f64| {
            let (mut lo, mut hi) = (0usize, c.qt.size);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                let left = c.weight_sum(lo, mid, st, removed);
                if target < left {
                    hi = mid;
                } else {
                    target -= left;
                    lo = mid;
                }
            }
            let valid = |i: usize| c.weight(i, st) > 0.0 && removed.binary_search(&i).is_err();
            let j = lo.min(st.jb.saturating_sub(1));
            if valid(j) {
                j
            } else {
                (j..st.jb).chain((0..j).rev()).find(|&i| valid(i)).unwrap_or(j)
            }
        };
        let mut rng = Rng::new(17);
        let mut picks = 0;
        for case in 0..72usize {
            let (p, q) = hard_pair(&mut rng, case);
            let c = Curve::new(&p, &q);
            let (mut a, mut nk, mut removed) = (0.0f64, c.ps[0], Vec::<usize>::new());
            for _ in 0..4 {
                let (st, n1) = c.step(a, nk, c.rest(&removed));
                let total = c.weight_sum(0, st.jb, &st, &removed);
                if !(total > 0.0 && n1 > 0.0) {
                    break;
                }
                let mut j = 0;
                for _ in 0..25 {
                    let target = rng.uniform() * total;
                    j = c.pick(&st, &removed, target);
                    assert_eq!(j, reference(&c, &st, &removed, target), "case {case}, removed {removed:?}");
                    picks += 1;
                }
                let Err(at) = removed.binary_search(&j) else { break };
                removed.insert(at, j);
                (a, nk) = (st.a1, n1);
            }
        }
        assert!(picks >= 3000, "only {picks} picks");
    }

    /// One row's tables serve every n: the shared call gives the single-n call's value and error
    /// estimate (1e-12; the tables are the same ones, so in fact bit for bit).
    #[test]
    fn prepared_tables_serve_every_n() {
        for (v, temp, seed) in [(300usize, 1.0, 31u64), (2000, 0.7, 32), (2000, 1.0, 33)] {
            let (p, q) = peaked(v, seed, temp);
            let c = Curve::new(&p, &q);
            let prepared = Prepared::new(&c, DETERMINISTIC_MAX_N);
            for n in 2..=DETERMINISTIC_MAX_N {
                let (one, one_err) = rejection(&c, n, TOLERANCE, EXACT_NODES).unwrap();
                let (shared, shared_err) = prepared.rejection(n, TOLERANCE, EXACT_NODES).unwrap();
                assert!((one - shared).abs() <= 1e-12 && (one_err - shared_err).abs() <= 1e-12, "V={v} n={n}: {one} vs {shared}");
            }
            assert!(prepared.rejection(DETERMINISTIC_MAX_N + 1, TOLERANCE, EXACT_NODES).is_none());
        }
    }

    /// Bins summed from their own anchors give what evaluating their tokens one by one gives
    /// (1e-12), on the 72 pairings of the hard row shapes (confident, top-k zeros, float32, ...)
    /// and on dense peaked rows up to V = 32,000, for n = 2, 3, 4; and they save one-by-one work.
    #[test]
    fn anchored_bins_match_token_by_token() {
        let mut rng = Rng::new(23);
        let mut pairs: Vec<(Vec<f64>, Vec<f64>)> = (0..72).map(|case| hard_pair(&mut rng, case)).collect();
        pairs.extend([peaked(2000, 41, 1.0), peaked(4000, 42, 0.7), peaked(32_000, 43, 1.0)]);
        let (mut anchored, mut saved, mut compared) = (0, 0usize, 0);
        for (i, (p, q)) in pairs.iter().enumerate() {
            let c = Curve::new(p, q);
            let prepared = Prepared::new(&c, DETERMINISTIC_MAX_N);
            for n in 2..=DETERMINISTIC_MAX_N {
                if q.iter().filter(|&&x| x > 0.0).count() < n {
                    continue;
                }
                let (on, on_err, work_on) = prepared.rejection_with(n, TOLERANCE, EXACT_NODES, true).unwrap();
                let (off, off_err, work_off) = prepared.rejection_with(n, TOLERANCE, EXACT_NODES, false).unwrap();
                assert!((on - off).abs() <= 1e-12, "pair {i} (V = {}), n = {n}: {on} vs {off}", p.len());
                assert!((on_err - off_err).abs() <= 1e-12, "pair {i}, n = {n}: error estimates {on_err:e} vs {off_err:e}");
                assert_eq!(work_off.anchored, 0);
                anchored += work_on.anchored;
                saved += work_off.single.saturating_sub(work_on.single);
                compared += 1;
            }
        }
        assert!(compared >= 150 && anchored > 0 && saved > 0, "{compared} compared, {anchored} anchored, {saved} saved");
    }

    /// The curve's order is the prefix scan's sort (bit for bit), except on rows it had to scale.
    #[test]
    fn scan_order_is_the_prefix_scan_sort() {
        let mut rng = Rng::new(91);
        let mut read_off = 0;
        for case in 0..72usize {
            let (p, q) = hard_pair(&mut rng, case);
            let c = Curve::new(&p, &q);
            let want = prep::sorted(&p, &q, 1.0, 1.0);
            let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            match c.scan_order() {
                Some(got) => {
                    assert_eq!((bits(&got.p), bits(&got.q)), (bits(&want.p), bits(&want.q)), "case {case}");
                    assert_eq!(got.p_total.to_bits(), want.p_total.to_bits(), "case {case}");
                    read_off += 1;
                }
                None => assert!(q.iter().any(|&x| x > 0.0 && x < 1e-150), "case {case}: not read off a plain row"),
            }
        }
        assert!(read_off >= 36, "only {read_off} rows read off");
    }

    /// Large vocabularies: within 4 standard errors of the Monte-Carlo estimate (5 seeds).
    #[test]
    fn large_vocabularies_agree_with_monte_carlo() {
        for (v, n, temp) in [(4000usize, 2usize, 1.0), (4000, 3, 0.7), (4000, 4, 1.0), (32_000, 3, 1.0)] {
            let (p, q) = peaked(v, 21 + n as u64, temp);
            let c = Curve::new(&p, &q);
            let (rej, _) = rejection(&c, n, TOLERANCE, EXACT_NODES).unwrap();
            for seed in 0..5 {
                let (m, se) = sampled_rejection(&c, n, 4000, &mut Rng::new(seed));
                assert!((rej - m).abs() <= 4.0 * se, "V={v} n={n} seed {seed}: {rej} vs MC {m} ± {se}");
            }
        }
    }

    /// Above the work budget the method gives up (the caller falls back to Monte Carlo).
    #[test]
    fn gives_up_beyond_the_budget() {
        let (p, q) = peaked(2000, 3, 1.0);
        let c = Curve::new(&p, &q);
        assert!(rejection(&c, 4, TOLERANCE, 1000).is_none());
        assert!(rejection(&c, 4, TOLERANCE, EXACT_NODES).is_some());
    }

    /// The interpolant summed over a piece in lane groups equals the token-by-token Clenshaw sum
    /// (to rounding), for every degree the truncation leaves and lengths around the group size.
    #[test]
    fn lane_clenshaw_sums_like_the_scalar_recurrence() {
        let mut rng = Rng::new(5);
        for len in [2usize, 3, 7, 8, 9, 16, 31, 100] {
            for deg in 0..=DEGREE {
                let coef: Vec<f64> = (0..=deg).map(|_| rng.uniform() - 0.5).collect();
                let mut t: Vec<f64> = (0..len).map(|_| 1e-6 * (1.0 + 1e3 * rng.uniform())).collect();
                t.sort_by(f64::total_cmp);
                let w: Vec<f64> = (0..len).map(|_| rng.uniform()).collect();
                let (mid, half) = (0.5 * (t[0] + t[len - 1]), 0.5 * (t[len - 1] - t[0]));
                let want: f64 = t.iter().zip(&w).map(|(&ti, &wi)| wi * clenshaw(&coef, (ti - mid) / half)).sum();
                let got = weighted_clenshaw(&coef, &t, &w, mid, half);
                let scale: f64 = w.iter().sum::<f64>() * coef.iter().map(|c| c.abs()).sum::<f64>();
                assert!((got - want).abs() <= 1e-13 * scale, "len {len} deg {deg}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn quarter_bins_bracket() {
        for &q in &[1.0, 0.75, 0.5, 0.6, 0.59460355750136, 0.8408964152537145, 3e-5, 1e-140, 0.999_999, 1.189_207_115_002_721] {
            let key = bin_key(q);
            let lo = bin_hi(key - 1);
            assert!(lo <= q * (1.0 + 1e-15) && q < bin_hi(key), "{q}: key {key}, [{lo}, {})", bin_hi(key));
        }
    }

    #[test]
    fn exponent_brackets() {
        for &q in &[1.0, 0.75, 0.5, 3e-5, 1e-300, 4e-320, 0.999_999] {
            let e = exponent(q);
            assert!(2f64.powi(e) <= q * (1.0 + 1e-15) && q < 2f64.powi(e + 1), "{q} {e}");
        }
    }
}
