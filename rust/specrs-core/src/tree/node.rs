//! Node-level verification on aligned (p, q) rows: a thin adapter onto `crate::verify`, which
//! holds every rule (RRS with and without replacement, Hu et al. greedy, SpecHub, match; see
//! `verify/mod.rs`). The aligned rows are dense vectors over a local index set (the vocabulary,
//! or the sorted union of the supports: ascending token ids, so ties broken "to the lower token
//! id" are broken the same on local indices), the children are local indices in draw order, and
//! the emitted local index is mapped back to its token id. So the cost stays O(|supp p ∪ supp q|)
//! on sparse rows, and the exact law of a node is the law of the code that samples it
//! (`exact::call_law` replays the same verifier).
//!
//! Whatever the rule, the emitted token has law p (docs/theory.md §4).

use super::dist::Aligned;
use crate::verify::run_rows;
use crate::{Result, Rng, Verifier};

/// Outcome of one node: the emitted token, and the child index it accepted (if any).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeOutcome {
    pub token: i64,
    /// Index among the node's children (draw order) of the child to continue with (the first
    /// child with the emitted token).
    pub child: Option<usize>,
}

/// Samples the node outcome. `children` are aligned indices of the children tokens in draw
/// order (greedy: the deterministic top children, then the sampled one; spechub: (x1, x2)).
/// The rows are given back to the buffer pool afterwards.
pub fn sample(verifier: Verifier, a: Aligned, children: &[usize], rng: &mut Rng) -> Result<NodeOutcome> {
    let o = run_rows(verifier, &a.p, &a.q, children, rng)?;
    let out = NodeOutcome { token: a.token(o.token), child: o.accepted };
    let Aligned { p, q, .. } = a;
    crate::pool::give(p);
    crate::pool::give(q);
    Ok(out)
}

