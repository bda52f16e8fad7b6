//! Properties of the bounds against brute force (exact enumeration over all subsets and tuples).

use proptest::prelude::*;

use super::brute::{self, normalise};
use super::*;
use crate::names::Verifier;

/// A small distribution with zeros allowed: integer weights 0..=9, at least one positive.
fn dist(v: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(prop_oneof![2 => Just(0u32), 5 => 1u32..10], v)
        .prop_filter("needs mass", |w| w.iter().any(|&x| x > 0))
        .prop_map(|w| normalise(&w.iter().map(|&x| x as f64).collect::<Vec<_>>()))
}

fn pair() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (1usize..=6).prop_flat_map(|v| (dist(v), dist(v)))
}

fn support(q: &[f64]) -> usize {
    q.iter().filter(|&&x| x > 0.0).count()
}

fn valid(q: &[f64], n: usize, s: Scheme) -> bool {
    match s {
        Scheme::Iid => true,
        Scheme::SpecHub => n == 2 && support(q) >= 2,
        _ => n <= support(q),
    }
}

/// A peaked, Zipf-like pair over `v` tokens (deterministic from `seed`).
fn peaked(v: usize, seed: u64, temp: f64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = crate::Rng::new(seed);
    let logits: Vec<f64> = (0..v).map(|i| -1.1 * ((i + 1) as f64).ln() + 0.7 * rng.gumbel()).collect();
    let p: Vec<f64> = logits.iter().map(|l| (l / temp).exp()).collect();
    let q: Vec<f64> = logits.iter().map(|l| ((l + 0.6 * rng.gumbel()) / temp).exp()).collect();
    (normalise(&p), normalise(&q))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_scheme_matches_the_subset_brute_force((p, q) in pair(), n in 1usize..=4) {
        for s in Scheme::ALL {
            if !valid(&q, n, s) || (s == Scheme::Iid && p.len().pow(n as u32) > 5000) {
                continue;
            }
            let fast = optimal_acceptance(&p, &q, n, s).unwrap();
            let slow = brute::alpha(&p, &q, n, s);
            prop_assert!((fast - slow).abs() <= 1e-9, "{s:?} n={n}: {fast} vs brute {slow}");
        }
    }

    /// The confident / float32-softmax / subnormal regime of `test_rows` (issue 9 §1).
    #[test]
    fn every_scheme_matches_the_subset_brute_force_on_confident_rows((p, q) in crate::test_rows::pair(6), n in 1usize..=4) {
        for s in Scheme::ALL {
            if !valid(&q, n, s) || (s == Scheme::Iid && p.len().pow(n as u32) > 5000) {
                continue;
            }
            let fast = optimal_acceptance(&p, &q, n, s).unwrap();
            let slow = brute::alpha(&p, &q, n, s);
            prop_assert!((0.0..=1.0).contains(&fast));
            prop_assert!((fast - slow).abs() <= 1e-9, "{s:?} n={n} p={p:?} q={q:?}: {fast} vs brute {slow}");
        }
        if n <= support(&q) {
            // RRS without replacement: the remaining q-mass of each step summed (was 1 − drawn).
            let w = verifier_acceptance(&p, &q, n, Verifier::RrsWor, None, &MonteCarlo::default(), 0).unwrap();
            let slow = brute::rrs(&p, &q, n, true);
            prop_assert!(w.exact && (w.value - slow).abs() <= 1e-12, "rrs_wor n={n} p={p:?} q={q:?}: {} vs {slow}", w.value);
        }
    }

    #[test]
    fn monotone_in_n_and_one_when_p_equals_q((p, q) in pair()) {
        for s in [Scheme::Iid, Scheme::Wor, Scheme::Cp, Scheme::Greedy] {
            let mut prev = 0.0;
            for n in 1..=4 {
                if !valid(&q, n, s) { break; }
                let a = optimal_acceptance(&p, &q, n, s).unwrap();
                prop_assert!(a >= prev - 1e-12, "{s:?} not monotone at n={n}");
                prev = a;
                let same = optimal_acceptance(&q, &q, n, s).unwrap();
                prop_assert!((same - 1.0).abs() <= 1e-12, "{s:?} n={n}: α*(q, q) = {same}");
            }
        }
    }

    #[test]
    fn verifier_closed_forms_match_enumeration((p, q) in pair(), n in 1usize..=3) {
        let mc = MonteCarlo::default();
        let acc = |v, s| verifier_acceptance(&p, &q, n, v, s, &mc, 0).unwrap();
        let rrs = acc(Verifier::Rrs, None);
        prop_assert!(rrs.exact && (rrs.value - brute::rrs(&p, &q, n, false)).abs() <= 1e-9);
        if n <= support(&q) {
            let w = acc(Verifier::RrsWor, None);
            prop_assert!(w.exact && (w.value - brute::rrs(&p, &q, n, true)).abs() <= 1e-9, "rrs_wor {} vs {}", w.value, brute::rrs(&p, &q, n, true));
            prop_assert!(w.value <= optimal_acceptance(&p, &q, n, Scheme::Wor).unwrap() + 1e-9);
            let g = acc(Verifier::Greedy, None).value;
            prop_assert!((g - brute::alpha(&p, &q, n, Scheme::Greedy)).abs() <= 1e-9);
        }
        let k = acc(Verifier::Kseq, None).value;
        prop_assert!(k <= optimal_acceptance(&p, &q, n, Scheme::Iid).unwrap() + 1e-12);
        prop_assert!(rrs.value <= optimal_acceptance(&p, &q, n, Scheme::Iid).unwrap() + 1e-12);
        if n == 1 {
            prop_assert!((acc(Verifier::Sd, None).value - optimal_acceptance(&p, &q, 1, Scheme::Iid).unwrap()).abs() < 1e-15);
        }
    }

    #[test]
    fn match_acceptance_is_the_enumerated_law_for_every_scheme((p, q) in pair(), n in 1usize..=4) {
        // One meaning of `match` everywhere: its acceptance for drafts of any scheme equals the
        // acceptance of its exact output law (closed-form inclusion probabilities, or the law).
        let mc = MonteCarlo::default();
        for s in Scheme::ALL {
            if !valid(&q, n, s) || (s == Scheme::Iid && support(&q).pow(n as u32) > 5000) {
                continue;
            }
            let a = verifier_acceptance(&p, &q, n, Verifier::Match, Some(s), &mc, 0).unwrap();
            let law = crate::exact::output_distribution(&p, &q, n, Verifier::Match, Some(s)).unwrap();
            prop_assert!(a.exact && (a.value - law.acceptance).abs() <= 1e-12, "{s:?} n={n}: {} vs {}", a.value, law.acceptance);
        }
        if n <= support(&q) {
            let top = verifier_acceptance(&p, &q, n, Verifier::Match, None, &mc, 0).unwrap().value;
            prop_assert!((top - optimal_acceptance(&p, &q, n, Scheme::TopK).unwrap()).abs() <= 1e-15);
        }
    }

    #[test]
    fn kseq_rho_makes_the_output_law_p((p, q) in pair(), n in 1usize..=4) {
        // SpecTr K-SEQ output law: accepted part min(ρ q, p)·p_acc/(ρβ), residual ∝ (p − ρ q)_+.
        let rho = kseq_rho(&p, &q, n).unwrap();
        let beta: f64 = p.iter().zip(&q).map(|(a, b)| (a / rho).min(*b)).sum();
        let pacc = 1.0 - (1.0 - beta).powi(n as i32);
        let res: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a - rho * b).max(0.0)).collect();
        let z: f64 = res.iter().sum();
        for i in 0..p.len() {
            let acc = if beta > 0.0 { pacc * (q[i]).min(p[i] / rho) / beta } else { 0.0 };
            let out = acc + if z > 0.0 { (1.0 - pacc) * res[i] / z } else { 0.0 };
            prop_assert!((out - p[i]).abs() <= 1e-9, "token {i}: {out} vs {}", p[i]);
        }
    }
}

