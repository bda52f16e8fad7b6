//! The max-flow solution against an in-crate brute force over all token subsets H
//! (subset-selection theorem, Hu et al. eq. 8), and the plan against the coupling conditions.

use super::*;
use crate::{scheme_law, Rng, Scheme};
use proptest::prelude::*;

/// The crate's brute-force subset minimum, for a law given as (drafts, n, probs).
fn brute_alpha(p: &[f64], drafts: &[usize], n: usize, probs: &[f64]) -> f64 {
    let law = crate::Law { n, tuples: drafts.to_vec(), probs: probs.to_vec() };
    crate::law::brute_alpha(p, &law)
}

/// Checks value, cut and plan of `plan` for the law (drafts, probs); tolerances in ulps-ish.
fn check_plan(plan: &ExplicitPlan, p: &[f64], drafts: &[usize], n: usize, probs: &[f64]) {
    let want = brute_alpha(p, drafts, n, probs);
    assert!((plan.value() - want).abs() < 1e-12, "value {} vs brute {want}", plan.value());
    assert!((plan.cut_value() - want).abs() < 1e-12, "cut value {} vs brute {want}", plan.cut_value());
    assert!(plan.cut().windows(2).all(|w| w[0] < w[1]));
    let v = p.len();
    let mut marginal = vec![0.0; v];
    let mut accepted = 0.0;
    for r in 0..probs.len() {
        let c = plan.conditional(r);
        assert!(c.iter().all(|&x| x >= 0.0));
        let s: f64 = c.iter().sum();
        assert!((s - 1.0).abs() < 1e-12, "row {r} sums to {s}");
        let row = &drafts[r * n..(r + 1) * n];
        for y in 0..v {
            marginal[y] += probs[r] * c[y];
            if row.contains(&y) {
                accepted += probs[r] * c[y];
            }
        }
        let (toks, _) = plan.accept(r);
        assert!(toks.iter().all(|y| row.contains(y)), "accept part off the row's drafts");
    }
    for y in 0..v {
        assert!((marginal[y] - p[y]).abs() < 1e-12, "marginal at {y}: {} vs {}", marginal[y], p[y]);
    }
    assert!((accepted - plan.value()).abs() < 1e-12, "plan accepts {accepted}, value {}", plan.value());
}

fn normalise(w: &[u32]) -> Option<Vec<f64>> {
    let s: u32 = w.iter().sum();
    (s > 0).then(|| w.iter().map(|&x| x as f64 / s as f64).collect())
}

