//! Exact acceptance rates α = Pr[the emitted token is one of the drafts] of the node verifiers
//! (mdsd.md §6), for the draft scheme each verifier is defined with.
//!
//! | verifier | scheme | α |
//! |---|---|---|
//! | sd (n = 1) | any | Σ min(p, q) |
//! | rrs (SpecInfer) | iid | 1 − N(a_{n+1}), a_1 = 0, a_{k+1} = a_k + N(a_k), N(a) = Σ(p − a q)_+ (= 1 − Π(1 − r_k) of Thomas et al. Alg. 9) |
//! | rrs_wor (RSD) | wor | exact enumeration or Monte Carlo, see [`super::rrs_wor`] |
//! | kseq (SpecTr) | iid | 1 − (1 − β(ρ*))^n (as −expm1(n·ln(1 − β))), β(ρ) = Σ min(p/ρ, q), ρ* ∈ [1, n] the root of 1 − (1 − β)^n = ρβ |
//! | greedy (Hu et al.) | greedy | Theorem 7 = α* of the greedy law |
//! | spechub (n = 2) | spechub | p(a) + Σ min(p, q') = α* of the SpecHub law |
//! | match (top-n drafts) | — | p(Top_n(q)) |
//! | optimal | any | α* of the scheme |

use super::{prep, rrs_wor, value_unchecked};
use crate::law::{check_n, top_tokens};
use crate::names::{Scheme, Verifier};
use crate::{Error, Real, Result, Rng};

/// An acceptance rate: exact (stderr = 0) or a Monte-Carlo estimate with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acceptance {
    pub value: f64,
    pub stderr: f64,
    pub exact: bool,
}

impl Acceptance {
    fn exact(value: f64) -> Self {
        Acceptance { value, stderr: 0.0, exact: true }
    }
}

/// Monte-Carlo settings for verifiers without a closed form (rrs_wor beyond the exact limit).
/// Row `row` of a batch uses the stream `Rng::for_stream(seed, row)`.
#[derive(Debug, Clone, Copy)]
pub struct MonteCarlo {
    pub samples: usize,
    pub seed: u64,
    /// Largest exact enumeration, in visited rejected-draft sequences.
    pub exact_nodes: usize,
}

impl Default for MonteCarlo {
    fn default() -> Self {
        MonteCarlo { samples: 20_000, seed: 0, exact_nodes: rrs_wor::EXACT_NODES }
    }
}

/// The draft scheme `verifier` is defined for, checking a user-given `scheme` against it.
pub fn verifier_scheme(verifier: Verifier, scheme: Option<Scheme>) -> Result<Option<Scheme>> {
    let want = match verifier {
        Verifier::Sd => {
            return match scheme {
                Some(Scheme::SpecHub) => Err(Error::invalid(
                    "scheme",
                    "verifier \"sd\" uses one draft, and the spechub scheme needs n = 2",
                )),
                s => Ok(Some(s.unwrap_or(Scheme::Iid))),
            }
        }
        Verifier::Rrs | Verifier::Kseq => Scheme::Iid,
        Verifier::RrsWor => Scheme::Wor,
        Verifier::Greedy => Scheme::Greedy,
        Verifier::SpecHub => Scheme::SpecHub,
        Verifier::Optimal => {
            return match scheme {
                Some(s) => Ok(Some(s)),
                None => Err(Error::invalid("scheme", "verifier \"optimal\" needs the draft scheme (e.g. scheme=\"iid\")")),
            }
        }
        Verifier::Match => {
            return match scheme {
                None => Ok(None),
                Some(s) => Err(Error::invalid(
                    "scheme",
                    format!("verifier \"match\" verifies the deterministic top-n drafts of q; it takes no scheme (got {:?})", s.as_str()),
                )),
            }
        }
    };
    match scheme {
        Some(s) if s != want => Err(Error::invalid(
            "scheme",
            format!("verifier {:?} is defined for scheme {:?}, not {:?}", verifier.as_str(), want.as_str(), s.as_str()),
        )),
        _ => Ok(Some(want)),
    }
}

