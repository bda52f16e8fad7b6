//! Draft samplers: the n drafts of one position, in draw order, for every [`Scheme`].
//!
//! All use the fixed core [`Rng`] (xoshiro256++ seeded by SplitMix64) and inverse-CDF picks with
//! a fixed summation order, so a seed gives the same drafts on every platform. Each draw costs
//! one uniform and one O(V) pass (skipping whole blocks whose mass lies below the target).
//!
//! - `iid`: n independent draws from q.
//! - `wor`: successive sampling without replacement: draw j from q with the earlier drafts
//!   removed, renormalised. This is the law of Gumbel-top-k (Kool et al. 2019; docs/theory.md §3) and of
//!   `torch.multinomial(q, n, replacement=False)`, in draw order; we draw it sequentially (n passes)
//!   instead of perturbing all V scores.
//! - `greedy` (Hu et al. 2025, §5.1): the top n−1 tokens of q, largest first (lowest id on ties),
//!   then one draw from q without them.
//! - `spechub` (Sun et al. 2024), n = 2: with hub a = argmax q (lowest id on ties), x₁ ~ q; the
//!   drafts are (x₁, a) if x₁ ≠ a, else (a, x₂) with x₂ ~ q without a.
//! - `topk`: the n largest entries of q, largest first (lowest id on ties); no randomness.
//! - `cp` (conditional Poisson): an n-subset S with probability ∏_{i∈S} q(i) / e_n(q), returned
//!   in **ascending token order** (the law is over sets). Sampled exactly by the sequential method:
//!   with e_k(i) the k-th elementary symmetric polynomial of q(i..V), the smallest member is i with
//!   probability q(i) e_{n−1}(i+1) / e_n(0), the next one j > i with q(j) e_{n−2}(j+1) / e_{n−1}(i+1),
//!   and so on (n picks over a (V+1)×(n+1) table).

use rayon::prelude::*;

use crate::law::check_scheme_args;
use crate::names::Scheme;
use crate::verify::kernel::{pick2, pick_by};
use crate::{validate, Error, Real, Result, Rng};

/// n draft token ids from q for `scheme`, in draw order (ascending for `cp`).
pub fn draft<T: Real>(q: &[T], n: usize, scheme: Scheme, rng: &mut Rng) -> Result<Vec<usize>> {
    let qs = check_scheme_args(q, n, scheme)?.sum;
    Ok(match scheme {
        Scheme::Iid => (0..n).map(|_| pick(q, qs, rng, &[])).collect(),
        Scheme::Wor => {
            let mut out = Vec::with_capacity(n);
            let mut left = qs;
            for _ in 0..n {
                let x = pick(q, left, rng, &out);
                left -= q[x].to_f64();
                out.push(x);
            }
            out
        }
        Scheme::Greedy => {
            let mut out = top_small(q, n - 1);
            let left = qs - out.iter().map(|&x| q[x].to_f64()).sum::<f64>();
            let x = pick(q, left, rng, &out);
            out.push(x);
            out
        }
        Scheme::SpecHub => {
            let a = top_small(q, 1)[0];
            let x1 = pick(q, qs, rng, &[]);
            if x1 != a {
                vec![x1, a]
            } else {
                vec![a, pick(q, qs - q[a].to_f64(), rng, &[a])]
            }
        }
        Scheme::Cp => conditional_poisson(q, n, rng),
        Scheme::TopK => top_small(q, n),
    })
}

/// One draw from q with the ids in `excluded` removed; `total` = Σq minus their mass.
fn pick<T: Real>(q: &[T], total: f64, rng: &mut Rng, excluded: &[usize]) -> usize {
    let u = rng.uniform();
    let adj: Vec<(usize, f64)> = excluded.iter().map(|&e| (e, -q[e].to_f64())).collect();
    // check_scheme_args guarantees enough positive mass outside `excluded`.
    pick2(q, q, total, u, &adj, |x, _| x).unwrap_or(0)
}

/// The k largest entries of q, largest first, lowest id on ties (same as `law::top_tokens`), by
/// one scan with a k-slot insertion list: O(V·k) worst case, no V-length allocation.
pub(crate) fn top_small<T: Real>(q: &[T], k: usize) -> Vec<usize> {
    let mut top: Vec<usize> = Vec::with_capacity(k + 1);
    if k == 0 {
        return top;
    }
    for (i, &x) in q.iter().enumerate() {
        let x = x.to_f64();
        if top.len() == k && x <= q[top[k - 1]].to_f64() {
            continue;
        }
        // Strictly larger values go before; equal values keep the lower id first.
        let pos = top.iter().position(|&t| x > q[t].to_f64()).unwrap_or(top.len());
        top.insert(pos, i);
        top.truncate(k);
    }
    top
}

