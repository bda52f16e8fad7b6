//! K-SEQ (SpecTr, Sun et al., NeurIPS 2023; docs/theory.md §4.4) for n i.i.d. drafts.
//!
//! With β(ρ) = Σ min(p/ρ, q) and p_acc(ρ) = 1 − (1 − β(ρ))ⁿ, each draft is accepted in turn with
//! probability min(1, p(x)/(ρ q(x))); if all are rejected the output is drawn from
//! norm((p − γ·min(p/ρ, q))₊) with γ = p_acc/β. The accepted part of the output law is then
//! γ·min(p/ρ, q), which is ≤ p exactly when γ ≤ ρ, i.e. when f(ρ) = p_acc(ρ) − ρβ(ρ) ≤ 0. So
//! **any** ρ with f(ρ) ≤ 0 gives a lossless verifier; SpecTr takes the root ρ* ∈ [1, n] (f is
//! decreasing, f(1) ≥ 0 ≥ f(n)). We bisect and keep the upper end, where f ≤ 0 holds by
//! construction, so exactness never depends on how far the bisection got.
//!
//! Root finding without repeated passes over V: one pass builds a histogram of the ratios p/q
//! over [1, n] (B equal buckets, with the mass Σp of the tokens below 1 and Σq of those above n).
//! Between bucket edges every token is on a fixed side of min(p/ρ, q), so f is known exactly at
//! every edge from prefix and suffix sums; the bucket holding the root is found in O(B), its few tokens are
//! collected in a second pass, and the bisection runs on them alone (tokens leaving the shrinking
//! bracket fold into two constants). Then one pass for the residual mass and one pick.
//!
//! [`bisect`] is the one K-SEQ root rule (sign of f from [`f`], upper end kept), whatever
//! evaluates the masses: [`solve`] (the verifier; `bounds::kseq_rho` reports its ρ and
//! `bounds::verifier_acceptance` the acceptance 1 − (1 − β(ρ))ⁿ there) and [`root`] over any
//! [`KseqMasses`] (the acceptance study's O(log V) curve, `bounds::study`).

use super::source::Source;
use super::{ratio, Ctx, Outcome};
use crate::Real;

const BUCKETS: usize = 256;

/// β(ρ) = Σ min(p/ρ, q) and the two masses f needs without cancellation (with Σp = Σq = 1):
/// 1 − β = Σ (q − p/ρ)₊ and 1 − ρβ = Σ (p − ρq)₊, each summed over the tokens where it is positive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Masses {
    pub(crate) beta: f64,
    /// 1 − β(ρ).
    pub(crate) omb: f64,
    /// 1 − ρβ(ρ).
    pub(crate) over: f64,
}

/// Whatever evaluates [`Masses`] at a ratio ρ for the bisection. `narrow` tells it the bracket
/// shrank to [lo, hi], so it may fold the tokens that left it into constants.
pub(crate) trait KseqMasses {
    fn at(&mut self, rho: f64) -> Masses;
    fn narrow(&mut self, _lo: f64, _hi: f64) {}
}

/// The masses at ρ given the tokens split by their ratio p/q: Σp and Σq of those with p/q ≤ ρ
/// (`below`: min = p/ρ) and of those with p/q ≥ ρ (`above`: min = q).
#[inline]
fn masses(rho: f64, below: (f64, f64), above: (f64, f64)) -> Masses {
    let inv = 1.0 / rho;
    Masses { beta: below.0 * inv + above.1, omb: (below.1 - below.0 * inv).max(0.0), over: (above.0 - rho * above.1).max(0.0) }
}

/// The tokens of the bracket [lo, hi]: Σp, Σq of those with p/q ≤ lo (`a`) and ≥ hi (`b`), and
/// the (ratio, p, q) of the few in between.
struct Split {
    a: (f64, f64),
    b: (f64, f64),
    mid: Vec<(f64, f64, f64)>,
}

impl KseqMasses for Split {
    fn at(&mut self, rho: f64) -> Masses {
        Split::at(self, rho)
    }