#[test]
fn bucketed_iid_equals_the_full_sort_on_large_peaked_inputs() {
    for (seed, v) in [(1u64, 5000usize), (2, 40_000), (3, 151_936)] {
        for temp in [0.3, 0.7, 1.0, 2.0] {
            let (p, q) = peaked(v, seed, temp);
            for n in [2usize, 3, 4, 8] {
                let a = iid::value(&p, &q, n, 1.0, 1.0);
                let b = iid::value_sorted(&p, &q, n, 1.0, 1.0);
                assert!((a - b).abs() <= 1e-12, "v={v} T={temp} n={n}: {a} vs {b}");
            }
        }
    }
    // Massive ties: identical ratios everywhere, and p = q.
    let q: Vec<f64> = normalise(&(1..=3000).map(|i| i as f64).collect::<Vec<_>>());
    assert!((iid::value(&q, &q, 4, 1.0, 1.0) - 1.0).abs() < 1e-12);
    let p: Vec<f64> = normalise(&(1..=3000).map(|i| (i % 7) as f64).collect::<Vec<_>>());
    assert!((iid::value(&p, &q, 3, 1.0, 1.0) - iid::value_sorted(&p, &q, 3, 1.0, 1.0)).abs() < 1e-12);
}

#[test]
fn race_equals_the_n2_closed_form_at_large_vocabularies() {
    for (seed, v) in [(5u64, 2000usize), (6, 32_000)] {
        for temp in [0.5, 1.0] {
            let (p, q) = peaked(v, seed, temp);
            let s = prep::sorted(&p, &q, 1.0, 1.0);
            let (a, b) = (wor::pair(&s), wor::race(&s, 2));
            assert!((a - b).abs() <= 1e-10, "v={v} T={temp}: closed form {a} vs race {b}");
        }
    }
}

