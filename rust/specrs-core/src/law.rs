//! Explicit joint laws of the n ordered drafts of each [`Scheme`], by enumeration.
//!
//! This is the ground truth that tests compare against and the input of the optimal verifier
//! when a scheme (rather than an explicit law) is given. It enumerates tuples, so it is for small
//! supports only; [`MAX_LAW_TUPLES`] bounds the work with a clear error.

use crate::names::Scheme;
use crate::sample::Sampler;
use crate::verify::kernel::top_k_of;
use crate::{limits, validate, Error, Real, Result};

/// Largest number of tuples [`scheme_law`] will enumerate.
pub use crate::limits::MAX_LAW_TUPLES;

/// A finite joint law over ordered n-tuples of token ids: row r is `tuples[r*n..(r+1)*n]` with
/// probability `probs[r]`. Only rows with positive probability are listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Law {
    pub n: usize,
    pub tuples: Vec<usize>,
    pub probs: Vec<f64>,
}

impl Law {
    pub fn len(&self) -> usize {
        self.probs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probs.is_empty()
    }

    pub fn row(&self, r: usize) -> &[usize] {
        &self.tuples[r * self.n..(r + 1) * self.n]
    }

    fn push(&mut self, tuple: &[usize], prob: f64) {
        if prob > 0.0 {
            self.tuples.extend_from_slice(tuple);
            self.probs.push(prob);
        }
    }
}

/// Validates (q, n) for `scheme` the way every public function does: q a distribution, n ≥ 1,
/// n ≤ support for distinct-token schemes, n = 2 for SpecHub. Returns q's sum and support size
/// (one pass, [`validate::row`]).
pub fn check_scheme_args<T: Real>(q: &[T], n: usize, scheme: Scheme) -> Result<validate::RowStats> {
    let s = validate::row("q", q)?;
    check_n(n, scheme, s.positive)?;
    Ok(s)
}

/// The n part of [`check_scheme_args`], given the number of positive entries of q.
pub fn check_n(n: usize, scheme: Scheme, q_support: usize) -> Result<()> {
    validate::positive_n("n", n)?;
    if let Some(k) = scheme.row().n {
        if n != k {
            return Err(Error::invalid("n", format!("is {n} but the {} scheme is defined for n = {k} only", scheme.as_str())));
        }
    }
    if scheme.distinct() {
        validate::n_within("n", n, "q", q_support)?;
    }
    Ok(())
}

fn count_tuples(s: u64, n: u64, scheme: Scheme) -> u64 {
    let mut c: u64 = 1;
    match scheme {
        Scheme::Iid => {
            // Stops once saturated: n may be huge (2^40) where only the count is asked for.
            for _ in 0..n {
                c = c.saturating_mul(s);
                if c == u64::MAX || s <= 1 {
                    break;
                }
            }
        }
        Scheme::Wor => {
            for j in 0..n {
                c = c.saturating_mul(s - j);
            }
        }
        Scheme::Cp => {
            for j in 0..n {
                c = c.saturating_mul(s - j) / (j + 1);
            }
        }
        Scheme::Greedy => c = s - n + 1,
        Scheme::SpecHub => c = 2 * s,
        Scheme::TopK => c = 1,
    }
    c
}

