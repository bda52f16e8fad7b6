//! The exact law of a verifier's output token, by enumeration (small V only).
//!
//! For every draft tuple ī of the scheme's explicit law (`law::scheme_law`) the verifier's own
//! code is run against a *tracer* instead of a random number generator (see
//! `verify::source::Source`): a coin with probability a contributes a·(path probability) to the
//! accepting branch and (1 − a) to the continuing one, and the final residual pick contributes
//! (path probability)·w(x)/Σw to every token x. Because an accepted coin ends a call, a call with
//! C coins has exactly C + 1 paths, enumerated by re-running it with coin k forced to accept. So
//!
//! ```text
//! P(out = x) = Σ_ī p_draft(ī) · P(out = x | ī)   and   α = Σ_ī p_draft(ī) · P(out ∈ ī | ī),
//! ```
//!
//! both exact up to floating-point rounding, of the same arithmetic the sampling path uses.

use crate::law::{check_scheme_args, scheme_law, Law};
use crate::names::resolve_scheme;
use crate::names::{Scheme, Verifier};
use crate::verify::source::Source;
use crate::verify::{verify_with, Outcome};
use crate::{validate, Error, Real, Result};

/// Largest (number of draft tuples) × V × (n + 2) that [`output_distribution`] will enumerate.
pub use crate::limits::MAX_EXACT_WORK;

/// The exact output law of a verifier and its acceptance probability Pr[output ∈ drafts].
#[derive(Debug, Clone, PartialEq)]
pub struct ExactLaw {
    pub probs: Vec<f64>,
    pub acceptance: f64,
}

/// Replays one verifier call with coin `force` accepting and every other coin rejecting.
pub(crate) struct Tracer {
    force: Option<usize>,
    seen: usize,
    prob: f64,
    /// Residual contribution per index (only for the all-reject path).
    out: Vec<f64>,
}

impl Source for Tracer {
    fn coin(&mut self, prob: f64) -> bool {
        let a = prob.clamp(0.0, 1.0);
        let k = self.seen;
        self.seen += 1;
        if self.force == Some(k) {
            self.prob *= a;
            true
        } else {
            self.prob *= 1.0 - a;
            false
        }
    }

    fn pick<T: Real, F: Fn(f64, f64) -> f64>(&mut self, p: &[T], q: &[T], total: f64, ov: &[(usize, f64)], w: F) -> usize {
        if self.force.is_none() {
            // prob · (w̃/total), each ratio ≤ 1: no overflow when the residual mass is tiny.
            let wt = |x: usize| ov.iter().find(|o| o.0 == x).map_or_else(|| w(p[x].to_f64(), q[x].to_f64()), |o| o.1);
            self.out = (0..p.len()).map(|x| self.prob * (wt(x) / total)).collect();
        } else {
            // The forced coin was never reached on this path: it does not exist.
            self.prob = 0.0;
        }
        0
    }
}

/// The explicit law of one verifier call, scaled by `weight`: every (outcome, probability) with
/// nonzero probability. `call` runs the verifier once with the given source; it is replayed once
/// per coin (that coin accepting) plus once with every coin rejecting (the residual pick), so the
/// law is the law of the very code that samples. `drafts` label residual tokens as accepted.
pub(crate) fn call_law<F>(weight: f64, drafts: &[usize], mut call: F) -> Result<Vec<(Outcome, f64)>>
where
    F: FnMut(&mut Tracer) -> Result<Outcome>,
{
    let mut all_reject = Tracer { force: None, seen: 0, prob: weight, out: Vec::new() };
    call(&mut all_reject)?;
    let mut law = Vec::new();
    for k in 0..all_reject.seen {
        let mut tr = Tracer { force: Some(k), seen: 0, prob: weight, out: Vec::new() };
        let o = call(&mut tr)?;
        debug_assert_eq!(tr.seen, k + 1, "an accepted coin must end the call");
        if tr.prob != 0.0 {
            law.push((o, tr.prob));
        }
    }
    for (x, &pr) in all_reject.out.iter().enumerate() {
        if pr != 0.0 {
            law.push((Outcome { token: x, accepted: drafts.iter().position(|&d| d == x) }, pr));
        }
    }
    Ok(law)
}

/// Replays a verifier along one scripted list of decisions (a coin is choice 0 = reject or
/// 1 = accept; a pick is the chosen index) and queues every alternative it meets past the script,
/// so that [`paths`] visits each path of the code once, with its exact probability.
pub(crate) struct Path {
    script: Vec<usize>,
    taken: Vec<usize>,
    branches: Vec<Vec<usize>>,
    prob: f64,
}

