//! Acceptance of recursive rejection sampling without replacement (RSD, Jeon et al. 2024;
//! docs/theory.md §4.3) with successive-sampling drafts.
//!
//! Structure used (derived here; checked against brute-force enumeration in the tests): with
//! N(a) = Σ_y (p(y) − a·q(y))_+ and c_k = 1/(1 − q(removed before step k)), the residual target at
//! step k is p_k = (p − a_k q)_+ / N(a_k) with a_1 = 0 and a_{k+1} = a_k + N(a_k)·c_k, because every
//! rejected token already has p − a_k q ≤ 0. Hence 1 − α_k = N(a_{k+1}) / N(a_k), the rejection
//! probabilities telescope, and given the rejected drafts Pr[no acceptance] = N(a_{n+1}). The k-th
//! rejected draft y (not yet drawn) has weight (a_{k+1} q(y) − max(p(y), a_k q(y)))_+ / N(a_k).
//! Everything is a function of the tokens sorted by p/q and their prefix sums, so one step costs
//! O(log V):
//!
//! * exact: the expectation over the sequences of rejected drafts, enumerated (n = 2 is O(V log V));
//!   used when the enumeration has at most [`EXACT_NODES`] nodes;
//! * otherwise a Monte-Carlo estimate: sample the rejected drafts from their law, average
//!   N(a_{n+1}) (Rao–Blackwellised: no accept/reject coin is drawn), report its standard error.

use crate::Rng;

/// Largest enumeration (number of visited rejected-draft sequences) done exactly.
pub const EXACT_NODES: usize = 2_000_000;

/// Tokens with p > 0 or q > 0 sorted by p/q ascending (q = 0 last), with prefix and suffix sums.
pub struct Curve {
    r: Vec<f64>,
    p: Vec<f64>,
    q: Vec<f64>,
    pc: Vec<f64>,
    qc: Vec<f64>,
    ps: Vec<f64>,
    qs: Vec<f64>,
}

impl Curve {
    pub fn new(p: &[f64], q: &[f64]) -> Self {
        let mut idx: Vec<(u64, usize)> = (0..p.len())
            .filter(|&i| p[i] > 0.0 || q[i] > 0.0)
            .map(|i| ((if q[i] > 0.0 { p[i] / q[i] } else { f64::INFINITY }).to_bits(), i))
            .collect();
        idx.sort_unstable();
        let m = idx.len();
        let mut c = Curve {
            r: idx.iter().map(|&(b, _)| f64::from_bits(b)).collect(),
            p: idx.iter().map(|&(_, i)| p[i]).collect(),
            q: idx.iter().map(|&(_, i)| q[i]).collect(),
            pc: vec![0.0; m + 1],
            qc: vec![0.0; m + 1],
            ps: vec![0.0; m + 1],
            qs: vec![0.0; m + 1],
        };
        for j in 0..m {
            c.pc[j + 1] = c.pc[j] + c.p[j];
            c.qc[j + 1] = c.qc[j] + c.q[j];
        }
        for j in (0..m).rev() {
            c.ps[j] = c.ps[j + 1] + c.p[j];
            c.qs[j] = c.qs[j + 1] + c.q[j];
        }
        c
    }

    /// N(a) = Σ (p − a q)_+.
    pub fn big_n(&self, a: f64) -> f64 {
        let j = self.r.partition_point(|&r| r <= a);
        (self.ps[j] - a * self.qs[j]).max(0.0)
    }

    /// β(ρ) = Σ min(p/ρ, q) (K-SEQ): p/ρ on the tokens with p/q ≤ ρ, q on the others.
    pub fn beta(&self, rho: f64) -> f64 {
        let j = self.r.partition_point(|&r| r <= rho);
        self.pc[j] / rho + self.qs[j]
    }

    /// Weight of sorted position j as the rejected draft of a step with thresholds a → a1.
    fn weight(&self, j: usize, a: f64, a1: f64) -> f64 {
        (a1 * self.q[j] - self.p[j].max(a * self.q[j])).max(0.0)
    }

