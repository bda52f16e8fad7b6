//! α* for successive sampling without replacement (Gumbel-top-k, `torch.multinomial` without
//! replacement): draw j is q restricted to the tokens not drawn yet, renormalised. **Exact**; the
//! e_n ratio printed by Hu et al. is the conditional-Poisson law, not this one (docs/theory.md §2.3), and
//! is offered separately as the `cp` scheme.
//!
//! Q(H) = Pr[all n drafts ∈ H] is q-convex (Hu et al., Theorem 4), so the minimiser of
//! f = p(H) − Q(H) is a prefix of the q/p-descending order (Theorem 6) and we scan prefixes:
//!
//! * n = 2, closed form (docs/theory.md §2.3): Q(H) = Σ_{i∈H} q_i (q(H) − q_i) / (1 − q_i), updated per
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
//!   rule in v converges exponentially in 1/h; with step h = 0.25 over
//!   v ∈ [log(1e-15)/(n+1), log(40/(1 − s_max))] (about 150 nodes) the error against a far finer
//!   quadrature stays ≤ 1e-11 even on rows with entries spread down to 1e-300 (h = 0.35 left up
//!   to 5e-8 there; the tests check both the step and the range). A truncated
//!   Poisson-binomial DP Pr[N_H(t) = 0..n−1], Pr[N_H(t) ≥ n] per node is updated as the prefix grows, O(T·n) per
//!   token. Since Pr_wor[all ∈ H] ≤ q(H)^n, the i.i.d. value p(H) − q(H)^n is a lower bound of
//!   f(H): prefixes whose bound cannot beat the best value found are not evaluated, and the scan
//!   stops once no later prefix can.

use super::fastexp::exp_neg;
use super::prep::{self, Sorted};
use crate::verify::kernel;
use crate::Real;

/// Trapezoid step in log t.
const H: f64 = 0.25;

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

/// α* for every n in `ns` (any order, repeats allowed): n = 1 is 1 − TV, n = 2 the closed form,
/// and all n ≥ 3 share one exponential race ([`races`]). Each n must be ≤ |supp q| (validated by
/// the caller).
pub fn values(s: &Sorted, ns: &[usize], overlap: f64) -> Vec<f64> {
    let big: Vec<usize> = ns.iter().copied().filter(|&n| n >= 3).collect();
    let raced = if big.is_empty() { Vec::new() } else { races(s, &big) };
    let pair_value = if ns.contains(&2) { pair(s) } else { 0.0 };
    let mut at = 0;
    ns.iter()
        .map(|&n| match n {
            1 => overlap,
            2 => pair_value,
            _ => {
                at += 1;
                raced[at - 1]
            }
        })
        .collect()
}

/// n ≥ 2 by the exponential race (n = 2 is used in tests against the closed form).
pub fn race(s: &Sorted, n: usize) -> f64 {
    race_with(s, &[n], H, 0.0)[0]
}

/// The race for several n ≥ 2 at once (see [`race_with`]).
pub fn races(s: &Sorted, ns: &[usize]) -> Vec<f64> {
    race_with(s, ns, H, 0.0)
}