impl Path {
    fn decide(&mut self, weights: &[f64]) -> usize {
        let k = self.taken.len();
        let c = if k < self.script.len() {
            self.script[k]
        } else {
            // A decision without positive weight (never reached by a valid call) ends a path of
            // probability 0 rather than panicking.
            let first = weights.iter().position(|&w| w > 0.0).unwrap_or(0);
            for (j, &w) in weights.iter().enumerate() {
                if j != first && w > 0.0 {
                    let mut b = self.taken.clone();
                    b.push(j);
                    self.branches.push(b);
                }
            }
            first
        };
        self.prob *= weights[c];
        self.taken.push(c);
        c
    }
}

impl Source for Path {
    fn coin(&mut self, prob: f64) -> bool {
        let a = prob.clamp(0.0, 1.0);
        self.decide(&[1.0 - a, a]) == 1
    }

    fn pick<T: Real, F: Fn(f64, f64) -> f64>(&mut self, p: &[T], q: &[T], total: f64, ov: &[(usize, f64)], w: F) -> usize {
        let weights: Vec<f64> =
            (0..p.len()).map(|x| ov.iter().find(|o| o.0 == x).map_or_else(|| w(p[x].to_f64(), q[x].to_f64()), |o| o.1) / total).collect();
        self.decide(&weights)
    }
}

/// Every path of `run` with its probability: the exact law of any code written against
/// [`Source`], including rules where a passing coin is followed by more decisions (block
/// verification, walks over several nodes). Cost: one run per path.
pub(crate) fn paths<R, F: FnMut(&mut Path) -> R>(mut run: F) -> Vec<(R, f64)> {
    let mut stack = vec![Vec::new()];
    let mut out = Vec::new();
    while let Some(script) = stack.pop() {
        let mut path = Path { script, taken: Vec::new(), branches: Vec::new(), prob: 1.0 };
        let r = run(&mut path);
        stack.append(&mut path.branches);
        out.push((r, path.prob));
    }
    out
}

/// Adds P(out = · | drafts)·weight into `law` by replaying the verifier on every path.
pub(crate) fn trace<T: Real>(
    verifier: Verifier,
    scheme: Option<Scheme>,
    p: &[T],
    q: &[T],
    drafts: &[usize],
    weight: f64,
    law: &mut ExactLaw,
) -> Result<()> {
    for (o, pr) in call_law(weight, drafts, |tr| verify_with(verifier, scheme, p, q, drafts, tr))? {
        law.probs[o.token] += pr;
        if o.accepted.is_some() {
            law.acceptance += pr;
        }
    }
    Ok(())
}

/// The exact law of the output token of `verifier` when n drafts are drawn from q by `scheme`
/// (the verifier's default scheme when None; required for `optimal`), and its
/// acceptance probability. Enumerates the scheme's draft tuples: small V and n only
/// ([`MAX_EXACT_WORK`]; `Error::TooLarge` above it).
pub fn output_distribution<T: Real>(p: &[T], q: &[T], n: usize, verifier: Verifier, scheme: Option<Scheme>) -> Result<ExactLaw> {
    validate::distribution("p", p)?;
    validate::distribution("q", q)?;
    validate::same_len("p", p.len(), "q", q.len())?;
    let scheme = resolve_scheme(verifier, scheme)?;
    check_scheme_args(q, n, scheme)?;
    verifier.check_n("n", n)?;
    let law = scheme_law(q, n, scheme)?;
    check_work(&law, p.len())?;
    if verifier == Verifier::Optimal {
        return crate::verify::optimal_output_distribution(p, &law);
    }
    let mut out = ExactLaw { probs: vec![0.0; p.len()], acceptance: 0.0 };
    for r in 0..law.len() {
        crate::cancel::check(p.len() * (n + 2))?;
        trace(verifier, Some(scheme), p, q, law.row(r), law.probs[r], &mut out)?;
    }
    // A probability: rounding of the path sums must not push it past 1.
    out.acceptance = out.acceptance.clamp(0.0, 1.0);
    Ok(out)
}

pub(crate) fn check_work(law: &Law, v: usize) -> Result<()> {
    let work = (law.len() as u64).saturating_mul(v as u64).saturating_mul(law.n as u64 + 2);
    if work > MAX_EXACT_WORK {
        return Err(Error::too_large(
            "q",
            format!(
                "enumerating {} draft tuples over V = {v} is {work} steps (limit {MAX_EXACT_WORK}); use a smaller vocabulary or n",
                law.len()
            ),
        ));
    }
    Ok(())
}
