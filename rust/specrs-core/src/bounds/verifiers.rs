//! Exact acceptance rates α = Pr[the emitted token is one of the drafts] of the node verifiers
//! (docs/theory.md §4), for any scheme the registry (`crate::names`) pairs them with.
//!
//! | verifier | scheme | α |
//! |---|---|---|
//! | sd (n = 1) | iid, wor, cp, greedy | Σ min(p, q) |
//! | rrs (SpecInfer) | iid | 1 − N(a_{n+1}), a_1 = 0, a_{k+1} = a_k + N(a_k), N(a) = Σ(p − a q)_+ (= 1 − Π(1 − r_k) of Thomas et al. Alg. 9), by the verifier's own recurrence (`verify::rrs::acceptances`) |
//! | traversal (one level) | wor, iid | that of rrs_wor (wor) or rrs (iid): the same rule on one level |
//! | rrs_wor (RSD) | wor | exact enumeration while small, else deterministic (series + quadrature, 1e-9) for any n, Monte Carlo beyond the work budget; see [`super::rrs_wor`] |
//! | kseq (SpecTr) | iid | 1 − (1 − β(ρ))^n (as −expm1(n·ln(1 − β))), β(ρ) = Σ min(p/ρ, q), ρ the verifier's own solution of 1 − (1 − β)^n ≤ ρβ (`verify::kseq::solve`, within ulps of the root ρ* ∈ [1, n]) |
//! | greedy (Hu et al.) | greedy | Theorem 7 = α* of the greedy law |
//! | spechub (n = 2) | spechub | p(a) + Σ min(p, q') = α* of the SpecHub law |
//! | khisti | iid | Σ min(p, p_I) with p_I the law of the layout's selection (`verify::khisti`) = α* of the iid scheme |
//! | match | any | Σ_x p(x) Pr[x ∈ drafts]; topk: p(Top_n(q)) = α*_topk |
//! | optimal | any | α* of the scheme |

use super::{prep, rrs_wor, value_unchecked};
use crate::law::scheme_law;
use crate::names::{resolve_scheme, Scheme, Verifier};
use crate::sample::draft;
use crate::verify::kernel::top_k_of;
use crate::verify::{kseq, rrs};
use crate::{limits, Error, Real, Result, Rng};

/// An acceptance rate: exact (stderr = 0) or a Monte-Carlo estimate with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acceptance {
    pub value: f64,
    pub stderr: f64,
    pub exact: bool,
}

impl Acceptance {
    /// An exact value, clamped to [0, 1] (a probability; sums may round past the ends).
    pub(crate) fn exact(value: f64) -> Self {
        Acceptance { value: value.clamp(0.0, 1.0), stderr: 0.0, exact: true }
    }
}

/// Monte-Carlo settings for verifiers without a closed form (rrs_wor beyond the exact limit).
/// Row `row` of a batch uses the stream `Rng::for_stream(seed, row)`.
#[derive(Debug, Clone, Copy)]
pub struct MonteCarlo {
    pub samples: usize,
    pub seed: u64,
    /// Work budget of the deterministic rrs_wor methods (beyond it: Monte Carlo; 0 forces it).
    pub exact_nodes: usize,
}

impl Default for MonteCarlo {
    fn default() -> Self {
        MonteCarlo { samples: 20_000, seed: 0, exact_nodes: rrs_wor::EXACT_NODES }
    }
}