fn law_strategy() -> impl Strategy<Value = (Vec<f64>, usize, Vec<usize>, Vec<f64>)> {
    (1usize..=7, 1usize..=3, 1usize..=8).prop_flat_map(|(v, n, m)| {
        (prop::collection::vec(0u32..6, v), prop::collection::vec(0..v, m * n), prop::collection::vec(0u32..6, m))
            .prop_filter_map("zero mass", move |(pw, d, qw)| Some((normalise(&pw)?, n, d, normalise(&qw)?)))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_laws_match_the_subset_brute_force((p, n, drafts, probs) in law_strategy()) {
        let ids: Vec<i64> = drafts.iter().map(|&x| x as i64).collect();
        let plan = optimal_plan(&p, &ids, n, &probs).unwrap();
        check_plan(&plan, &p, &drafts, n, &probs);
    }

    /// Laws of confident / float32-softmax / subnormal rows (`test_rows`): normalised, finite,
    /// and their plans exact (issue 9 §1).
    #[test]
    fn scheme_laws_of_confident_rows_match_the_subset_brute_force((p, q) in crate::test_rows::pair(5), n in 1usize..=3) {
        let ps: f64 = p.iter().sum();
        let p: Vec<f64> = p.iter().map(|x| x / ps).collect();
        for scheme in Scheme::ALL {
            let Ok(law) = scheme_law(&q, n, scheme) else { continue };
            let total: f64 = law.probs.iter().sum();
            prop_assert!((total - 1.0).abs() < 1e-14 && law.probs.iter().all(|x| x.is_finite() && *x > 0.0), "{scheme:?}: {:?}", law.probs);
            let plan = optimal_plan_law(&p, &law).unwrap();
            check_plan(&plan, &p, &law.tuples, n, &law.probs);
        }
    }

    #[test]
    fn scheme_laws_match_the_subset_brute_force(
        pw in prop::collection::vec(0u32..6, 2..=6),
        qw in prop::collection::vec(0u32..6, 2..=6),
        n in 1usize..=3,
    ) {
        let v = pw.len().min(qw.len());
        let (Some(p), Some(q)) = (normalise(&pw[..v]), normalise(&qw[..v])) else { return Ok(()) };
        for scheme in Scheme::ALL {
            let Ok(law) = scheme_law(&q, n, scheme) else { continue };
            let plan = optimal_plan_law(&p, &law).unwrap();
            check_plan(&plan, &p, &law.tuples, n, &law.probs);
        }
    }
}

#[test]
fn single_draft_is_one_minus_tv() {
    let p = [0.5, 0.3, 0.2, 0.0];
    let q = [0.1, 0.1, 0.4, 0.4];
    let law = scheme_law(&q, 1, Scheme::Iid).unwrap();
    let plan = optimal_plan_law(&p, &law).unwrap();
    let tv_complement: f64 = p.iter().zip(&q).map(|(a, b): (&f64, &f64)| a.min(*b)).sum();
    assert!((plan.value() - tv_complement).abs() < 1e-15);
    // H = tokens where q exceeds p (the single-draft minimiser).
    assert_eq!(plan.cut(), &[2, 3]);
}

#[test]
fn p_equal_to_the_draft_law_is_accepted_surely() {
    let p = [0.25, 0.25, 0.5];
    let plan = optimal_plan(&p, &[0, 1, 2], 1, &p).unwrap();
    assert!((plan.value() - 1.0).abs() < 1e-15);
    assert!(plan.reject_prob(0) <= 1e-15);
}

#[test]
fn sampling_follows_the_conditional_and_reports_positions() {
    let p = [0.4, 0.1, 0.2, 0.3];
    let drafts = [0i64, 1, 1, 1, 2, 0];
    let probs = [0.5, 0.3, 0.2];
    let plan = optimal_plan(&p, &drafts, 2, &probs).unwrap();
    let mut rng = Rng::new(11);
    let trials = 200_000;
    for r in 0..3 {
        let c = plan.conditional(r);
        let row = plan.row(r).to_vec();
        let mut counts = [0usize; 4];
        for _ in 0..trials {
            let (y, pos) = plan.sample(r, &mut rng);
            assert_eq!(pos, row.iter().position(|&x| x == y));
            counts[y] += 1;
        }
        for y in 0..4 {
            let f = counts[y] as f64 / trials as f64;
            let sd = (c[y] * (1.0 - c[y]) / trials as f64).sqrt();
            assert!((f - c[y]).abs() <= 5.0 * sd + 1e-12, "row {r} token {y}: {f} vs {}", c[y]);
        }
    }
}

#[test]
fn bad_inputs_name_their_argument() {
    let p = [0.5, 0.5];
    assert_eq!(optimal_plan(&p, &[0, 2], 1, &[0.5, 0.5]).unwrap_err().arg(), "drafts");
    assert_eq!(optimal_plan(&p, &[0, -1], 1, &[0.5, 0.5]).unwrap_err().arg(), "drafts");
    assert_eq!(optimal_plan(&p, &[0, 1], 1, &[0.6, 0.5]).unwrap_err().arg(), "probs");
    assert_eq!(optimal_plan(&p, &[0, 1], 1, &[f64::NAN, 0.5]).unwrap_err().arg(), "probs");
    assert_eq!(optimal_plan(&p, &[0, 1], 1, &[1.5, -0.5]).unwrap_err().arg(), "probs");
    assert_eq!(optimal_plan(&p, &[0, 1, 1], 1, &[0.5, 0.5]).unwrap_err().arg(), "probs");
    assert_eq!(optimal_plan(&[0.5, 0.6], &[0, 1], 1, &[0.5, 0.5]).unwrap_err().arg(), "p");
    assert_eq!(optimal_plan(&p, &[], 0, &[1.0]).unwrap_err().arg(), "drafts");
    let big = vec![0i64; MAX_DRAFT_ENTRIES + 2];
    let probs = vec![1.0 / ((MAX_DRAFT_ENTRIES + 2) / 2) as f64; (MAX_DRAFT_ENTRIES + 2) / 2];
    assert!(matches!(optimal_plan(&p, &big, 2, &probs), Err(Error::TooLarge { .. })));
}

#[test]
fn larger_iid_law_agrees_with_the_sorted_prefix_formula() {
    // For i.i.d. drafts the minimiser is a prefix in q/p order (docs/theory.md §2.3): an independent
    // check of the solver on a graph far too large for subset enumeration.
    let k = 40;
    let mut rng = Rng::new(5);
    let mut p: Vec<f64> = (0..k).map(|_| rng.exponential()).collect();
    let mut q: Vec<f64> = (0..k).map(|_| rng.exponential() * rng.uniform()).collect();
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    p.iter_mut().for_each(|x| *x /= sp);
    q.iter_mut().for_each(|x| *x /= sq);
    for n in [2usize, 3] {
        let plan = optimal_plan_law(&p, &scheme_law(&q, n, Scheme::Iid).unwrap()).unwrap();
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| (q[b] / p[b]).partial_cmp(&(q[a] / p[a])).unwrap());
        let (mut cp, mut cq, mut best) = (0.0, 0.0, 0.0f64);
        for &i in &order {
            cp += p[i];
            cq += q[i];
            best = best.min(cp - cq.powi(n as i32));
        }
        assert!((plan.value() - (1.0 + best)).abs() < 1e-12, "n={n}: {} vs {}", plan.value(), 1.0 + best);
        assert!((plan.cut_value() - plan.value()).abs() < 1e-12);
    }
}

/// On laws too large for enumeration (and large enough for the hashed grouping path), the flow
/// value and the cut value certify each other (LP duality: value ≤ α* ≤ cut value), the answer
/// is invariant under reordering and splitting rows, and the plan is a coupling.
#[test]
fn certificate_and_invariance_on_sparse_laws() {
    let mut rng = Rng::new(9);
    for &(v, n, m) in &[(300usize, 2usize, 400usize), (200, 3, 300), (1000, 4, 200)] {
        let mut p: Vec<f64> = (0..v).map(|_| rng.exponential()).collect();
        let sp: f64 = p.iter().sum();
        p.iter_mut().for_each(|x| *x /= sp);
        let drafts: Vec<i64> = (0..m * n).map(|_| (rng.uniform() * v as f64) as i64).collect();
        let mut probs: Vec<f64> = (0..m).map(|_| rng.exponential()).collect();
        let sq: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|x| *x /= sq);
        let plan = optimal_plan(&p, &drafts, n, &probs).unwrap();
        assert!((plan.cut_value() - plan.value()).abs() < 1e-12, "gap {}", plan.cut_value() - plan.value());
        // Reverse every row, reverse the row order and split each row in two halves.
        let mut d2 = Vec::new();
        let mut w2 = Vec::new();
        for r in (0..m).rev() {
            let row: Vec<i64> = drafts[r * n..(r + 1) * n].iter().rev().copied().collect();
            for _ in 0..2 {
                d2.extend_from_slice(&row);
                w2.push(probs[r] / 2.0);
            }
        }
        let plan2 = optimal_plan(&p, &d2, n, &w2).unwrap();
        assert!((plan2.value() - plan.value()).abs() < 1e-12);
        let mut marginal = vec![0.0; v];
        for (r, &w) in probs.iter().enumerate() {
            for (y, c) in plan.conditional(r).into_iter().enumerate() {
                marginal[y] += w * c;
            }
        }
        for y in 0..v {
            assert!((marginal[y] - p[y]).abs() < 1e-12);
        }
    }
}