    /// Σ_{i<j} weight(i), for j ≤ #{r < a1}.
    fn cum(&self, j: usize, ja: usize, a: f64, a1: f64) -> f64 {
        if j <= ja {
            (a1 - a) * self.qc[j]
        } else {
            (a1 - a) * self.qc[ja] + a1 * (self.qc[j] - self.qc[ja]) - (self.pc[j] - self.pc[ja])
        }
    }
}

/// One step's thresholds: (a_{k+1}, N(a_{k+1})) from (a_k, N(a_k)) and the removed q-mass.
#[inline]
fn next(c: &Curve, a: f64, nk: f64, removed_mass: f64) -> (f64, f64) {
    let a1 = a + nk / (1.0 - removed_mass).max(f64::MIN_POSITIVE);
    (a1, c.big_n(a1))
}

/// Exact Pr[no acceptance], or None when the enumeration would exceed `budget` nodes.
pub fn exact_rejection(c: &Curve, n: usize, budget: usize) -> Option<f64> {
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
    rec(c, n, 1, 0.0, 1.0, 0.0, &mut removed, &mut left)
}

#[allow(clippy::too_many_arguments)]
fn rec(c: &Curve, n: usize, k: usize, a: f64, nk: f64, mass: f64, removed: &mut Vec<usize>, left: &mut usize) -> Option<f64> {
    let (a1, n1) = next(c, a, nk, mass);
    if k == n || n1 <= 0.0 {
        return Some(n1 / nk); // 1 − α_k: the last step, or acceptance is certain
    }
    let jb = c.r.partition_point(|&r| r < a1);
    let mut sum = 0.0f64;
    for j in 0..jb {
        if removed.contains(&j) {
            continue;
        }
        let u = c.weight(j, a, a1);
        if u <= 0.0 {
            continue;
        }
        *left = left.checked_sub(1)?;
        removed.push(j);
        let sub = rec(c, n, k + 1, a1, n1, mass + c.q[j], removed, left);
        removed.pop();
        sum += u / nk * sub?;
    }
    Some(sum)
}

/// Monte-Carlo estimate of Pr[no acceptance]: (mean, standard error of the mean).
pub fn sampled_rejection(c: &Curve, n: usize, samples: usize, rng: &mut Rng) -> (f64, f64) {
    let samples = samples.max(2);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut removed: Vec<(usize, f64)> = Vec::with_capacity(n); // (sorted position, weight), sorted
    for _ in 0..samples {
        removed.clear();
        let (mut a, mut nk, mut mass) = (0.0f64, 1.0f64, 0.0f64);
        let mut est = 0.0f64;
        for k in 1..=n {
            let (a1, n1) = next(c, a, nk, mass);
            if k == n || n1 <= 0.0 {
                est = n1;
                break;
            }
            let ja = c.r.partition_point(|&r| r <= a);
            let jb = c.r.partition_point(|&r| r < a1);
            for rm in removed.iter_mut() {
                rm.1 = c.weight(rm.0, a, a1);
            }
            let total = c.cum(jb, ja, a, a1) - removed.iter().map(|r| r.1).sum::<f64>();
            // Shift the target past the removed tokens' intervals (ascending positions).
            let mut target = rng.uniform() * total;
            for &(pos, w) in removed.iter() {
                if c.cum(pos, ja, a, a1) <= target {
                    target += w;
                }
            }
            let (mut lo, mut hi) = (0usize, jb);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if c.cum(mid + 1, ja, a, a1) <= target {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let mut j = lo;
            // Rounding can land on a zero-weight or removed position: take the nearest valid one.
            j = j.min(jb.saturating_sub(1));
            let valid = |i: usize| c.weight(i, a, a1) > 0.0 && !removed.iter().any(|r| r.0 == i);
            if !valid(j) {
                j = (j..jb).chain((0..j).rev()).find(|&i| valid(i)).unwrap_or(j);
            }
            let pos = removed.partition_point(|r| r.0 < j);
            removed.insert(pos, (j, 0.0));
            mass += c.q[j];
            a = a1;
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