/// Exact (or, above an enumeration limit, estimated) probability that `verifier` accepts one of
/// the n drafts drawn by `scheme` (None: the verifier's default scheme, from the registry).
/// `row` selects the random stream of a batch row. Verifiers that attain α* of the scheme (the
/// registry's `optimal_for`) return α*.
pub fn verifier_acceptance<T: Real>(
    p: &[T],
    q: &[T],
    n: usize,
    verifier: Verifier,
    scheme: Option<Scheme>,
    mc: &MonteCarlo,
    row: u64,
) -> Result<Acceptance> {
    let scheme = resolve_scheme(verifier, scheme)?;
    let verifier = crate::verify::at_one_position(verifier, scheme);
    limits::check_count("samples", mc.samples, limits::MAX_SAMPLES, "the number of Monte-Carlo samples")?;
    let (sp, sq) = prep::check(p, q, n, scheme)?;
    verifier.check_n("n", n)?;
    if verifier.is_optimal_for(scheme) {
        return Ok(Acceptance::exact(value_unchecked(p, q, n, scheme, sp, sq)));
    }
    let normalised =
        || -> (Vec<f64>, Vec<f64>) { (p.iter().map(|x| x.to_f64() * sp).collect(), q.iter().map(|x| x.to_f64() * sq).collect()) };
    Ok(match verifier {
        Verifier::Match => {
            let (pf, qf) = normalised();
            match_acceptance(&pf, &qf, n, scheme, mc, row)?
        }
        // The verifiers' own recurrence and solver (verify::rrs, verify::kseq), on p and q as given.
        Verifier::Rrs => {
            // O(n·V): the recursion a_{k+1} = a_k + N(a_k) may need every one of its n steps.
            limits::check_count("n", n, limits::MAX_DRAFTS, "the number of drafts")?;
            Acceptance::exact(1.0 - rrs::rejection(p, q, 1.0 / sp, 1.0 / sq, n))
        }
        Verifier::Kseq => {
            let (_, _, beta) = kseq::solve(p, q, 1.0 / sp, 1.0 / sq, n);
            Acceptance::exact(kseq::p_accept(beta, n as f64))
        }
        // On the normalised row, as the acceptance study builds it (the same curve, the same stream).
        // (Traversal was mapped to rrs_wor above; the arm keeps the match total.)
        Verifier::RrsWor | Verifier::Traversal => {
            let (pf, qf) = normalised();
            rrs_wor_acceptance(&rrs_wor::Curve::new(&pf, &qf), n, mc, row)
        }
        // The registry marks sd (block: sd at one position), greedy, spechub, khisti and optimal
        // optimal for every scheme they take.
        Verifier::Sd | Verifier::Block | Verifier::Greedy | Verifier::SpecHub | Verifier::Khisti | Verifier::Optimal => {
            Acceptance::exact(value_unchecked(p, q, n, scheme, sp, sq))
        }
    })
}

/// RRS-wor acceptance on a prepared curve: the enumeration while it has at most
/// `ENUMERATE_NODES` nodes (exact to rounding), else for n ≤ `DETERMINISTIC_MAX_N` the
/// deterministic method (1e-9) within `mc.exact_nodes` work, else a Monte-Carlo estimate from the
/// stream (seed, row). `exact_nodes = 0` forces Monte Carlo.
pub(crate) fn rrs_wor_acceptance(curve: &rrs_wor::Curve, n: usize, mc: &MonteCarlo, row: u64) -> Acceptance {
    rrs_wor_acceptances(curve, &[n], mc, row).remove(0)
}

/// [`rrs_wor_acceptance`] for every n of `ns` (each ≤ |supp q|): the deterministic method's tables
/// are built once for all of them (the same tables a single-n call builds, so each value is that
/// call's), and each n's Monte-Carlo estimate draws from its own copy of the stream (seed, row).
pub(crate) fn rrs_wor_acceptances(curve: &rrs_wor::Curve, ns: &[usize], mc: &MonteCarlo, row: u64) -> Vec<Acceptance> {
    let mut prepared: Option<rrs_wor::Prepared> = None;
    let mut out = Vec::with_capacity(ns.len());
    for &n in ns {
        let mut deterministic = rrs_wor::enumerate_rejection(curve, n, mc.exact_nodes.min(rrs_wor::ENUMERATE_NODES));
        // Beyond DETERMINISTIC_MAX_N the method rarely fits its budget at large V and would
        // spend the whole budget finding out (about a second per row).
        if deterministic.is_none() && n <= rrs_wor::DETERMINISTIC_MAX_N {
            let tables = prepared.get_or_insert_with(|| rrs_wor::Prepared::new(curve, rrs_wor::DETERMINISTIC_MAX_N));
            deterministic = tables.rejection(n, rrs_wor::TOLERANCE, mc.exact_nodes).map(|(rej, _err)| rej);
        }
        out.push(match deterministic {
            Some(rej) => Acceptance::exact(1.0 - rej),
            None => {
                let mut rng = Rng::for_stream(mc.seed, row);
                let (rej, se) = rrs_wor::sampled_rejection(curve, n, mc.samples, &mut rng);
                Acceptance { value: 1.0 - rej, stderr: se, exact: false }
            }
        });
    }
    out
}