/// The joint law of the n drafts, in draw order, for `scheme`:
/// - iid: Π_j q(x_j);
/// - wor: Π_j q(x_j) / Σ_{i ∉ {x_1..x_{j−1}}} q(i) over distinct tokens (successive sampling);
/// - cp: Π_{i∈S} q(i) / e_n(q) over n-subsets S, listed in ascending token order;
/// - greedy: (top_1, …, top_{n−1}, x) with probability q(x) / Σ_{i ∉ top} q(i) for x outside the top;
/// - spechub (n = 2, hub a = argmax q): (i, a) with q(i) and (a, i) with q(a) · q(i) / Σ_{j≠a} q(j);
/// - topk: the n largest entries of q, largest first (ties to the lower id), with probability 1.
///
/// Every conditional divides by the mass that remains as [`Sampler::rest`] sums it (the law of the
/// sampler `draft` uses, never 1 − Σ drawn), each factor ≤ 1 is formed before it is multiplied in
/// (no overflow from subnormal masses), and the probabilities are finally divided by their own
/// sum, so that the law is normalised to rounding whatever the row.
pub fn scheme_law<T: Real>(q: &[T], n: usize, scheme: Scheme) -> Result<Law> {
    check_scheme_args(q, n, scheme)?;
    // The enumeration recurses once per draft (checked first: counting the tuples of a huge n
    // must not be the hang it guards against).
    if matches!(scheme, Scheme::Iid | Scheme::Wor | Scheme::Cp) {
        limits::check_count("n", n, limits::MAX_RECURSION_DEPTH, "the number of drafts of an enumerated law")?;
    }
    let qf: Vec<f64> = q.iter().map(|x| x.to_f64()).collect();
    let support: Vec<usize> = (0..qf.len()).filter(|&i| qf[i] > 0.0).collect();
    let count = count_tuples(support.len() as u64, n as u64, scheme);
    if count > MAX_LAW_TUPLES {
        return Err(Error::too_large(
            "q",
            format!(
                "the {} law of n = {n} drafts over {} support tokens has {count} tuples (limit {MAX_LAW_TUPLES})",
                scheme.as_str(),
                support.len()
            ),
        ));
    }
    // The table holds count × n ids.
    limits::check_count("n", (count as usize).saturating_mul(n), limits::MAX_DRAFT_ENTRIES, "tuples × drafts of the law")?;
    let mut law = Law { n, tuples: Vec::new(), probs: Vec::new() };
    let mut tuple = Vec::with_capacity(n);
    let mut s = Sampler::of(&qf);
    let total = s.rest();
    match scheme {
        Scheme::Iid => iid_rec(&qf, total, &support, n, 1.0, &mut tuple, &mut law),
        Scheme::Wor => wor_rec(&mut s, &support, n, 1.0, &mut tuple, &mut law),
        Scheme::Cp => cp_law(&qf, &support, n, &mut law),
        Scheme::Greedy => {
            let top = top_k_of(&qf, n - 1);
            top.iter().for_each(|&x| s.exclude(x));
            let rest = s.rest();
            tuple.extend_from_slice(&top);
            for &x in &support {
                if !s.is_excluded(x) {
                    tuple.push(x);
                    law.push(&tuple, qf[x] / rest);
                    tuple.pop();
                }
            }
        }
        Scheme::SpecHub => {
            let a = top_k_of(&qf, 1)[0];
            s.exclude(a);
            let (qa, rest) = (qf[a] / total, s.rest());
            for &i in &support {
                if i != a {
                    law.push(&[i, a], qf[i] / total);
                    law.push(&[a, i], qa * (qf[i] / rest));
                }
            }
        }
        Scheme::TopK => law.push(&top_k_of(&qf, n), 1.0),
    }
    let z: f64 = law.probs.iter().sum();
    law.probs.iter_mut().for_each(|x| *x /= z);
    Ok(law)
}

fn iid_rec(q: &[f64], total: f64, support: &[usize], left: usize, prob: f64, t: &mut Vec<usize>, law: &mut Law) {
    if left == 0 {
        law.push(t, prob);
        return;
    }
    for &x in support {
        t.push(x);
        iid_rec(q, total, support, left - 1, prob * (q[x] / total), t, law);
        t.pop();
    }
}

/// Successive sampling: the drafts so far are excluded from `s`, whose `rest` is the mass left.
fn wor_rec(s: &mut Sampler<'_, f64>, support: &[usize], left: usize, prob: f64, t: &mut Vec<usize>, law: &mut Law) {
    if left == 0 {
        law.push(t, prob);
        return;
    }
    let (q, rest) = (s.vals(), s.rest());
    for &x in support {
        if s.is_excluded(x) {
            continue;
        }
        let p = prob * (q[x] / rest);
        t.push(x);
        s.exclude(x);
        wor_rec(s, support, left - 1, p, t, law);
        s.include(x);
        t.pop();
    }
}

/// Conditional Poisson: every n-subset of the support with its log-weight Σ_{i∈S} ln q(i)
/// (products of n tiny entries underflow; their ratios do not), as exp(log-weight − max) before
/// the final normalisation.
fn cp_law(q: &[f64], support: &[usize], n: usize, law: &mut Law) {
    let mut subsets: Vec<(Vec<usize>, f64)> = Vec::new();
    let mut t = Vec::with_capacity(n);
    cp_rec(q, support, 0, n, 0.0, &mut t, &mut subsets);
    let top = subsets.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    for (t, lw) in subsets {
        law.push(&t, (lw - top).exp());
    }
}

