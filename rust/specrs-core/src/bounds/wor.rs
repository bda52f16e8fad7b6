//! α* for successive sampling without replacement (Gumbel-top-k, `torch.multinomial` without
//! replacement): draw j is q restricted to the tokens not drawn yet, renormalised. **Exact**; the
//! e_n ratio printed by Hu et al. is the conditional-Poisson law, not this one (mdsd.md §3.5), and
//! is offered separately as the `cp` scheme.
//!
//! Q(H) = Pr[all n drafts ∈ H] is q-convex (Hu et al., Theorem 4), so the minimiser of
//! f = p(H) − Q(H) is a prefix of the q/p-descending order (Theorem 6) and we scan prefixes:
//!
//! * n = 2, closed form (mdsd.md §3.5): Q(H) = Σ_{i∈H} q_i (q(H) − q_i) / (1 − q_i), updated per
//!   added token x as Q ← Q + x·Σ_{i∈H} q_i/(1 − q_i) + x·q(H)/(1 − x) (all terms ≥ 0, so no
//!   cancellation; 1 − x is taken as the sum of the other tokens for the largest x).
//! * n ≥ 3, the exponential race: give token i an Exp(q_i) clock; arrival order = draw order, so
//!   with s = q(H) and N_H(t) = #{i ∈ H : clock_i ≤ t} (independent Bernoulli(1 − e^{−q_i t})),
//!
//!   ```text
//!       Q(H) = (1 − s) ∫_0^∞ e^{−(1−s)t} Pr[N_H(t) ≥ n] dt.
//!   ```
//!
//!   The integrand is analytic in a strip around the real axis in v = log t, so the trapezoid
//!   rule in v converges exponentially (error ≈ exp(−π²/h)); with step h = 0.35 over
//!   v ∈ [log(1e-15)/(n+1), log(40/(1 − s_max))] about a hundred nodes give ≤ 1e-11. A truncated
//!   Poisson-binomial DP Pr[N_H(t) = 0..n−1], Pr[N_H(t) ≥ n] per node is updated as the prefix grows, O(T·n) per
//!   token. Since Pr_wor[all ∈ H] ≤ q(H)^n, the i.i.d. value p(H) − q(H)^n is a lower bound of
//!   f(H): prefixes whose bound cannot beat the best value found are not evaluated, and the scan
//!   stops once no later prefix can.

use super::fastexp::exp_neg;
use super::prep::{self, Sorted};
use crate::verify::kernel;
use crate::Real;

/// Trapezoid step in log t.
const H: f64 = 0.35;

pub fn value<T: Real>(p: &[T], q: &[T], n: usize, sp: f64, sq: f64) -> f64 {
    let s = prep::sorted(p, q, sp, sq);
    if n == 2 {
        pair(&s)
    } else {
        race(&s, n)
    }
}

/// n = 2 closed form. The largest token's term q_max/(1 − q_max) is huge when the other tokens
/// are tiny (1 − q_max is their mass, summed): it only ever enters as q_max·(x/(1 − q_max)) with
/// x ≤ 1 − q_max, and as x·(q(H)/(1 − q_max)) for x = q_max, so no product overflows.
pub fn pair(s: &Sorted) -> f64 {
    let k = s.q.len();
    let imax = (0..k).max_by(|&a, &b| s.q[a].total_cmp(&s.q[b])).unwrap_or(0);
    let rest_max: f64 = (0..k).filter(|&i| i != imax).map(|i| s.q[i]).sum();
    let q_max = s.q.get(imax).copied().unwrap_or(0.0);
    let mut best = 0.0f64.min(s.p_total - 1.0); // H = supp q: Q = 1
    // ca = Σ q_i/(1 − q_i) over the non-max tokens of H.
    let (mut cp, mut cs, mut ca, mut cq) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut max_in = false;
    for i in 0..k.saturating_sub(1) {
        let x = s.q[i];
        if i == imax {
            cq += x * ca + x * (cs / rest_max);
            max_in = true;
        } else {
            let om = 1.0 - x; // ≥ 1/2 up to rounding: x is not the largest
            cq += x * ca + x * cs / om + if max_in { q_max * (x / rest_max) } else { 0.0 };
            ca += x / om;
        }
        cs += x;
        cp += s.p[i];
        best = best.min(cp - cq);
    }
    1.0 + best
}

/// n ≥ 2 by the exponential race (n = 2 is used in tests against the closed form).
pub fn race(s: &Sorted, n: usize) -> f64 {
    race_with(s, n, H, 0.0)
}