#[test]
fn wor_is_above_iid_and_differs_from_the_paper_formula() {
    // docs/theory.md §2.3: the e_n ratio (scheme cp) is not the successive-sampling law.
    let (p, q) = peaked(32_000, 9, 1.0);
    let w = optimal_acceptance(&p, &q, 3, Scheme::Wor).unwrap();
    let i = optimal_acceptance(&p, &q, 3, Scheme::Iid).unwrap();
    let c = optimal_acceptance(&p, &q, 3, Scheme::Cp).unwrap();
    assert!(w >= i - 1e-12 && (w - c).abs() > 1e-6, "wor {w} iid {i} cp {c}");
}

#[test]
fn rrs_wor_monte_carlo_agrees_with_the_exact_value() {
    let (p, q) = peaked(300, 4, 1.0);
    let exact = MonteCarlo { samples: 4000, seed: 11, exact_nodes: usize::MAX };
    let forced = MonteCarlo { samples: 4000, seed: 11, exact_nodes: 0 };
    for n in [2usize, 3] {
        let e = verifier_acceptance(&p, &q, n, Verifier::RrsWor, None, &exact, 0).unwrap();
        let m = verifier_acceptance(&p, &q, n, Verifier::RrsWor, None, &forced, 0).unwrap();
        assert!(e.exact && !m.exact && m.stderr > 0.0);
        assert!((e.value - m.value).abs() <= 5.0 * m.stderr + 1e-12, "n={n}: exact {} vs MC {} ± {}", e.value, m.value, m.stderr);
        let again = verifier_acceptance(&p, &q, n, Verifier::RrsWor, None, &forced, 0).unwrap();
        assert_eq!(m, again, "same seed, same estimate");
    }
}

/// Issue 9 §1: p = (½, ½), q = (1, 1e-15): after the first draft (token 0) is rejected the second
/// is token 1, which is always accepted, so α = 1; with 1 − q(0) for the remaining mass it was
/// 0.950. The Monte-Carlo path (forced) agrees on the same confident rows.
#[test]
fn rrs_wor_on_confident_rows_sums_the_remaining_mass() {
    let exact = MonteCarlo::default();
    let forced = MonteCarlo { samples: 2000, seed: 3, exact_nodes: 0 };
    for q in [vec![1.0, 1e-15], vec![1.0, 1e-17], vec![1.0, 1e-300]] {
        let a = verifier_acceptance(&[0.5, 0.5], &q, 2, Verifier::RrsWor, None, &exact, 0).unwrap();
        assert!(a.exact && (a.value - 1.0).abs() <= 1e-12, "q={q:?}: {}", a.value);
        let m = verifier_acceptance(&[0.5, 0.5], &q, 2, Verifier::RrsWor, None, &forced, 0).unwrap();
        assert!((m.value - 1.0).abs() <= 1e-12, "q={q:?}: MC {}", m.value);
    }
    let mut q = vec![1e-16; 40];
    q[3] = 1.0;
    q[17] = 0.0;
    let p = normalise(&(0..40).map(|i| 1.0 + (i % 7) as f64).collect::<Vec<_>>());
    for n in [2usize, 3] {
        let e = verifier_acceptance(&p, &q, n, Verifier::RrsWor, None, &exact, 0).unwrap();
        assert!(e.exact && (e.value - brute::rrs(&p, &q, n, true)).abs() <= 1e-12, "n={n}: {}", e.value);
        let m = verifier_acceptance(&p, &q, n, Verifier::RrsWor, None, &MonteCarlo { samples: 4000, seed: 5, exact_nodes: 0 }, 0).unwrap();
        assert!((e.value - m.value).abs() <= 5.0 * m.stderr + 1e-12, "n={n}: exact {} vs MC {} ± {}", e.value, m.value, m.stderr);
    }
}