/// The race for every n in `ns` (each ≥ 2) with trapezoid step `h` and the node range widened by
/// `widen` at both ends in log t (tests check that the default step and range have converged).
///
/// One pass serves all n: the Poisson-binomial DP is kept up to N = max n (states
/// Pr[N_H(t) = 0..N−1] and the absorbing Pr[N_H(t) ≥ N]), and Pr[N_H(t) ≥ n] for a smaller n is
/// Σ_{m=n}^{N−1} Pr[= m] + Pr[≥ N], a sum of non-negative terms (no cancellation). Each n keeps
/// its own best value and pruning bounds; the scan stops when no n can improve. Values agree with
/// single-n calls to the quadrature accuracy (the node range covers every n).
pub fn race_with(s: &Sorted, ns: &[usize], h: f64, widen: f64) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function was compiled for.
            return unsafe { race_avx512(s, ns, h, widen) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features the function was compiled for.
            return unsafe { race_avx2(s, ns, h, widen) };
        }
    }
    race_impl(s, ns, h, widen)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn race_avx2(s: &Sorted, ns: &[usize], h: f64, widen: f64) -> Vec<f64> {
    race_impl(s, ns, h, widen)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn race_avx512(s: &Sorted, ns: &[usize], h: f64, widen: f64) -> Vec<f64> {
    race_impl(s, ns, h, widen)
}

/// Quadrature nodes are processed in groups of this many lanes (one AVX-512 register).
const LANES: usize = 8;

/// The pruning state of one n: best value so far, and the suffix minima of its lower bounds.
struct Track {
    n: usize,
    best: f64,
    sufmin: Vec<f64>,
}

#[inline(always)]
fn race_impl(s: &Sorted, ns: &[usize], h: f64, widen: f64) -> Vec<f64> {
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
    let n_max = ns.iter().copied().max().unwrap_or(2);
    // The n_max − 1 largest q, largest first, and the mass below them (summed, for the bounds).
    let mut top_q = s.q.clone();
    let m_top = (n_max - 1).min(k.saturating_sub(1));
    if m_top > 0 {
        top_q.select_nth_unstable_by(m_top - 1, |a, b| b.total_cmp(a));
    }
    let mut tops: Vec<f64> = top_q[..m_top].to_vec();
    tops.sort_unstable_by(|a, b| b.total_cmp(a));
    let below_tops = kernel::sum(&top_q[m_top..]);

    // Lower bounds of f(H) = p(H) − Q(H): Q(H) ≤ q(H)^n (without replacement never beats i.i.d.)
    // and Q(H) ≤ 1.
    let lower = |len: usize, n: usize| (pp[len] - prep::pown(ss[len], n)).max(pp[len] - 1.0);
    let mut tracks: Vec<Track> = Vec::with_capacity(ns.len());
    let mut last = 0usize;
    for &n in ns {
        // Prefixes shorter than n have Q = 0 (f = p(H) ≥ 0); the full prefix has Q = 1.
        let mut best = 0.0f64.min(s.p_total - 1.0);
        // Upper bounds of f(H) from a lower bound of Q(H): when j drafts (of mass D ≤ U_j, the
        // mass of the j largest q) are all in H, the next one is in H with probability
        // (s − D)/(1 − D) ≥ (s − U_j)/(1 − U_j). They start `best` near the optimum, so the bound
        // p(H) − 1 ≤ f(H) prunes the long tail of prefixes that needs the largest t. 1 − U_j is
        // the mass outside the j largest, summed; s − U_j is a difference of sums, lowered by
        // their rounding error so that the bound stays a lower bound (on a confident row, where
        // s − U_j is as small as that error, it is then 0: no pruning rather than a wrong α*).
        let (mut u, mut outside) = (vec![0.0f64; n], vec![0.0f64; n]);
        for j in 0..n {
            u[j] = if j == 0 { 0.0 } else { u[j - 1] + tops.get(j - 1).copied().unwrap_or(0.0) };
            outside[j] = below_tops + kernel::sum(&tops[j.min(m_top)..]);
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
            sufmin[len] = if len >= n { sufmin[len + 1].min(lower(len, n)) } else { sufmin[len + 1] };
        }
        if n < k && sufmin[n] < best {
            last = last.max((n..k).rev().find(|&len| lower(len, n) < best).unwrap_or(n));
        }
        tracks.push(Track { n, best, sufmin });
    }
    let finish = |tracks: &[Track]| tracks.iter().map(|t| 1.0 + t.best).collect::<Vec<f64>>();
    let n_min = ns.iter().copied().min().unwrap_or(2);
    if last == 0 {
        return finish(&tracks);
    }

    // The race is invariant under scaling every rate by λ (and time by 1/λ). When the mass left
    // outside the prefixes is tiny, its clocks need t ≈ 40/rest, which overflows for a subnormal
    // rest: then the rates are taken times λ = 2^600 (exact), so the nodes stay finite.
    let lam = if rest[last] < 1e-280 { kernel::BIG } else { 1.0 };
    // Quadrature nodes in v = log t, padded to whole groups of lanes with zero-weight nodes.
    // Below v_lo, Pr[N_H(t) ≥ n] ≤ t^n/n! makes the integrand in v at most t^{n+1}/n! (tail
    // < 1e-15; rates ≤ λ); above v_hi, e^{−λ·r t} < e^{−40}.
    let v_lo = (1e-15f64).ln() / (n_min as f64 + 1.0) - 0.5 - widen - lam.ln();
    let v_hi = (40.0 / (rest[last] * lam)).ln() + widen;
    let nodes = ((v_hi - v_lo) / h).ceil() as usize + 1;
    let groups = nodes.div_ceil(LANES);
    let mut t = vec![[0.0f64; LANES]; groups];
    let mut w = vec![[0.0f64; LANES]; groups];
    for j in 0..nodes {
        let tj = (v_lo + j as f64 * h).exp();
        t[j / LANES][j % LANES] = tj;
        w[j / LANES][j % LANES] = h * tj;
    }

    // dp[g·S + m] = Pr[N_H(t) = m] at the lanes of node group g for m < N, and dp[g·S + N] =
    // Pr[N_H(t) ≥ N] kept as its own absorbing state, so small tail probabilities carry no
    // cancellation. S = N + 1 states per group sit together: one token updates a group's states
    // while they are in registers.
    let states = n_max + 1;
    let mut dp = vec![[0.0f64; LANES]; groups * states];
    for g in 0..groups {
        dp[g * states] = [1.0; LANES];
    }
    // which[m] = indices of the tracks with n = m (repeats allowed), for the tail sums.
    let mut which: Vec<Vec<usize>> = vec![Vec::new(); states];
    for (i, tr) in tracks.iter().enumerate() {
        which[tr.n].push(i);
    }
    let mut eval = vec![false; tracks.len()];
    let mut acc = vec![[0.0f64; LANES]; tracks.len()];
    for i in 0..last {
        let qi = s.q[i] * lam;
        let len = i + 1;
        let mut any = false;
        for (e, tr) in eval.iter_mut().zip(&tracks) {
            *e = len >= tr.n && len < k && lower(len, tr.n) < tr.best;
            any |= *e;
        }
        let r = rest[len] * lam;
        for a in acc.iter_mut() {
            *a = [0.0; LANES];
        }
        for g in 0..groups {
            let tg = &t[g];
            let mut c = [0.0f64; LANES];
            for l in 0..LANES {
                c[l] = exp_neg(qi * tg[l]);
            }
            let d = &mut dp[g * states..(g + 1) * states];
            for l in 0..LANES {
                d[n_max][l] += d[n_max - 1][l] * (1.0 - c[l]);
            }
            for m in (1..n_max).rev() {
                for l in 0..LANES {
                    d[m][l] = d[m][l] * c[l] + d[m - 1][l] * (1.0 - c[l]);
                }
            }
            for l in 0..LANES {
                d[0][l] *= c[l];
            }
            if any {
                // Q(H) = ∫ r e^{−r t} Pr[N_H(t) ≥ n] dt, r = 1 − q(H), trapezoid in log t.
                let mut e = [0.0f64; LANES];
                for l in 0..LANES {
                    e[l] = w[g][l] * exp_neg(r * tg[l]);
                }
                let mut tail = d[n_max];
                for m in (n_min..=n_max).rev() {
                    if m < n_max {
                        for l in 0..LANES {
                            tail[l] += d[m][l];
                        }
                    }
                    for &ti in &which[m] {
                        if eval[ti] {
                            for l in 0..LANES {
                                acc[ti][l] += e[l] * tail[l];
                            }
                        }
                    }
                }
            }
        }
        let mut done = true;
        for ((tr, &e), a) in tracks.iter_mut().zip(&eval).zip(&acc) {
            if e {
                let integral = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
                tr.best = tr.best.min(pp[len] - r * integral);
            }
            done &= tr.sufmin[len + 1] >= tr.best;
        }
        if done {
            break;
        }
    }
    finish(&tracks)
}