    fn narrow(&mut self, lo: f64, hi: f64) {
        if !self.mid.is_empty() {
            self.fold(lo, hi);
        }
    }
}

impl Split {
    fn at(&self, rho: f64) -> Masses {
        let inv = 1.0 / rho;
        let mut m = masses(rho, self.a, self.b);
        for &(_, p, q) in &self.mid {
            m.beta += (p * inv).min(q);
            m.omb += (q - p * inv).max(0.0);
            m.over += (p - rho * q).max(0.0);
        }
        m
    }

    fn fold(&mut self, lo: f64, hi: f64) {
        let (mut a, mut b) = (self.a, self.b);
        self.mid.retain(|&(r, p, q)| {
            if r <= lo {
                a = (a.0 + p, a.1 + q);
                false
            } else if r >= hi {
                b = (b.0 + p, b.1 + q);
                false
            } else {
                true
            }
        });
        self.a = a;
        self.b = b;
    }
}

/// p_acc = 1 − (1 − β)ⁿ as −expm1(n·ln(1 − β)): accurate for tiny β and for any n (2⁴⁰ too).
#[inline]
pub(crate) fn p_accept(beta: f64, n: f64) -> f64 {
    -(n * (-beta.min(1.0)).ln_1p()).exp_m1()
}

/// (a value with the sign of f(ρ) = p_acc(ρ) − ρβ(ρ), γ = p_acc/β). Two forms, each free of
/// cancellation where it is used: for β < 1/2, f/β = γ − ρ (γ by its series n − n(n−1)/2·β when
/// nβ < 1e-8, where p_acc itself may be subnormal); for β ≥ 1/2, f = (1 − ρβ) − (1 − β)ⁿ from
/// the summed masses (p_acc − ρβ would subtract two numbers near 1 on a confident row). β = 0
/// (disjoint supports) gives f = 0 and γ = 0.
fn f(m: Masses, rho: f64, n: f64) -> (f64, f64) {
    let beta = m.beta;
    if beta <= 0.0 {
        return (0.0, 0.0);
    }
    let ln_omb = if beta < 0.5 { (-beta).ln_1p() } else { m.omb.ln() };
    let gamma = if n * beta < 1e-8 { n - 0.5 * n * (n - 1.0) * beta } else { -(n * ln_omb).exp_m1() / beta };
    let sign = if beta < 0.5 { gamma - rho } else { m.over - (n * ln_omb).exp() };
    (sign, gamma)
}

/// Bucket of a token, branch-free: 0 for p/q ≤ 1 (and for p = 0), B + 1 for p/q ≥ n (and for
/// q = 0 < p), else 1 + ⌊(p/q − 1)/h⌋ clamped to 1..=B.
#[inline(always)]
fn bucket(pi: f64, qi: f64, nf: f64, inv_h: f64) -> usize {
    // max/min rather than branches; NaN (p = q = 0) becomes −1 via max, i.e. bucket 0.
    let t = ((pi / qi - 1.0) * inv_h).max(-1.0).min(BUCKETS as f64 - 1.0);
    let k = (t + 1.0) as usize;
    let k = if pi <= qi { 0 } else { k };
    if (pi >= nf * qi) & (pi > qi) {
        BUCKETS + 1
    } else {
        k
    }
}