#[test]
fn cp_survives_extreme_peaks() {
    // e_n(q) underflows in plain f64 here; the log-domain path must agree with brute force.
    let mut q = vec![1e-40f64; 6];
    q[0] = 1.0 - 5e-40;
    let p = normalise(&[1.0, 2.0, 3.0, 1.0, 1.0, 2.0]);
    for n in [4usize, 6] {
        let a = optimal_acceptance(&p, &q, n, Scheme::Cp).unwrap();
        let b = brute::alpha(&p, &q, n, Scheme::Cp);
        assert!((a - b).abs() < 1e-9, "n={n}: {a} vs {b}");
    }
}

#[test]
fn bad_inputs_name_the_argument() {
    let p = [0.5, 0.5, 0.0];
    let q = [0.2, 0.8, 0.0];
    assert_eq!(optimal_acceptance(&p, &q, 0, Scheme::Iid).unwrap_err().arg(), "n");
    assert_eq!(optimal_acceptance(&p, &q, 3, Scheme::Wor).unwrap_err().arg(), "n");
    assert_eq!(optimal_acceptance(&p, &q, 3, Scheme::SpecHub).unwrap_err().arg(), "n");
    assert_eq!(optimal_acceptance(&[0.5, f64::NAN, 0.5], &q, 2, Scheme::Iid).unwrap_err().arg(), "p");
    assert_eq!(optimal_acceptance(&p, &[0.2, 0.9, 0.0], 2, Scheme::Iid).unwrap_err().arg(), "q");
    assert_eq!(optimal_acceptance(&p, &[0.5, 0.5], 2, Scheme::Iid).unwrap_err().arg(), "q");
    let mc = MonteCarlo::default();
    let e = verifier_acceptance(&p, &q, 2, Verifier::Rrs, Some(Scheme::Wor), &mc, 0).unwrap_err();
    assert_eq!(e.arg(), "scheme");
    assert_eq!(verifier_acceptance(&p, &q, 2, Verifier::Sd, None, &mc, 0).unwrap_err().arg(), "n");
    assert_eq!(verifier_acceptance(&p, &q, 2, Verifier::Optimal, None, &mc, 0).unwrap_err().arg(), "scheme");
    let rows = optimal_acceptance_rows(&[0.5, 0.5, 0.5, 0.6], &[0.5, 0.5, 0.5, 0.5], 2, 2, Scheme::Iid).unwrap_err();
    assert_eq!(rows.arg(), "p[row 1]");
}

#[test]
fn batch_equals_row_by_row_and_f32_works() {
    let (mut p, mut q) = (Vec::new(), Vec::new());
    for seed in 0..6u64 {
        let (a, b) = peaked(500, seed, 0.8);
        p.extend(a);
        q.extend(b);
    }
    for s in [Scheme::Iid, Scheme::Wor, Scheme::Cp, Scheme::Greedy] {
        let batch = optimal_acceptance_rows(&p, &q, 500, 3, s).unwrap();
        for (r, &b) in batch.iter().enumerate() {
            assert_eq!(b, optimal_acceptance(&p[r * 500..(r + 1) * 500], &q[r * 500..(r + 1) * 500], 3, s).unwrap());
        }
    }
    let p32: Vec<f32> = p[..500].iter().map(|&x| x as f32).collect();
    let q32: Vec<f32> = q[..500].iter().map(|&x| x as f32).collect();
    let a = optimal_acceptance(&p32, &q32, 3, Scheme::Iid).unwrap();
    let b = optimal_acceptance(&p[..500], &q[..500], 3, Scheme::Iid).unwrap();
    assert!((a - b).abs() < 1e-5);
}

