//! Fuzz target over the core's public entry points (issue 9's "Proof"): arbitrary, often invalid
//! or extreme inputs (NaN, ±inf, negatives, subnormals, confident rows, huge n, mismatched
//! shapes, f32 and f64) must give `Ok` or an `Error` naming an argument, never a panic (proptest
//! fails on a panic) and never an allocation sized by the input without a limit check.
//! `verify::tests::never_panics` covers the node verifiers the same way.

use proptest::prelude::*;
use specrs_core::bounds::{self, MonteCarlo};
use specrs_core::tree::{shape, DistRef, DraftTree, TreeKind};
use specrs_core::{exact, flow, limits, sample, scheme_law, validate, Error, Rng, Scheme, Verifier};

fn entry() -> impl Strategy<Value = f64> {
    prop_oneof![
        30 => 0.0f64..1.0,
        6 => Just(0.0),
        2 => Just(1e-300),
        2 => Just(5e-324),
        2 => Just(1e-17),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.25),
        1 => Just(-1e-300),
        1 => Just(1e308),
    ]
}

/// A row: raw entries, normalised most of the time, optionally made confident (one entry 1).
fn row(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<f64>> {
    (prop::collection::vec(entry(), len), 0u8..8).prop_map(|(x, mode)| {
        let t: f64 = x.iter().sum();
        match mode {
            0 => x,
            1 if !x.is_empty() => {
                let mut y = vec![1e-300; x.len()];
                y[0] = 1.0;
                y
            }
            _ if t.is_finite() && t > 0.0 => x.iter().map(|a| a / t).collect(),
            _ => x,
        }
    })
}

fn count() -> impl Strategy<Value = usize> {
    prop_oneof![
        20 => 0usize..6,
        1 => Just(limits::MAX_DRAFTS),
        1 => Just(limits::MAX_DRAFTS + 1),
        1 => Just(1usize << 40),
        1 => Just(usize::MAX),
    ]
}

const VERIFIERS: [Verifier; 8] = [
    Verifier::Sd,
    Verifier::Rrs,
    Verifier::RrsWor,
    Verifier::Kseq,
    Verifier::Greedy,
    Verifier::SpecHub,
    Verifier::Match,
    Verifier::Optimal,
];

/// An error is fine if it names an argument (or is a size limit); anything else is a bug.
fn named(e: &Error, allowed: &[&str]) -> bool {
    let arg = e.arg();
    let base = arg.split('[').next().unwrap_or(arg);
    allowed.contains(&base)
}

const ARGS: &[&str] = &[
    "p",
    "q",
    "n",
    "scheme",
    "verifier",
    "drafts",
    "probs",
    "samples",
    "budget",
    "depth",
    "branching",
    "beam_width",
    "tree",
    "prefix_len",
    "token_ids",
    "acceptance",
    "shape",
];

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1500,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x0915),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Samplers, bounds, verifier acceptance and the exact law on one (p, q, n, scheme).
    #[test]
    fn rows_and_counts_never_panic(
        p in row(1..7),
        q in row(1..7),
        n in count(),
        s in 0usize..5,
        v in 0usize..8,
        samples in prop_oneof![Just(2usize), Just(50), Just(limits::MAX_SAMPLES + 1)],
        seed in any::<u64>(),
        single in any::<bool>(),
    ) {
        let scheme = Scheme::ALL[s];
        let verifier = VERIFIERS[v];
        let mc = MonteCarlo { samples, seed, ..MonteCarlo::default() };
        let check = |r: Result<(), Error>| -> Result<(), TestCaseError> {
            if let Err(e) = r { prop_assert!(named(&e, ARGS), "unnamed error: {e}"); }
            Ok(())
        };
        if single {
            let (pf, qf) = (f32s(&p), f32s(&q));
            check(sample::draft(&qf, n, scheme, &mut Rng::new(seed)).map(|d| assert!(d.iter().all(|&x| x < q.len()))))?;
            check(bounds::optimal_acceptance(&pf, &qf, n, scheme).map(|_| ()))?;
            check(bounds::verifier_acceptance(&pf, &qf, n, verifier, Some(scheme), &mc, 0).map(|_| ()))?;
        } else {
            check(sample::draft(&q, n, scheme, &mut Rng::new(seed)).map(|d| assert!(d.iter().all(|&x| x < q.len()))))?;
            check(bounds::optimal_acceptance(&p, &q, n, scheme).map(|_| ()))?;
            check(bounds::verifier_acceptance(&p, &q, n, verifier, None, &mc, 0).map(|_| ()))?;
            check(bounds::kseq_rho(&p, &q, n).map(|_| ()))?;
            check(exact::output_distribution(&p, &q, n, verifier, Some(scheme)).map(|_| ()))?;
            check(scheme_law(&q, n, scheme).map(|_| ()))?;
        }
        // Batched forms: rows × V with a V that may not divide the length.
        let vv = p.len().min(q.len());
        let rows2 = [&p[..vv], &p[..vv]].concat();
        let rowq2 = [&q[..vv], &q[..vv]].concat();
        check(sample::draft_batch(&rowq2, vv, n, scheme, seed).map(|_| ()))?;
        check(bounds::optimal_acceptance_rows(&rows2, &rowq2, vv, n, scheme).map(|_| ()))?;
        check(bounds::verifier_acceptance_rows(&rows2, &rowq2, vv, n, verifier, None, &mc).map(|_| ()))?;
        check(validate::row("p", &p).map(|_| ()))?;
    }

    /// Explicit laws: the max-flow plan and the optimal verifier on arbitrary tables.
    #[test]
    fn explicit_laws_never_panic(
        p in row(1..6),
        probs in row(0..6),
        n in 0usize..4,
        ids in prop::collection::vec(-2i64..8, 0..20),
        seed in any::<u64>(),
    ) {
        let m = probs.len();
        let table: Vec<i64> = ids.iter().cycle().take(m * n).copied().collect();
        match flow::optimal_plan(&p, &table, n, &probs) {
            Ok(plan) => {
                prop_assert!(plan.value() >= -1e-9 && plan.value() <= 1.0 + 1e-9);
                for r in 0..plan.rows() {
                    let (t, _) = plan.sample(r, &mut Rng::new(seed));
                    prop_assert!(t < p.len());
                }
            }
            Err(e) => prop_assert!(named(&e, ARGS), "unnamed error: {e}"),
        }
        if let Err(e) = sample::draft_explicit_row(&probs, &mut Rng::new(seed)) {
            prop_assert!(named(&e, ARGS), "{e}");
        }
    }

    /// Trees: shapes, building level by level from arbitrary rows, flattening, verification.
    #[test]
    fn trees_never_panic(
        k in 0usize..6,
        branching in prop::collection::vec(prop_oneof![8 => 0usize..4, 1 => Just(1usize << 30)], 0..4),
        rows in prop::collection::vec(row(1..6), 1..12),
        budget in prop_oneof![0usize..20, Just(limits::MAX_SHAPE_BUDGET + 1)],
        depth in prop::option::of(0usize..6),
        prefix in 0usize..4,
        seed in any::<u64>(),
    ) {
        let kind = TreeKind::ALL[k];
        for r in [shape::shapes(kind, budget, depth).map(|_| ()), shape::best(kind, budget, depth, None).map(|_| ())] {
            if let Err(e) = r { prop_assert!(named(&e, ARGS), "{e}"); }
        }
        let shape_ = if kind == TreeKind::RsdS { vec![branching.first().copied().unwrap_or(1); branching.len()] } else { branching };
        let mut t = match DraftTree::new(kind, shape_, Some(0), seed) {
            Ok(t) => t,
            Err(e) => { prop_assert!(named(&e, ARGS), "{e}"); return Ok(()); }
        };
        t.truncate = seed % 2 == 0;
        let mut next = 0usize;
        while !t.done() {
            let f = t.frontier.len();
            let level: Vec<DistRef<'_>> = (0..f).map(|i| DistRef::D64(&rows[(next + i) % rows.len()])).collect();
            next += f;
            if let Err(e) = t.expand(&level) { prop_assert!(named(&e, ARGS), "{e}"); break; }
        }
        match t.flatten(prefix) {
            Ok(flat) => prop_assert_eq!(flat.n, t.len()),
            Err(e) => prop_assert!(named(&e, ARGS), "{e}"),
        }
        if let Err(e) = t.verify(t.len(), |i| DistRef::D64(&rows[i % rows.len()]), seed) {
            prop_assert!(named(&e, ARGS), "{e}");
        }
    }

    /// The limit checks themselves: overflow-safe, inclusive, naming the argument.
    #[test]
    fn limit_checks_are_overflow_safe(dims in prop::collection::vec(any::<usize>(), 0..4), elem in 0usize..16) {
        match limits::check_alloc("x", "buffer", &dims, elem) {
            Ok(e) => {
                let elems = dims.iter().fold(1u128, |a, &d| a.saturating_mul(d as u128));
                prop_assert!(elems.saturating_mul(elem.max(1) as u128) <= limits::MAX_ALLOC_BYTES as u128);
                prop_assert_eq!(e as u128, elems);
            }
            Err(e) => prop_assert!(matches!(e, Error::TooLarge { .. }) && e.arg() == "x", "{e}"),
        }
    }
}