/// The K-SEQ ratio ρ (upper end of the final bracket, so f(ρ) ≤ 0), γ = p_acc/β ≤ ρ and β(ρ).
pub(crate) fn solve<T: Real>(p: &[T], q: &[T], ps: f64, qs: f64, n: usize) -> (f64, f64, f64) {
    let nf = n as f64;
    let (ip, iq) = (1.0 / ps, 1.0 / qs);
    let h = (nf - 1.0) / BUCKETS as f64;
    let inv_h = if n > 1 { 1.0 / h } else { 0.0 };
    let edge = |j: usize| if j == BUCKETS { nf } else { 1.0 + j as f64 * h };
    // Four interleaved copies of the histogram, so that runs of tokens in one bucket (most lie in
    // bucket 0) do not form one long chain of dependent read-modify-writes.
    const W: usize = BUCKETS + 2;
    let mut hist = [[0.0f64; 2 * W]; 4];
    let mut pc = p.chunks_exact(4);
    let mut qc = q.chunks_exact(4);
    for (xs, ys) in (&mut pc).zip(&mut qc) {
        for c in 0..4 {
            let (pi, qi) = (xs[c].to_f64() * ip, ys[c].to_f64() * iq);
            let k = bucket(pi, qi, nf, inv_h);
            hist[c][k] += pi;
            hist[c][W + k] += qi;
        }
    }
    for (x, y) in pc.remainder().iter().zip(qc.remainder()) {
        let (pi, qi) = (x.to_f64() * ip, y.to_f64() * iq);
        let k = bucket(pi, qi, nf, inv_h);
        hist[0][k] += pi;
        hist[0][W + k] += qi;
    }
    let mut hp = [0.0f64; W];
    let mut hq = [0.0f64; W];
    for k in 0..W {
        hp[k] = (hist[0][k] + hist[1][k]) + (hist[2][k] + hist[3][k]);
        hq[k] = (hist[0][W + k] + hist[1][W + k]) + (hist[2][W + k] + hist[3][W + k]);
    }
    // Prefix sums of the buckets ≤ j and suffix sums of those > j (each what lies on its side,
    // summed; never a running total minus what has passed).
    let (mut below, mut above) = ([(0.0f64, 0.0f64); W + 1], [(0.0f64, 0.0f64); W + 1]);
    for k in 0..W {
        below[k + 1] = (below[k].0 + hp[k], below[k].1 + hq[k]);
    }
    for k in (0..W).rev() {
        above[k] = (above[k + 1].0 + hp[k], above[k + 1].1 + hq[k]);
    }
    // At edge e_j (j = 0..=B) the tokens of buckets ≤ j contribute p/e, the others q.
    let at_edge = |j: usize| masses(edge(j), below[j + 1], above[j + 1]);
    let m1 = at_edge(0);
    let (f1, g1) = f(m1, 1.0, nf);
    if f1 <= 0.0 || n == 1 {
        return (1.0, g1.min(1.0), m1.beta);
    }
    // First edge with f ≤ 0 (exists: f(n) ≤ 0).
    let mut j = 0;
    while j < BUCKETS {
        if f(at_edge(j + 1), edge(j + 1), nf).0 <= 0.0 {
            break;
        }
        j += 1;
    }
    let j = j.min(BUCKETS - 1); // the root lies in bucket j + 1, i.e. [e_j, e_{j+1}]
    let (lo0, hi0) = (edge(j), edge(j + 1));
    let mut sp = Split { a: below[j + 1], b: above[j + 2], mid: Vec::new() };
    let (lo_t, hi_t) = (lo0 * (1.0 - 1e-9), hi0 * (1.0 + 1e-9));
    // Cheap pre-test (no division), evaluated for 8 tokens at a time without branches; only the
    // rare chunks with a candidate are walked and bucketed exactly.
    let near = |pi: f64, qi: f64| (pi > qi * lo_t) & (pi < qi * hi_t);
    let mut keep = |pi: f64, qi: f64| {
        if near(pi, qi) && bucket(pi, qi, nf, inv_h) == j + 1 {
            sp.mid.push((pi / qi, pi, qi));
        }
    };
    let mut pc = p.chunks_exact(8);
    let mut qc = q.chunks_exact(8);
    for (xs, ys) in (&mut pc).zip(&mut qc) {
        let mut any = false;
        for l in 0..8 {
            any |= near(xs[l].to_f64() * ip, ys[l].to_f64() * iq);
        }
        if any {
            for l in 0..8 {
                keep(xs[l].to_f64() * ip, ys[l].to_f64() * iq);
            }
        }
    }
    for (x, y) in pc.remainder().iter().zip(qc.remainder()) {
        keep(x.to_f64() * ip, y.to_f64() * iq);
    }
    let m_hi = sp.at(hi0);
    if f(m_hi, hi0, nf).0 > 0.0 {
        // Rounding at the edge: fall back to ρ = n, where f ≤ 0 always holds.
        let bn = p.iter().zip(q).map(|(x, y)| (x.to_f64() * ip / nf).min(y.to_f64() * iq)).sum::<f64>();
        let m = Masses { beta: bn, omb: (1.0 - bn).max(0.0), over: 0.0 };
        return (nf, f(m, nf, nf).1.min(nf), bn);
    }
    bisect(n, lo0, hi0, m_hi, &mut sp)
}