/// Exact (or, for rrs_wor above the enumeration limit, estimated) probability that `verifier`
/// accepts one of the n drafts. `row` selects the random stream of a batch row.
pub fn verifier_acceptance<T: Real>(
    p: &[T],
    q: &[T],
    n: usize,
    verifier: Verifier,
    scheme: Option<Scheme>,
    mc: &MonteCarlo,
    row: u64,
) -> Result<Acceptance> {
    let scheme = verifier_scheme(verifier, scheme)?;
    let (sp, sq) = prep::check(p, q, n, scheme.unwrap_or(Scheme::Cp))?;
    if verifier == Verifier::Sd && n != 1 {
        return Err(Error::invalid("n", format!("is {n} but verifier \"sd\" verifies a single draft (n = 1)")));
    }
    let pf: Vec<f64>;
    let qf: Vec<f64>;
    Ok(match verifier {
        Verifier::Sd => Acceptance::exact(prep::overlap(p, q, sp, sq)),
        Verifier::Greedy | Verifier::SpecHub | Verifier::Optimal => {
            Acceptance::exact(value_unchecked(p, q, n, scheme.unwrap_or(Scheme::Iid), sp, sq))
        }
        Verifier::Match => {
            // p and q are validated above; only n ≤ |supp q| (n distinct top tokens) is left.
            check_n(n, Scheme::Cp, crate::validate::support_size(q))?;
            Acceptance::exact(top_tokens(q, n).iter().map(|&i| p[i].to_f64() * sp).sum())
        }
        Verifier::Rrs => {
            pf = p.iter().map(|x| x.to_f64() * sp).collect();
            qf = q.iter().map(|x| x.to_f64() * sq).collect();
            Acceptance::exact(rrs(&pf, &qf, n))
        }
        Verifier::Kseq => {
            pf = p.iter().map(|x| x.to_f64() * sp).collect();
            qf = q.iter().map(|x| x.to_f64() * sq).collect();
            let rho = kseq_rho_f64(&pf, &qf, n);
            Acceptance::exact(-(n as f64 * (-beta(&pf, &qf, rho).min(1.0)).ln_1p()).exp_m1())
        }
        Verifier::RrsWor => {
            pf = p.iter().map(|x| x.to_f64() * sp).collect();
            qf = q.iter().map(|x| x.to_f64() * sq).collect();
            let curve = rrs_wor::Curve::new(&pf, &qf);
            match rrs_wor::exact_rejection(&curve, n, mc.exact_nodes) {
                Some(rej) => Acceptance::exact(1.0 - rej),
                None => {
                    let mut rng = Rng::for_stream(mc.seed, row);
                    let (rej, se) = rrs_wor::sampled_rejection(&curve, n, mc.samples, &mut rng);
                    Acceptance { value: 1.0 - rej, stderr: se, exact: false }
                }
            }
        }
    })
}

/// N(a) = Σ (p − a q)_+ in O(V).
fn big_n(p: &[f64], q: &[f64], a: f64) -> f64 {
    p.iter().zip(q).map(|(&x, &y)| (x - a * y).max(0.0)).sum()
}

/// RRS with replacement: p_{k+1} = norm((p_k − q)_+) is (p − a_{k+1} q)_+ / N(a_{k+1}) with
/// a_{k+1} = a_k + N(a_k), and Pr[reject all] = Π N(a_{k+1})/N(a_k) = N(a_{n+1}).
fn rrs(p: &[f64], q: &[f64], n: usize) -> f64 {
    let (mut a, mut nk) = (0.0f64, 1.0f64);
    for _ in 0..n {
        a += nk;
        let next = big_n(p, q, a);
        if next <= 0.0 {
            return 1.0;
        }
        if next == nk {
            // Only tokens with q = 0 are left in the residual: N stays p(q = 0) from here on
            // (and a huge n must not loop).
            break;
        }
        nk = next;
    }
    1.0 - nk
}

fn beta(p: &[f64], q: &[f64], rho: f64) -> f64 {
    p.iter().zip(q).map(|(&x, &y)| (x / rho).min(y)).sum()
}

/// K-SEQ's ρ* ∈ [1, n]: the root of g(ρ) = 1 − (1 − β(ρ))^n − ρ β(ρ), found by bisection.
/// g(1) ≥ 0 and g(n) ≤ 0 (union bound); ρβ(ρ) = Σ min(p, ρq) is increasing and β decreasing, so g
/// is decreasing and the root is unique. Evaluated without cancellation as
/// g(ρ) = Σ(p − ρq)_+ − exp(n·ln(1 − β(ρ))) (using Σp = 1), which stays accurate for huge n.
fn kseq_rho_f64(p: &[f64], q: &[f64], n: usize) -> f64 {
    let g = |rho: f64| {
        let (mut over, mut b) = (0.0f64, 0.0f64);
        for (&x, &y) in p.iter().zip(q) {
            over += (x - rho * y).max(0.0);
            b += (x / rho).min(y);
        }
        over - (n as f64 * (-b.min(1.0)).ln_1p()).exp()
    };
    let (mut lo, mut hi) = (1.0f64, n as f64);
    if g(lo) <= 0.0 {
        return lo;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if g(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// K-SEQ's ρ* for (p, q, n) (validated like `verifier_acceptance(.., Kseq)`).
pub fn kseq_rho<T: Real>(p: &[T], q: &[T], n: usize) -> Result<f64> {
    let (sp, sq) = prep::check(p, q, n, Scheme::Iid)?;
    let pf: Vec<f64> = p.iter().map(|x| x.to_f64() * sp).collect();
    let qf: Vec<f64> = q.iter().map(|x| x.to_f64() * sq).collect();
    Ok(kseq_rho_f64(&pf, &qf, n))
}
