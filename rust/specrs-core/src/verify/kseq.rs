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
//! every edge from prefix sums; the bucket holding the root is found in O(B), its few tokens are
//! collected in a second pass, and the bisection runs on them alone (tokens leaving the shrinking
//! bracket fold into two constants). Then one pass for the residual mass and one pick.

use super::source::Source;
use super::{ratio, Ctx, Outcome};
use crate::Real;

const BUCKETS: usize = 256;

/// β(ρ) = a/ρ + b + Σ_{mid} min(p/ρ, q): `a` is Σp over tokens with p/q ≤ lo, `b` Σq over tokens
/// with p/q ≥ hi, `mid` the (ratio, p, q) of the tokens in between.
struct Split {
    a: f64,
    b: f64,
    mid: Vec<(f64, f64, f64)>,
}

impl Split {
    fn beta(&self, rho: f64) -> f64 {
        let inv = 1.0 / rho;
        self.a * inv + self.b + self.mid.iter().map(|&(_, p, q)| (p * inv).min(q)).sum::<f64>()
    }

    fn fold(&mut self, lo: f64, hi: f64) {
        let (mut a, mut b) = (self.a, self.b);
        self.mid.retain(|&(r, p, q)| {
            if r <= lo {
                a += p;
                false
            } else if r >= hi {
                b += q;
                false
            } else {
                true
            }
        });
        self.a = a;
        self.b = b;
    }
}

/// f(ρ) = p_acc(ρ) − ρβ(ρ) and p_acc(ρ) = 1 − (1 − β)ⁿ.
fn f(beta: f64, rho: f64, n: i32) -> (f64, f64) {
    let p_acc = 1.0 - (1.0 - beta).max(0.0).powi(n);
    (p_acc - rho * beta, p_acc)
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
    let (ni, nf) = (n as i32, n as f64);
    let (ip, iq) = (1.0 / ps, 1.0 / qs);
    let gamma_at = |b: f64, pa: f64, rho: f64| (if b > 0.0 { (pa / b).min(rho) } else { 0.0 }, b);
    let h = (nf - 1.0) / BUCKETS as f64;
    let inv_h = if n > 1 { 1.0 / h } else { 0.0 };
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
    // f at edge e_j = 1 + j·h (j = 0..=B): tokens of buckets ≤ j contribute p/e, the others q.
    let at_edge = |j: usize| {
        let e = if j == BUCKETS { nf } else { 1.0 + j as f64 * h };
        let below: f64 = hp[..=j].iter().sum();
        let above: f64 = hq[j + 1..].iter().sum();
        (e, below, above)
    };
    let (_, a0, b0) = at_edge(0);
    let b1 = a0 + b0;
    let (f1, pa1) = f(b1, 1.0, ni);
    if f1 <= 0.0 || n == 1 {
        let (g, b) = gamma_at(b1, pa1, 1.0);
        return (1.0, g, b);
    }
    // First edge with f ≤ 0 (exists: f(n) ≤ 0), by a scan of running sums.
    let (mut below, mut above) = (a0, b0);
    let mut j = 0;
    while j < BUCKETS {
        below += hp[j + 1];
        above -= hq[j + 1];
        let e = if j + 1 == BUCKETS { nf } else { 1.0 + (j + 1) as f64 * h };
        if f(below / e + above, e, ni).0 <= 0.0 {
            break;
        }
        j += 1;
    }
    let j = j.min(BUCKETS - 1); // the root lies in bucket j + 1, i.e. [e_j, e_{j+1}]
    let (lo0, a, _) = at_edge(j);
    let hi0 = if j + 1 == BUCKETS { nf } else { 1.0 + (j + 1) as f64 * h };
    let b = hq[j + 2..].iter().sum::<f64>();
    let mut sp = Split { a, b, mid: Vec::new() };
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
    let (mut lo, mut hi) = (lo0, hi0);
    let mut b_hi = sp.beta(hi);
    let mut pa_hi = f(b_hi, hi, ni).1;
    if f(b_hi, hi, ni).0 > 0.0 {
        // Rounding at the edge: fall back to ρ = n, where f ≤ 0 always holds.
        let bn = p.iter().zip(q).map(|(x, y)| (x.to_f64() * ip / nf).min(y.to_f64() * iq)).sum::<f64>();
        let (g, b) = gamma_at(bn, f(bn, nf, ni).1, nf);
        return (nf, g, b);
    }
    for _ in 0..200 {
        let m = 0.5 * (lo + hi);
        if !(m > lo && m < hi) {
            break;
        }
        let bm = sp.beta(m);
        let (fm, pam) = f(bm, m, ni);
        if fm <= 0.0 {
            hi = m;
            b_hi = bm;
            pa_hi = pam;
        } else {
            lo = m;
        }
        if !sp.mid.is_empty() {
            sp.fold(lo, hi);
        }
    }
    let (g, b) = gamma_at(b_hi, pa_hi, hi);
    (hi, g, b)
}

pub(crate) fn kseq<T: Real, S: Source>(cx: &Ctx<'_, T>, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let (ps, qs) = (cx.sums.p, cx.sums.q);
    let (rho, gamma, beta) = solve(p, q, ps, qs, cx.drafts.len());
    for (k, &x) in cx.drafts.iter().enumerate() {
        // min(1, p(x) / (ρ q(x))) on the normalised p, q.
        if src.coin(ratio(p[x].to_f64() * qs, rho * q[x].to_f64() * ps)) {
            return Outcome { token: x, accepted: Some(k) };
        }
    }
    let (ip, iq, ir) = (1.0 / ps, 1.0 / qs, 1.0 / rho);
    // Σ (p − γ·min(p/ρ, q))₊ = 1 − γβ: no clamping happens because γ ≤ ρ.
    let total = 1.0 - gamma * beta;
    cx.residual(src, total, &[], |x, y| {
        let (pi, qi) = (x * ip, y * iq);
        (pi - gamma * (pi * ir).min(qi)).max(0.0)
    })
}