#[test]
fn wor_and_cp_are_exact_for_many_drafts() {
    // n up to the whole support of an 8-token vocabulary (8!/(8−n)! ordered tuples).
    for seed in 0..6u64 {
        let mut rng = crate::Rng::new(seed);
        let p = normalise(&(0..8).map(|_| rng.uniform().powi(3)).collect::<Vec<_>>());
        let q = normalise(&(0..8).map(|_| rng.uniform().powi(3) + 1e-3).collect::<Vec<_>>());
        for n in 2..=8 {
            for s in [Scheme::Wor, Scheme::Cp] {
                let a = optimal_acceptance(&p, &q, n, s).unwrap();
                let b = brute::alpha(&p, &q, n, s);
                assert!((a - b).abs() <= 1e-9, "{s:?} seed={seed} n={n}: {a} vs {b}");
            }
        }
    }
    // n = 16 at a realistic size: at least the i.i.d. value, at most 1, increasing in n.
    let (p, q) = peaked(4000, 8, 1.0);
    let mut prev = 0.0;
    for n in [8usize, 12, 16] {
        let w = optimal_acceptance(&p, &q, n, Scheme::Wor).unwrap();
        let i = optimal_acceptance(&p, &q, n, Scheme::Iid).unwrap();
        assert!(w >= i - 1e-12 && w <= 1.0 + 1e-12 && w >= prev - 1e-12, "n={n}: wor {w} iid {i}");
        prev = w;
    }
}

#[test]
fn race_step_and_range_have_converged() {
    for (seed, temp) in [(21u64, 0.5), (22, 1.0)] {
        let (p, q) = peaked(4000, seed, temp);
        let s = prep::sorted(&p, &q, 1.0, 1.0);
        for n in [3usize, 4, 8, 16] {
            let (a, b) = (wor::race(&s, n), wor::race_with(&s, &[n], 0.15, 3.0)[0]);
            assert!((a - b).abs() <= 1e-10, "T={temp} n={n}: default step {a} vs h=0.15 widened {b}");
        }
    }
}

/// Wide-range vectors: entries 0, or 10^-e with e up to 300 (ratios far outside the first-level
/// bucket range), or one of a few repeated values (massive ties).
fn wild(v: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(
        prop_oneof![1 => Just(0.0), 3 => (0.0f64..300.0).prop_map(|e| 10f64.powf(-e)), 2 => (1u32..4).prop_map(|k| k as f64 * 1e-3)],
        v,
    )
    .prop_filter("needs mass", |w| w.iter().any(|&x| x > 0.0))
    .prop_map(|w| normalise(&w))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn bucketed_iid_equals_the_full_sort_on_wild_inputs((p, q) in (50usize..3000).prop_flat_map(|v| (wild(v), wild(v))), n in 2usize..6) {
        let a = iid::value(&p, &q, n, 1.0, 1.0);
        let b = iid::value_sorted(&p, &q, n, 1.0, 1.0);
        prop_assert!((a - b).abs() <= 1e-12, "n={n}: bucketed {a} vs sorted {b}");
    }

    #[test]
    fn wor_race_equals_the_closed_form_on_wild_inputs((p, q) in (20usize..400).prop_flat_map(|v| (wild(v), wild(v)))) {
        prop_assume!(q.iter().filter(|&&x| x > 0.0).count() >= 2);
        let s = prep::sorted(&p, &q, 1.0, 1.0);
        let (a, b) = (wor::pair(&s), wor::race(&s, 2));
        prop_assert!((a - b).abs() <= 1e-9, "closed form {a} vs race {b}");
    }
}