fn cp_rec(q: &[f64], support: &[usize], start: usize, left: usize, lw: f64, t: &mut Vec<usize>, out: &mut Vec<(Vec<usize>, f64)>) {
    if left == 0 {
        out.push((t.clone(), lw));
        return;
    }
    for k in start..support.len() {
        if support.len() - k < left {
            break;
        }
        let x = support[k];
        t.push(x);
        cp_rec(q, support, k + 1, left - 1, lw + q[x].ln(), t, out);
        t.pop();
    }
}

/// Test reference for every α* in the crate: 1 + min over all H ⊆ {0..V} of
/// p(H) − Pr_law[all drafts ∈ H] (subset selection, Hu et al. eq. 8), by brute force (V ≤ 20).
#[cfg(test)]
pub(crate) fn brute_alpha(p: &[f64], law: &Law) -> f64 {
    let v = p.len();
    assert!(v <= 20, "brute force over 2^{v} subsets");
    let mut best = 0.0f64;
    for h in 0u32..(1 << v) {
        let ph: f64 = (0..v).filter(|&i| h >> i & 1 == 1).map(|i| p[i]).sum();
        let qh: f64 = (0..law.len()).filter(|&r| law.row(r).iter().all(|&x| h >> x & 1 == 1)).map(|r| law.probs[r]).sum();
        best = best.min(ph - qh);
    }
    1.0 + best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(l: &Law) -> f64 {
        l.probs.iter().sum()
    }

    #[test]
    fn laws_are_normalised_and_have_the_right_rows() {
        let q = [0.5, 0.3, 0.2, 0.0];
        for (scheme, n, rows) in [
            (Scheme::Iid, 2, 9),
            (Scheme::Wor, 2, 6),
            (Scheme::Cp, 2, 3),
            (Scheme::Greedy, 2, 2),
            (Scheme::Greedy, 3, 1),
            (Scheme::SpecHub, 2, 4),
        ] {
            let l = scheme_law(&q, n, scheme).unwrap();
            assert_eq!(l.len(), rows, "{scheme:?}");
            assert!((total(&l) - 1.0).abs() < 1e-12, "{scheme:?}");
            assert!(l.tuples.iter().all(|&x| x != 3), "q = 0 token drafted by {scheme:?}");
        }
    }

    #[test]
    fn wor_matches_the_reference_example() {
        // docs/theory.md §2.3: q = (0.5, 0.3, 0.2), n = 2, H = {0, 1}: Pr[both drafts in H] = 0.5143.
        let l = scheme_law(&[0.5, 0.3, 0.2], 2, Scheme::Wor).unwrap();
        let in_h: f64 = (0..l.len()).filter(|&r| l.row(r).iter().all(|&x| x < 2)).map(|r| l.probs[r]).sum();
        let exact = 0.5 * (0.3 / 0.5) + 0.3 * (0.5 / 0.7);
        assert!((in_h - exact).abs() < 1e-12);
    }

    #[test]
    fn greedy_and_spechub_contain_the_top_token() {
        let q = [0.1, 0.6, 0.3];
        let g = scheme_law(&q, 2, Scheme::Greedy).unwrap();
        assert!((0..g.len()).all(|r| g.row(r)[0] == 1));
        let s = scheme_law(&q, 2, Scheme::SpecHub).unwrap();
        assert!((0..s.len()).all(|r| s.row(r).contains(&1)));
    }

    #[test]
    fn bad_arguments_and_size_limit() {
        assert_eq!(scheme_law(&[0.5, 0.5], 3, Scheme::Wor).unwrap_err().arg(), "n");
        assert_eq!(scheme_law(&[0.5, 0.5], 3, Scheme::SpecHub).unwrap_err().arg(), "n");
        assert!(scheme_law(&[0.5, 0.5], 0, Scheme::Iid).is_err());
        let q = vec![1.0 / 100.0; 100];
        assert!(matches!(scheme_law(&q, 4, Scheme::Iid), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn a_huge_n_is_refused_at_once() {
        // One support token: the tuple count 1^n never saturates, so counting it n times hung
        // (found by tests/fuzz.rs once n was no longer capped at 2^20 up front).
        for n in [1usize << 40, usize::MAX] {
            let e = scheme_law(&[1.0, 0.0], n, Scheme::Iid).unwrap_err();
            assert!(matches!(e, Error::TooLarge { .. }) && e.arg() == "n", "{e}");
        }
        assert_eq!(count_tuples(3, u64::MAX, Scheme::Iid), u64::MAX);
    }
}