/// Explicit law of the node outcome: (outcome, probability) for every outcome with nonzero
/// probability, by replaying [`sample`]'s verifier on every accept/reject path.
pub fn law(verifier: Verifier, a: &Aligned, children: &[usize]) -> Result<Vec<(NodeOutcome, f64)>> {
    let l = crate::exact::call_law(1.0, children, |tr| run_rows(verifier, &a.p, &a.q, children, tr))?;
    Ok(l.into_iter().map(|(o, pr)| (NodeOutcome { token: a.token(o.token), child: o.accepted }, pr)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(p: &[f64], q: &[f64]) -> Aligned {
        Aligned { ids: None, p: p.to_vec(), q: q.to_vec() }
    }

    fn emitted(l: &[(NodeOutcome, f64)], v: usize) -> Vec<f64> {
        let mut e = vec![0.0; v];
        for (o, pr) in l {
            e[o.token as usize] += pr;
        }
        e
    }

    /// docs/theory.md §4.3: acceptance of K drafts without replacement on the toy pair, enumerating the
    /// draft tuples with their successive-sampling law.
    #[test]
    fn rrs_wor_matches_the_reference_acceptance_table() {
        let p = [0.4, 0.3, 0.2, 0.05, 0.05];
        let q = [0.05, 0.05, 0.2, 0.3, 0.4];
        let a = aligned(&p, &q);
        for (k, want_wor, want_iid) in [(1, 0.4, 0.4), (2, 0.4940, 0.4600), (3, 0.6435, 0.5140), (4, 0.95, 0.5626)] {
            for (scheme, v, want) in [(crate::Scheme::Wor, Verifier::RrsWor, want_wor), (crate::Scheme::Iid, Verifier::Rrs, want_iid)] {
                let dl = crate::scheme_law(&q, k, scheme).unwrap();
                let (mut acc, mut out) = (0.0, vec![0.0; 5]);
                for r in 0..dl.len() {
                    let l = law(v, &a, dl.row(r)).unwrap();
                    acc += dl.probs[r] * l.iter().filter(|(o, _)| o.child.is_some()).map(|x| x.1).sum::<f64>();
                    for (t, e) in emitted(&l, 5).iter().enumerate() {
                        out[t] += dl.probs[r] * e;
                    }
                }
                assert!((acc - want).abs() < 1e-4, "k={k} {v:?}: {acc} vs {want}");
                for t in 0..5 {
                    assert!((out[t] - p[t]).abs() < 1e-14);
                }
            }
        }
    }

    /// Negative control: skipping the draft renormalisation (treating wor draws as iid) is biased.
    #[test]
    fn rrs_without_renormalisation_on_wor_drafts_is_biased() {
        let p = [0.4, 0.3, 0.2, 0.05, 0.05];
        let q = [0.05, 0.05, 0.2, 0.3, 0.4];
        let a = aligned(&p, &q);
        let dl = crate::scheme_law(&q, 3, crate::Scheme::Wor).unwrap();
        let mut out = [0.0; 5];
        for r in 0..dl.len() {
            for (t, e) in emitted(&law(Verifier::Rrs, &a, dl.row(r)).unwrap(), 5).iter().enumerate() {
                out[t] += dl.probs[r] * e;
            }
        }
        let tv: f64 = out.iter().zip(&p).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0;
        assert!(tv > 1e-3, "tv {tv}");
    }

    /// SpecHub drafts: the SpecHub rule is exact with acceptance p(a) + Σ min(p, q') (docs/theory.md §4.6),
    /// `sample` agrees with `law`; negative controls: RRS without replacement on the same drafts,
    /// and the SpecHub rule with the two pair types swapped, are biased.
    #[test]
    fn spechub_is_exact_and_the_controls_are_biased() {
        let p = [0.1, 0.45, 0.15, 0.3];
        let q = [0.4, 0.3, 0.2, 0.1];
        let a = aligned(&p, &q);
        let dl = crate::scheme_law(&q, 2, crate::Scheme::SpecHub).unwrap();
        let run = |v: Verifier, swap: bool| {
            let (mut out, mut acc) = (vec![0.0; 4], 0.0);
            for r in 0..dl.len() {
                let mut ch = dl.row(r).to_vec();
                if swap {
                    ch.reverse();
                }
                for (o, pr) in law(v, &a, &ch).unwrap() {
                    out[o.token as usize] += dl.probs[r] * pr;
                    acc += if o.child.is_some() { dl.probs[r] * pr } else { 0.0 };
                }
            }
            (out, acc)
        };
        let (out, acc) = run(Verifier::SpecHub, false);
        for t in 0..4 {
            assert!((out[t] - p[t]).abs() < 1e-14, "{out:?}");
        }
        // Hub 0, q' = q without the hub renormalised.
        let want: f64 = p[0] + (1..4).map(|i| p[i].min(q[i] / 0.6)).sum::<f64>();
        assert!((acc - want).abs() < 1e-14, "{acc} vs {want}");
        for (v, swap) in [(Verifier::RrsWor, false), (Verifier::SpecHub, true)] {
            let (out, _) = run(v, swap);
            let tv: f64 = out.iter().zip(&p).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0;
            assert!(tv > 1e-3, "{v:?} swap={swap}: tv {tv}");
        }
        for ch in [[2usize, 0], [0, 3]] {
            let l = law(Verifier::SpecHub, &a, &ch).unwrap();
            let mut rng = Rng::new(8);
            let n = 100_000;
            let mut counts = std::collections::HashMap::new();
            for _ in 0..n {
                let o = sample(Verifier::SpecHub, aligned(&p, &q), &ch, &mut rng).unwrap();
                *counts.entry((o.token, o.child)).or_insert(0usize) += 1;
            }
            for (o, pr) in &l {
                let f = *counts.get(&(o.token, o.child)).unwrap_or(&0) as f64 / n as f64;
                assert!((f - pr).abs() < 5.0 * (pr * (1.0 - pr) / n as f64).sqrt() + 1e-9, "{ch:?} {o:?}");
            }
            assert_eq!(counts.len(), l.len());
        }
    }

    #[test]
    fn greedy_is_exact_and_sampling_agrees_with_the_law() {
        let p = [0.1, 0.5, 0.15, 0.25];
        let q = [0.4, 0.3, 0.2, 0.1];
        let a = aligned(&p, &q);
        let dl = crate::scheme_law(&q, 3, crate::Scheme::Greedy).unwrap();
        let mut out = [0.0; 4];
        for r in 0..dl.len() {
            for (t, e) in emitted(&law(Verifier::Greedy, &a, dl.row(r)).unwrap(), 4).iter().enumerate() {
                out[t] += dl.probs[r] * e;
            }
        }
        for t in 0..4 {
            assert!((out[t] - p[t]).abs() < 1e-14);
        }
        // Monte Carlo of `sample` against `law` for one fixed tuple.
        let ch = [0usize, 1, 3];
        let l = law(Verifier::Greedy, &a, &ch).unwrap();
        let mut rng = Rng::new(3);
        let n = 100_000;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..n {
            let o = sample(Verifier::Greedy, aligned(&p, &q), &ch, &mut rng).unwrap();
            *counts.entry((o.token, o.child)).or_insert(0usize) += 1;
        }
        for (o, pr) in &l {
            let f = *counts.get(&(o.token, o.child)).unwrap_or(&0) as f64 / n as f64;
            assert!((f - pr).abs() < 5.0 * (pr * (1.0 - pr) / n as f64).sqrt() + 1e-9);
        }
        assert_eq!(counts.values().sum::<usize>(), n);
        assert_eq!(counts.len(), l.len());
    }

    /// A sparse node (local indices over the ascending union of supports) has the law of the same
    /// node on the full vocabulary, token by token: the local order keeps every tie-break "to the
    /// lower token id" (here SpecHub's hub between two children with equal q, in both orders).
    #[test]
    fn sparse_rows_have_the_dense_law() {
        let p = [0.0, 0.3, 0.0, 0.25, 0.0, 0.05, 0.4, 0.0];
        let q = [0.0, 0.3, 0.0, 0.1, 0.0, 0.3, 0.3, 0.0];
        let ids: Vec<i64> = (0..8).filter(|&t| p[t] > 0.0 || q[t] > 0.0).map(|t| t as i64).collect();
        let sparse = Aligned {
            p: ids.iter().map(|&t| p[t as usize]).collect(),
            q: ids.iter().map(|&t| q[t as usize]).collect(),
            ids: Some(ids.clone()),
        };
        let dense = aligned(&p, &q);
        let cases: [(Verifier, &[usize]); 9] = [
            (Verifier::SpecHub, &[1, 5]),
            (Verifier::SpecHub, &[5, 1]),
            (Verifier::SpecHub, &[6, 3]),
            (Verifier::RrsWor, &[5, 3, 1]),
            (Verifier::Rrs, &[5, 5, 6]),
            (Verifier::Greedy, &[1, 5, 3]),
            (Verifier::Match, &[6, 1]),
            (Verifier::RrsWor, &[]),
            (Verifier::Greedy, &[]),
        ];
        for (v, ch) in cases {
            let local: Vec<usize> = ch.iter().map(|&t| sparse.index(t as i64).unwrap()).collect();
            let mut a = law(v, &dense, ch).unwrap();
            let mut b = law(v, &sparse, &local).unwrap();
            assert_eq!(a.len(), b.len(), "{v:?} {ch:?}");
            let key = |x: &(NodeOutcome, f64)| (x.0.token, x.0.child);
            a.sort_by_key(key);
            b.sort_by_key(key);
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(key(x), key(y), "{v:?} {ch:?}");
                assert!((x.1 - y.1).abs() < 1e-15, "{v:?} {ch:?}: {x:?} vs {y:?}");
            }
            // Probabilities sum to one (the law is complete).
            assert!((b.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-12, "{v:?} {ch:?}");
        }
    }

    /// SpecHub with the maximum of q tied: drafted with the hub at the lower token id, the node
    /// law averaged over the drafts is p when local indices ascend with the token id. Negative
    /// control: the same rows in descending local order (so the tie goes to the higher id) are
    /// biased, which is why the aligned index set must be sorted ascending.
    #[test]
    fn spechub_tie_needs_ascending_local_order() {
        let p = [0.1, 0.45, 0.15, 0.3];
        let q = [0.35, 0.35, 0.2, 0.1];
        let dl = crate::scheme_law(&q, 2, crate::Scheme::SpecHub).unwrap();
        let run = |rev: bool| {
            let loc = |t: usize| if rev { 3 - t } else { t };
            let mut a = aligned(&[0.0; 4], &[0.0; 4]);
            for t in 0..4 {
                a.p[loc(t)] = p[t];
                a.q[loc(t)] = q[t];
            }
            a.ids = Some((0..4).map(|i| loc(i) as i64).collect());
            let mut out = [0.0; 4];
            for r in 0..dl.len() {
                let ch: Vec<usize> = dl.row(r).iter().map(|&t| loc(t)).collect();
                for (o, pr) in law(Verifier::SpecHub, &a, &ch).unwrap() {
                    out[o.token as usize] += dl.probs[r] * pr;
                }
            }
            out.iter().zip(&p).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0
        };
        assert!(run(false) < 1e-14, "{}", run(false));
        assert!(run(true) > 1e-3, "{}", run(true));
    }
}
