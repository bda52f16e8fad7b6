//! Explicit joint laws of the n ordered drafts of each [`Scheme`], by enumeration.
//!
//! This is the ground truth that tests compare against and the input of the optimal verifier
//! when a scheme (rather than an explicit law) is given. It enumerates tuples, so it is for small
//! supports only; [`MAX_LAW_TUPLES`] bounds the work with a clear error.

use crate::names::Scheme;
use crate::{validate, Error, Real, Result};

/// Largest number of tuples [`scheme_law`] will enumerate.
pub const MAX_LAW_TUPLES: u64 = 2_000_000;

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

/// Indices of the `k` largest entries of `q`, largest first; ties go to the lower index, so the
/// choice is deterministic. O(V + k log k).
pub fn top_tokens<T: Real>(q: &[T], k: usize) -> Vec<usize> {
    let k = k.min(q.len());
    if k == 0 {
        return Vec::new();
    }
    let before = |a: &usize, b: &usize| {
        let (x, y) = (q[*a].to_f64(), q[*b].to_f64());
        y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(b))
    };
    let mut idx: Vec<usize> = (0..q.len()).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, before);
        idx.truncate(k);
    }
    idx.sort_unstable_by(before);
    idx
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
            for _ in 0..n {
                c = c.saturating_mul(s);
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
/// - wor: Π_j q(x_j) / (1 − Σ_{l<j} q(x_l)) over distinct tokens (successive sampling);
/// - cp: Π_{i∈S} q(i) / e_n(q) over n-subsets S, listed in ascending token order;
/// - greedy: (top_1, …, top_{n−1}, x) with probability q(x) / (1 − q(top)) for x outside the top;
/// - spechub (n = 2, hub a = argmax q): (i, a) with q(i) and (a, i) with q(a) q(i) / (1 − q(a));
/// - topk: the n largest entries of q, largest first (ties to the lower id), with probability 1.
pub fn scheme_law<T: Real>(q: &[T], n: usize, scheme: Scheme) -> Result<Law> {
    check_scheme_args(q, n, scheme)?;
    let qf: Vec<f64> = q.iter().map(|x| x.to_f64()).collect();
    let total: f64 = qf.iter().sum();
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
    let mut law = Law { n, tuples: Vec::new(), probs: Vec::new() };
    let mut tuple = Vec::with_capacity(n);
    match scheme {
        Scheme::Iid => iid_rec(&qf, total, &support, n, 1.0, &mut tuple, &mut law),
        Scheme::Wor => wor_rec(&qf, total, &support, n, 1.0, 0.0, &mut tuple, &mut law),
        Scheme::Cp => {
            let mut subsets = Law { n, tuples: Vec::new(), probs: Vec::new() };
            cp_rec(&qf, &support, 0, n, 1.0, &mut tuple, &mut subsets);
            let z: f64 = subsets.probs.iter().sum();
            for r in 0..subsets.len() {
                law.push(subsets.row(r), subsets.probs[r] / z);
            }
        }
        Scheme::Greedy => {
            let top = top_tokens(&qf, n - 1);
            let rest = total - top.iter().map(|&i| qf[i]).sum::<f64>();
            tuple.extend_from_slice(&top);
            for &x in &support {
                if !top.contains(&x) {
                    tuple.push(x);
                    law.push(&tuple, qf[x] / rest);
                    tuple.pop();
                }
            }
        }
        Scheme::SpecHub => {
            let a = top_tokens(&qf, 1)[0];
            let (qa, rest) = (qf[a] / total, total - qf[a]);
            for &i in &support {
                if i != a {
                    law.push(&[i, a], qf[i] / total);
                    law.push(&[a, i], qa * qf[i] / rest);
                }
            }
        }
        Scheme::TopK => law.push(&top_tokens(&qf, n), 1.0),
    }
    Ok(law)
}

fn iid_rec(q: &[f64], total: f64, support: &[usize], left: usize, prob: f64, t: &mut Vec<usize>, law: &mut Law) {
    if left == 0 {
        law.push(t, prob);
        return;
    }
    for &x in support {
        t.push(x);
        iid_rec(q, total, support, left - 1, prob * q[x] / total, t, law);
        t.pop();
    }
}

#[allow(clippy::too_many_arguments)]
fn wor_rec(q: &[f64], total: f64, support: &[usize], left: usize, prob: f64, used: f64, t: &mut Vec<usize>, law: &mut Law) {
    if left == 0 {
        law.push(t, prob);
        return;
    }
    for &x in support {
        if t.contains(&x) {
            continue;
        }
        let p = prob * q[x] / (total - used);
        t.push(x);
        wor_rec(q, total, support, left - 1, p, used + q[x], t, law);
        t.pop();
    }
}

fn cp_rec(q: &[f64], support: &[usize], start: usize, left: usize, w: f64, t: &mut Vec<usize>, law: &mut Law) {
    if left == 0 {
        law.push(t, w);
        return;
    }
    for k in start..support.len() {
        if support.len() - k < left {
            break;
        }
        let x = support[k];
        t.push(x);
        cp_rec(q, support, k + 1, left - 1, w * q[x], t, law);
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
        assert_eq!(top_tokens(&[0.2, 0.4, 0.4], 2), vec![1, 2]);
    }

    #[test]
    fn bad_arguments_and_size_limit() {
        assert_eq!(scheme_law(&[0.5, 0.5], 3, Scheme::Wor).unwrap_err().arg(), "n");
        assert_eq!(scheme_law(&[0.5, 0.5], 3, Scheme::SpecHub).unwrap_err().arg(), "n");
        assert!(scheme_law(&[0.5, 0.5], 0, Scheme::Iid).is_err());
        let q = vec![1.0 / 100.0; 100];
        assert!(matches!(scheme_law(&q, 4, Scheme::Iid), Err(Error::TooLarge { .. })));
    }
}