fn conditional_poisson<T: Real>(q: &[T], n: usize, rng: &mut Rng) -> Vec<usize> {
    let v = q.len();
    // Scale by max q: the law is unchanged and the e_k stay away from under/overflow.
    let m = q.iter().map(|x| x.to_f64()).fold(0.0, f64::max);
    let w = |i: usize| q[i].to_f64() / m;
    let k1 = n + 1;
    // e[i*k1 + k] = e_k(w_i, …, w_{V−1}).
    let mut e = vec![0.0f64; (v + 1) * k1];
    e[v * k1] = 1.0;
    for i in (0..v).rev() {
        e[i * k1] = 1.0;
        for k in 1..k1 {
            e[i * k1 + k] = e[(i + 1) * k1 + k] + w(i) * e[(i + 1) * k1 + k - 1];
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for left in (1..=n).rev() {
        let total = e[start * k1 + left];
        let u = rng.uniform();
        let rel = pick_by(v - start, total, u, |j| {
            let i = start + j;
            w(i) * e[(i + 1) * k1 + left - 1]
        })
        .unwrap_or(0);
        out.push(start + rel);
        start += rel + 1;
    }
    out
}

/// One draft tuple from an explicit joint law: row r of `tuples` (rows × n, row-major) with
/// probability `probs[r]`. Returns the row index.
pub fn draft_explicit_row(probs: &[f64], rng: &mut Rng) -> Result<usize> {
    let total = validate::distribution("probs", probs)?;
    let u = rng.uniform();
    Ok(pick_by(probs.len(), total, u, |i| probs[i]).unwrap_or(0))
}

/// Checks an explicit law's table: `tuples` has `probs.len()` rows of n ≥ 1 entries.
pub fn check_table(tuples_len: usize, n: usize, rows: usize) -> Result<()> {
    if n == 0 || tuples_len != rows * n {
        return Err(Error::invalid("drafts", format!("must be a (rows, n) table with one row per entry of `probs` ({rows} rows), n ≥ 1")));
    }
    Ok(())
}

/// [`draft`] for each row of q (rows × V, row-major) in parallel; row r uses
/// `Rng::for_stream(seed, r)`. Returns rows × n ids, row-major.
pub fn draft_batch<T: Real>(q: &[T], v: usize, n: usize, scheme: Scheme, seed: u64) -> Result<Vec<usize>> {
    if v == 0 || q.len() % v != 0 {
        return Err(Error::invalid("q", "must have shape (rows, V) with V ≥ 1"));
    }
    let rows: Vec<Result<Vec<usize>>> = (0..q.len() / v)
        .into_par_iter()
        .map(|r| draft(&q[r * v..(r + 1) * v], n, scheme, &mut Rng::for_stream(seed, r as u64)).map_err(|e| e.in_row(r)))
        .collect();
    let mut out = Vec::with_capacity(q.len() / v * n);
    for r in rows {
        out.extend(r?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::{scheme_law, top_tokens};
    use std::collections::HashMap;

    /// Empirical frequencies of the draft tuples match `scheme_law` (ground truth) within 5 sd.
    #[test]
    fn every_scheme_samples_its_explicit_law() {
        let q = [0.35, 0.0, 0.25, 0.25, 0.1, 0.05];
        let draws = 100_000;
        for scheme in Scheme::ALL {
            for n in 1..=3usize {
                if scheme == Scheme::SpecHub && n != 2 {
                    continue;
                }
                let law = scheme_law(&q, n, scheme).unwrap();
                let mut rng = Rng::new(11);
                let mut counts: HashMap<Vec<usize>, usize> = HashMap::new();
                for _ in 0..draws {
                    *counts.entry(draft(&q, n, scheme, &mut rng).unwrap()).or_default() += 1;
                }
                let mut seen = 0;
                for r in 0..law.len() {
                    let c = counts.get(law.row(r)).copied().unwrap_or(0);
                    seen += c;
                    let (f, pr) = (c as f64 / draws as f64, law.probs[r]);
                    let sd = (pr * (1.0 - pr) / draws as f64).sqrt();
                    assert!((f - pr).abs() <= 5.0 * sd + 1e-12, "{scheme:?} n={n} {:?}: {f} vs {pr}", law.row(r));
                }
                assert_eq!(seen, draws, "{scheme:?} drew a tuple outside its law");
            }
        }
    }

    #[test]
    fn top_small_matches_top_tokens_and_seeds_reproduce() {
        let q = [0.1, 0.3, 0.1, 0.3, 0.2];
        for k in 0..=5 {
            assert_eq!(top_small(&q, k), top_tokens(&q, k));
        }
        let a = draft(&q, 3, Scheme::Wor, &mut Rng::new(8)).unwrap();
        assert_eq!(a, draft(&q, 3, Scheme::Wor, &mut Rng::new(8)).unwrap());
        let b = draft_batch(&[q, q].concat(), 5, 2, Scheme::Cp, 4).unwrap();
        assert_eq!(&b[2..], &draft(&q, 2, Scheme::Cp, &mut Rng::for_stream(4, 1)).unwrap()[..]);
        assert!(draft(&q, 6, Scheme::Wor, &mut Rng::new(0)).is_err());
        assert!(draft(&q, 3, Scheme::SpecHub, &mut Rng::new(0)).is_err());
        assert!(draft_explicit_row(&[0.5, 0.6], &mut Rng::new(0)).is_err());
    }
}