#[test]
fn huge_n_is_exact_and_does_not_hang() {
    // p puts mass where q has none: RRS can never accept it, whatever n.
    let p = [0.5, 0.3, 0.2];
    let q = [0.6, 0.4, 0.0];
    let mc = MonteCarlo::default();
    let big = 1usize << 40;
    // RRS is O(n·V) (n steps of a recursion): bounded by limits::MAX_DRAFTS.
    let most = crate::limits::MAX_DRAFTS;
    let rrs = verifier_acceptance(&p, &q, most, Verifier::Rrs, None, &mc, 0).unwrap().value;
    assert!((rrs - 0.8).abs() < 1e-12, "{rrs}");
    let e = verifier_acceptance(&p, &q, big, Verifier::Rrs, None, &mc, 0).unwrap_err();
    assert!(matches!(e, crate::Error::TooLarge { .. }) && e.arg() == "n", "{e}");
    let iid = optimal_acceptance(&p, &q, big, Scheme::Iid).unwrap();
    assert!((iid - 0.8).abs() < 1e-12, "{iid}");
    let k = verifier_acceptance(&p, &q, big, Verifier::Kseq, None, &mc, 0).unwrap().value;
    assert!(k <= 0.8 + 1e-12);
    assert_eq!(prep::pown(0.5, 3), 0.125);
    assert_eq!(prep::pown(3.0, 0), 1.0);
}

#[test]
fn kseq_is_finite_when_rounding_pushes_beta_above_one() {
    let p = normalise(&[8.0, 7.0, 3.0]);
    let mc = MonteCarlo::default();
    for n in 1..4 {
        let k = verifier_acceptance(&p, &p, n, Verifier::Kseq, None, &mc, 0).unwrap().value;
        assert!((k - 1.0).abs() < 1e-12, "n={n}: {k}");
    }
}

#[test]
fn match_acceptance_above_the_enumeration_limit_is_a_labelled_estimate() {
    // wor, n = 3 over 3000 tokens: no closed form, too many tuples to enumerate. With p = q
    // uniform every draft set has mass exactly 3/V, so the estimate has no variance.
    let v = 3000;
    let u = vec![1.0 / v as f64; v];
    let mc = MonteCarlo { samples: 200, ..MonteCarlo::default() };
    let a = verifier_acceptance(&u, &u, 3, Verifier::Match, Some(Scheme::Wor), &mc, 0).unwrap();
    assert!(!a.exact && (a.value - 3.0 / v as f64).abs() < 1e-15 && a.stderr < 1e-15, "{a:?}");
}