/// `match` samples the token from p and accepts it iff it is a draft, so its acceptance is
/// E[p(set of drafts)] = Σ_x p(x) Pr[x ∈ drafts]. Closed-form inclusion probabilities where they
/// exist ([`inclusion`]); otherwise (wor with n ≥ 3, or a CP law too peaked for the direct DP) the
/// explicit law when it is small enough, else a Monte-Carlo estimate over `mc.samples` drafts.
fn match_acceptance(p: &[f64], q: &[f64], n: usize, scheme: Scheme, mc: &MonteCarlo, row: u64) -> Result<Acceptance> {
    if let Some(pi) = inclusion(q, n, scheme) {
        return Ok(Acceptance::exact(p.iter().zip(&pi).map(|(&a, &b)| a * b.clamp(0.0, 1.0)).sum()));
    }
    let set_mass = |d: &[usize]| -> f64 { d.iter().enumerate().filter(|&(k, x)| !d[..k].contains(x)).map(|(_, &x)| p[x]).sum() };
    match scheme_law(q, n, scheme) {
        Ok(law) => Ok(Acceptance::exact((0..law.len()).map(|r| law.probs[r] * set_mass(law.row(r))).sum())),
        Err(Error::TooLarge { .. }) => {
            let mut rng = Rng::for_stream(mc.seed, row);
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for _ in 0..mc.samples {
                let x = set_mass(&draft(q, n, scheme, &mut rng)?);
                s1 += x;
                s2 += x * x;
            }
            let m = mc.samples as f64;
            let mean = s1 / m;
            let var = ((s2 / m - mean * mean) * m / (m - 1.0)).max(0.0);
            Ok(Acceptance { value: mean, stderr: (var / m).sqrt(), exact: false })
        }
        Err(e) => Err(e),
    }
}