/// The one K-SEQ root rule: bisection on [lo, hi], where f(hi) ≤ 0 (`m_hi` are the masses at
/// hi), keeping the upper end, so f(ρ) ≤ 0 (lossless) holds for the ρ returned however far the
/// bisection got. Returns (ρ, γ = p_acc/β ≤ ρ, β(ρ)).
pub(crate) fn bisect(n: usize, mut lo: f64, mut hi: f64, mut m_hi: Masses, ev: &mut impl KseqMasses) -> (f64, f64, f64) {
    let nf = n as f64;
    let mut g_hi = f(m_hi, hi, nf).1;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if !(mid > lo && mid < hi) {
            break;
        }
        let m = ev.at(mid);
        let (fm, gm) = f(m, mid, nf);
        if fm <= 0.0 {
            hi = mid;
            m_hi = m;
            g_hi = gm;
        } else {
            lo = mid;
        }
        ev.narrow(lo, hi);
    }
    // γ = p_acc/β ≤ ρ where f ≤ 0 (the min only guards rounding).
    (hi, g_hi.min(hi), m_hi.beta)
}

/// K-SEQ's (ρ, γ, β(ρ)) over the whole bracket [1, n] for an evaluator of the masses on a
/// normalised row (the study's curve): ρ = 1 when f(1) ≤ 0, else [`bisect`]; ρ = n if rounding
/// makes f(n) > 0 (f(n) ≤ 0 in exact arithmetic).
pub(crate) fn root(n: usize, ev: &mut impl KseqMasses) -> (f64, f64, f64) {
    let nf = n as f64;
    let m1 = ev.at(1.0);
    let (f1, g1) = f(m1, 1.0, nf);
    if f1 <= 0.0 || n == 1 {
        return (1.0, g1.min(1.0), m1.beta);
    }
    let mn = ev.at(nf);
    let (fn_, gn) = f(mn, nf, nf);
    if fn_ > 0.0 {
        return (nf, gn.min(nf), mn.beta);
    }
    bisect(n, 1.0, nf, mn, ev)
}

pub(crate) fn kseq<T: Real, S: Source>(cx: &Ctx<'_, T>, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let (ps, qs) = (cx.sums.p, cx.sums.q);
    let (rho, gamma, _) = solve(p, q, ps, qs, cx.drafts.len());
    for (k, &x) in cx.drafts.iter().enumerate() {
        // min(1, p(x) / (ρ q(x))) on the normalised p, q.
        if src.coin(ratio(p[x].to_f64() * qs, rho * q[x].to_f64() * ps)) {
            return Outcome { token: x, accepted: Some(k) };
        }
    }
    let (ip, iq, ir) = (1.0 / ps, 1.0 / qs, 1.0 / rho);
    // Σ (p − γ·min(p/ρ, q))₊ is 1 − γβ in exact arithmetic, but summed: 1 − γβ cancels when
    // almost every draft is accepted.
    let w = |x: f64, y: f64| {
        let (pi, qi) = (x * ip, y * iq);
        (pi - gamma * (pi * ir).min(qi)).max(0.0)
    };
    let total = super::kernel::sum2(p, q, w);
    cx.residual(src, total, &[], w)
}