/// The study row's cells against the single-n functions (which the tests above check against
/// brute force): `tol` for α* and the closed-form verifiers, NaN exactly where the cell is
/// undefined, RRS-wor equal when both are exact.
fn check_study_row(p: &[f64], q: &[f64], ns: &[usize], tol: f64) {
    let mc = MonteCarlo { samples: 200, ..MonteCarlo::default() };
    let row = study_row(p, q, ns, &mc, 0).unwrap();
    for (i, &n) in ns.iter().enumerate() {
        let cell = |c: &str| row.values[i * study::COLUMNS + STUDY_COLUMNS.iter().position(|&x| x == c).unwrap()];
        let close = |c: &str, want: Option<f64>| match want {
            Some(w) => assert!((cell(c) - w).abs() <= tol, "{c} n={n}: study {} vs single {w}", cell(c)),
            None => assert!(cell(c).is_nan(), "{c} n={n}: {} should be NaN", cell(c)),
        };
        let opt = |s: Scheme| valid(q, n, s).then(|| optimal_acceptance(p, q, n, s).unwrap());
        let ver = |v: Verifier| verifier_acceptance(p, q, n, v, None, &mc, 0).ok().map(|a| a.value);
        close("alpha_iid", opt(Scheme::Iid));
        close("alpha_wor", opt(Scheme::Wor));
        close("alpha_cp", opt(Scheme::Cp));
        close("alpha_greedy", opt(Scheme::Greedy));
        close("alpha_spechub", opt(Scheme::SpecHub));
        close("rrs", ver(Verifier::Rrs));
        close("kseq", ver(Verifier::Kseq));
        if n <= support(q) {
            let w = verifier_acceptance(p, q, n, Verifier::RrsWor, None, &mc, 0).unwrap();
            assert_eq!(row.rrs_wor_exact[i], w.exact);
            if w.exact {
                assert!((cell("rrs_wor") - w.value).abs() <= tol && row.rrs_wor_stderr[i] == 0.0);
            } else {
                // The same curve and stream: the same estimate.
                assert_eq!((cell("rrs_wor"), row.rrs_wor_stderr[i]), (w.value, w.stderr));
            }
        } else {
            assert!(cell("rrs_wor").is_nan());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn study_row_equals_the_single_n_functions((p, q) in pair()) {
        check_study_row(&p, &q, &[1, 2, 3, 4], 1e-10);
        check_study_row(&p, &q, &[4, 2], 1e-10);
    }

    #[test]
    fn study_row_equals_the_single_n_functions_on_wild_inputs((p, q) in (20usize..400).prop_flat_map(|v| (wild(v), wild(v)))) {
        check_study_row(&p, &q, &[2, 3, 4, 6, 8], 1e-10);
    }
}

#[test]
fn study_row_equals_the_single_n_functions_at_large_vocabularies() {
    // The one-pass race over all n prunes per n; it must give each n's own value.
    for (seed, temp) in [(31u64, 0.1), (32, 0.4), (33, 0.7), (34, 1.0)] {
        let (p, q) = peaked(6000, seed, temp);
        check_study_row(&p, &q, &[2, 3, 4, 6, 8], 1e-10);
    }
    // Near one-hot rows (mass off the top down to 1e-300) and exact zeros in q.
    let mut p = vec![1e-300; 3000];
    p[0] = 1.0;
    let mut q = vec![0.0; 3000];
    q[..40].iter_mut().enumerate().for_each(|(i, x)| *x = 1e-12 * (i + 1) as f64);
    q[1] = 1.0;
    check_study_row(&normalise(&p), &normalise(&q), &[2, 3, 4, 6, 8], 1e-10);
}

#[test]
fn study_rows_match_study_row_and_name_the_bad_row() {
    let (mut p, mut q) = (Vec::new(), Vec::new());
    for seed in 0..4u64 {
        let (a, b) = peaked(300, seed, 0.7);
        p.extend(a);
        q.extend(b);
    }
    let mc = MonteCarlo { samples: 64, ..MonteCarlo::default() };
    let rows = study_rows(&p, &q, 300, &[2, 3], &mc).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (r, got) in rows.iter().enumerate() {
        let one = study_row(&p[r * 300..(r + 1) * 300], &q[r * 300..(r + 1) * 300], &[2, 3], &mc, r as u64).unwrap();
        assert_eq!(bits(&got.values), bits(&one.values));
        assert_eq!((bits(&got.rrs_wor_stderr), &got.rrs_wor_exact), (bits(&one.rrs_wor_stderr), &one.rrs_wor_exact));
    }
    p[300] = f64::NAN;
    assert_eq!(study_rows(&p, &q, 300, &[2], &mc).unwrap_err().arg(), "p[row 1]");
    assert_eq!(study_rows(&q, &q, 300, &[], &mc).unwrap_err().arg(), "ns");
    assert_eq!(study_rows(&q, &q, 300, &[0], &mc).unwrap_err().arg(), "ns[row 0]");
}

#[test]
fn race_default_step_is_accurate_on_wide_range_inputs() {
    // Entries down to 1e-300 put features of the integrand at many scales of log t; the default
    // step must still match a much finer, wider quadrature (h = 0.35 left errors of 5e-8 here).
    let mut rng = crate::Rng::new(5);
    let mut worst = 0.0f64;
    for case in 0..120 {
        let v = 20 + (case * 7) % 380;
        let mut gen = |_| -> f64 {
            let u = rng.uniform();
            if u < 1.0 / 6.0 {
                0.0
            } else if u < 4.0 / 6.0 {
                10f64.powf(-300.0 * rng.uniform())
            } else {
                (1 + (rng.uniform() * 3.0) as u32) as f64 * 1e-3
            }
        };
        let p: Vec<f64> = (0..v).map(&mut gen).collect();
        let q: Vec<f64> = (0..v).map(&mut gen).collect();
        if !p.iter().any(|&x| x > 0.0) || support(&q) < 8 {
            continue;
        }
        let s = prep::sorted(&normalise(&p), &normalise(&q), 1.0, 1.0);
        let fine = wor::race_with(&s, &[3, 4, 6, 8], 0.08, 4.0);
        for (a, b) in wor::races(&s, &[3, 4, 6, 8]).iter().zip(&fine) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst <= 1e-10, "worst quadrature error {worst}");
}