/// Pr[x ∈ drafts] for every token x (q normalised), in closed form: topk (the top n), iid
/// (1 − (1 − q)^n), greedy and spechub (the fixed tokens, then q(x)/q(rest) for one draw from
/// the rest), wor with n ≤ 2, and cp (q(x)·e_{n−1}(q without x)/e_n(q) from prefix and suffix
/// elementary symmetric polynomials). None where there is none (wor n ≥ 3) or the CP DP would
/// underflow (e_n(q) < 1e-250). Remaining masses are summed, never taken as 1 − (drawn mass).
fn inclusion(q: &[f64], n: usize, scheme: Scheme) -> Option<Vec<f64>> {
    let v = q.len();
    Some(match scheme {
        Scheme::TopK => {
            let mut pi = vec![0.0; v];
            top_k_of(q, n).into_iter().for_each(|i| pi[i] = 1.0);
            pi
        }
        Scheme::Iid => q.iter().map(|&x| -(n as f64 * (-x).ln_1p()).exp_m1()).collect(),
        Scheme::Greedy | Scheme::SpecHub => {
            // spechub: x ≠ hub a is drafted first (q(x)) or after a (q(a) q(x)/(1 − q(a))), in
            // total q(x)/(1 − q(a)): greedy's formula with the hub as its one fixed token.
            let fixed = top_k_of(q, if scheme == Scheme::SpecHub { 1 } else { n - 1 });
            let mut pi = q.to_vec();
            fixed.iter().for_each(|&i| pi[i] = 0.0);
            let rest: f64 = pi.iter().sum();
            pi.iter_mut().for_each(|x| *x = if rest > 0.0 { *x / rest } else { 0.0 });
            fixed.iter().for_each(|&i| pi[i] = 1.0);
            pi
        }
        Scheme::Wor if n == 1 => q.to_vec(),
        Scheme::Wor if n == 2 => {
            // π(x) = q(x) (1 + Σ_{y≠x} q(y)/(1 − q(y))), with 1 − q(y) the sum of the others.
            let imax = (0..v).max_by(|&a, &b| q[a].total_cmp(&q[b]).then(b.cmp(&a)))?;
            let rest_max: f64 = (0..v).filter(|&i| i != imax).map(|i| q[i]).sum();
            let om = |y: usize| if y == imax { rest_max } else { 1.0 - q[y] };
            let b_rest: f64 = (0..v).filter(|&y| y != imax && q[y] > 0.0).map(|y| q[y] / om(y)).sum();
            // q(x)·q(max)/(1 − q(max)) as q(max)·(q(x)/rest): q(max)/rest overflows for a
            // subnormal rest, while q(x)/rest ≤ 1 for x ≠ max.
            let by_max = |x: usize| if rest_max > 0.0 { q[imax] * (q[x] / rest_max) } else { 0.0 };
            (0..v).map(|x| if x == imax { q[x] * (1.0 + b_rest) } else { q[x] * (1.0 + b_rest - q[x] / om(x)) + by_max(x) }).collect()
        }
        Scheme::Wor => return None,
        Scheme::Cp => {
            // pre[i][k] = e_k(q_0..q_{i−1}), suf[i][k] = e_k(q_i..q_{V−1}), k ≤ n − 1.
            let w = n;
            if (v + 1).saturating_mul(w) > 1 << 24 {
                return None; // the tables would be large: enumerate or estimate instead
            }
            let mut pre = vec![0.0f64; (v + 1) * w];
            let mut suf = vec![0.0f64; (v + 1) * w];
            pre[0] = 1.0;
            suf[v * w] = 1.0;
            for i in 0..v {
                pre[(i + 1) * w] = 1.0;
                for k in 1..w {
                    pre[(i + 1) * w + k] = pre[i * w + k] + q[i] * pre[i * w + k - 1];
                }
            }
            for i in (0..v).rev() {
                suf[i * w] = 1.0;
                for k in 1..w {
                    suf[i * w + k] = suf[(i + 1) * w + k] + q[i] * suf[(i + 1) * w + k - 1];
                }
            }
            // e_n(q) = Σ_x q(x) e_{n−1}(q without x) / n.
            let loo: Vec<f64> = (0..v).map(|x| (0..w).map(|j| pre[x * w + j] * suf[(x + 1) * w + (w - 1 - j)]).sum()).collect();
            let e_n: f64 = (0..v).map(|x| q[x] * loo[x]).sum::<f64>() / n as f64;
            if e_n.is_nan() || e_n < 1e-250 {
                return None;
            }
            (0..v).map(|x| q[x] * loo[x] / e_n).collect()
        }
    })
}

/// K-SEQ's ρ for (p, q, n): the one the verifier uses (the upper end of the solver's final
/// bracket, where f(ρ) = 1 − (1 − β(ρ))ⁿ − ρβ(ρ) ≤ 0 holds; within ulps of the root ρ* ∈ [1, n]).
/// Validated like `verifier_acceptance(.., Kseq)`.
pub fn kseq_rho<T: Real>(p: &[T], q: &[T], n: usize) -> Result<f64> {
    let (sp, sq) = prep::check(p, q, n, Scheme::Iid)?;
    Ok(kseq::solve(p, q, 1.0 / sp, 1.0 / sq, n).0)
}