/// The race with trapezoid step `h` and the node range widened by `widen` at both ends in log t
/// (tests check that the default step and range have converged).
pub fn race_with(s: &Sorted, n: usize, h: f64, widen: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function was compiled for.
            return unsafe { race_avx512(s, n, h, widen) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function was compiled for.
            return unsafe { race_avx2(s, n, h, widen) };
        }
    }
    race_impl(s, n, h, widen)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn race_avx2(s: &Sorted, n: usize, h: f64, widen: f64) -> f64 {
    race_impl(s, n, h, widen)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn race_avx512(s: &Sorted, n: usize, h: f64, widen: f64) -> f64 {
    race_impl(s, n, h, widen)
}

#[inline(always)]
fn race_impl(s: &Sorted, n: usize, h: f64, widen: f64) -> f64 {
    let k = s.q.len();
    let mut pp = vec![0.0f64; k + 1];
    let mut ss = vec![0.0f64; k + 1];
    let mut rest = vec![0.0f64; k + 1]; // q-mass outside the prefix of length i, summed directly
    for i in 0..k {
        pp[i + 1] = pp[i] + s.p[i];
        ss[i + 1] = ss[i] + s.q[i];
    }
    for i in (0..k).rev() {
        rest[i] = rest[i + 1] + s.q[i];
    }
    // Lower bounds of f(H) = p(H) − Q(H): Q(H) ≤ q(H)^n (without replacement never beats i.i.d.)
    // and Q(H) ≤ 1.
    let lower = |len: usize| (pp[len] - prep::pown(ss[len], n)).max(pp[len] - 1.0);
    // Prefixes shorter than n have Q = 0 (f = p(H) ≥ 0); the full prefix has Q = 1.
    let mut best = 0.0f64.min(s.p_total - 1.0);
    // Upper bounds of f(H) from a lower bound of Q(H): when j drafts (of mass D ≤ U_j, the mass of
    // the j largest q) are all in H, the next one is in H with probability
    // (s − D)/(1 − D) ≥ (s − U_j)/(1 − U_j). They start `best` near the optimum, so the bound
    // p(H) − 1 ≤ f(H) prunes the long tail of prefixes that needs the largest t. 1 − U_j is the
    // mass outside the j largest, summed; s − U_j is a difference of sums, lowered by their
    // rounding error so that the bound stays a lower bound (on a confident row, where s − U_j is
    // as small as that error, it is then 0: no pruning rather than a wrong α*).
    let mut top_q = s.q.clone();
    let m = (n - 1).min(k.saturating_sub(1));
    if m > 0 {
        top_q.select_nth_unstable_by(m - 1, |a, b| b.total_cmp(a));
    }
    let mut tops: Vec<f64> = top_q[..m].to_vec();
    tops.sort_unstable_by(|a, b| b.total_cmp(a));
    let (mut u, mut outside) = (vec![0.0f64; n], vec![0.0f64; n]);
    let below_tops = kernel::sum(&top_q[m..]);
    for j in 0..n {
        u[j] = if j == 0 { 0.0 } else { u[j - 1] + tops.get(j - 1).copied().unwrap_or(0.0) };
        outside[j] = below_tops + kernel::sum(&tops[j.min(m)..]);
    }
    for len in n..k {
        let sh = ss[len];
        let mut qlb = 1.0f64;
        for (j, (&uj, &out)) in u.iter().zip(&outside).enumerate() {
            let err = (len + j + 2) as f64 * f64::EPSILON * (sh + uj);
            qlb *= ((sh - uj - err) / out.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0);
        }
        best = best.min(pp[len] - qlb);
    }
    let mut sufmin = vec![f64::INFINITY; k + 1];
    for len in (0..k).rev() {
        sufmin[len] = if len >= n { sufmin[len + 1].min(lower(len)) } else { sufmin[len + 1] };
    }
    if n >= k || sufmin[n] >= best {
        return 1.0 + best;
    }
    let last = (n..k).rev().find(|&len| lower(len) < best).unwrap_or(n);

    // The race is invariant under scaling every rate by λ (and time by 1/λ). When the mass left
    // outside the prefixes is tiny, its clocks need t ≈ 40/rest, which overflows for a subnormal
    // rest: then the rates are taken times λ = 2^600 (exact), so the nodes stay finite.
    let lam = if rest[last] < 1e-280 { kernel::BIG } else { 1.0 };
    // Quadrature nodes in v = log t.
    // Below v_lo, Pr[N_H(t) ≥ n] ≤ t^n/n! makes the integrand in v at most t^{n+1}/n! (tail
    // < 1e-15; rates ≤ λ); above v_hi, e^{−λ·r t} < e^{−40}.
    let v_lo = (1e-15f64).ln() / (n as f64 + 1.0) - 0.5 - widen - lam.ln();
    let v_hi = (40.0 / (rest[last] * lam)).ln() + widen;
    let nodes = ((v_hi - v_lo) / h).ceil() as usize + 1;
    let t: Vec<f64> = (0..nodes).map(|j| (v_lo + j as f64 * h).exp()).collect();
    let w: Vec<f64> = t.iter().map(|&tj| h * tj).collect();

    // dp[m*nodes + j] = Pr[N_H(t_j) = m] for m < n, and dp[n*nodes + j] = Pr[N_H(t_j) ≥ n] kept as
    // its own absorbing state, so small tail probabilities carry no cancellation.
    let mut dp = vec![0.0f64; (n + 1) * nodes];
    dp[..nodes].fill(1.0);
    let mut c = vec![0.0f64; nodes];
    let mut ebuf = vec![0.0f64; nodes];
    for i in 0..last {
        let qi = s.q[i] * lam;
        for (cj, &tj) in c.iter_mut().zip(&t) {
            *cj = exp_neg(qi * tj);
        }
        for m in (1..=n).rev() {
            let (lo, hi) = dp.split_at_mut(m * nodes);
            let prev = &lo[(m - 1) * nodes..];
            let keep = m < n;
            for ((d, &pv), &cj) in hi[..nodes].iter_mut().zip(prev).zip(&c) {
                let stay = if keep { *d * cj } else { *d };
                *d = stay + pv * (1.0 - cj);
            }
        }
        for (d, &cj) in dp[..nodes].iter_mut().zip(&c) {
            *d *= cj;
        }
        let len = i + 1;
        if len >= n && lower(len) < best {
            // Q(H) = ∫ r e^{−r t} Pr[N_H(t) ≥ n] dt, r = 1 − q(H), trapezoid in log t.
            let r = rest[len] * lam;
            let tail = &dp[n * nodes..];
            for ((e, (&tj, &wj)), &tl) in ebuf.iter_mut().zip(t.iter().zip(&w)).zip(tail) {
                *e = wj * exp_neg(r * tj) * tl;
            }
            let integral = kernel::sum(&ebuf);
            best = best.min(pp[len] - r * integral);
        }
        if sufmin[len + 1] >= best {
            break;
        }
    }
    1.0 + best
}
