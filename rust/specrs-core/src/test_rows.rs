//! Proptest strategies for probability rows, shared by the core's exactness tests (the Rust twin
//! of `tests/strategies.py`): ordinary rows (zeros, ties), confident rows (1 − ε on one token, ε
//! from 1e-10 down to 1e-300 spread over some others), float32 softmaxes with a 30–60 nat gap (as
//! f64 values) and subnormal tails — the regimes where "mass left" computed by subtraction loses
//! the law (docs/theory.md, "Remaining mass").

use proptest::prelude::*;

fn normalised(w: Vec<f64>) -> Vec<f64> {
    let s: f64 = w.iter().sum();
    w.into_iter().map(|x| x / s).collect()
}

/// Zeros, ties and free weights.
fn ordinary(v: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(prop_oneof![2 => Just(0.0), 1 => Just(0.25), 4 => 0.01f64..1.0], v)
        .prop_filter("needs mass", |w| w.iter().any(|&x| x > 0.0))
        .prop_map(normalised)
}

/// 1 − ε at `top` (1.0 when ε < 1.1e-16) and ε spread over the tokens flagged in `tail`.
fn spread(v: usize, top: usize, eps: f64, tail: Vec<u8>) -> Vec<f64> {
    let mut w = vec![0.0; v];
    let shares: f64 = (0..v).filter(|&i| i != top).map(|i| tail[i] as f64).sum();
    for i in (0..v).filter(|&i| i != top) {
        if shares > 0.0 {
            w[i] = eps * tail[i] as f64 / shares;
        }
    }
    w[top] = 1.0 - if shares > 0.0 { eps } else { 0.0 };
    w
}

fn tail_of(v: usize, lo: f64, hi: f64) -> impl Strategy<Value = Vec<f64>> {
    (0..v, lo..hi, proptest::collection::vec(0u8..4, v)).prop_map(move |(top, e, tail)| spread(v, top, 10f64.powf(-e), tail))
}

/// A row of any regime.
pub(crate) fn row(v: usize) -> impl Strategy<Value = Vec<f64>> {
    let softmax = (0..v, 30.0f64..60.0, proptest::collection::vec(prop_oneof![Just(0.0), Just(-1.0), Just(-40.0)], v)).prop_map(
        move |(top, gap, mut logits)| {
            logits[top] = gap;
            let z: Vec<f32> = logits.iter().map(|&l| ((l - gap) as f32).exp()).collect();
            let s: f32 = z.iter().sum();
            z.iter().map(|&x| (x / s) as f64).collect::<Vec<f64>>()
        },
    );
    prop_oneof![2 => ordinary(v), 1 => tail_of(v, 10.0, 300.0), 1 => softmax, 1 => tail_of(v, 309.0, 320.0)]
}

/// (p, q) over 2..=vmax tokens, each row of any regime.
pub(crate) fn pair(vmax: usize) -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (2usize..=vmax).prop_flat_map(|v| (row(v), row(v)))
}

/// The smallest positive entry of a row (the regime a case exercised).
pub(crate) fn smallest(r: &[f64]) -> f64 {
    r.iter().copied().filter(|&x| x > 0.0).fold(f64::INFINITY, f64::min)
}

/// The strategies reach every regime they promise (a strategy that silently stopped producing
/// confident or subnormal rows would make every exactness test that uses it weaker).
#[test]
fn rows_cover_every_regime() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut ordinary, mut confident, mut deep, mut subnormal, mut ties_or_zeros) = (0, 0, 0, 0, 0);
    for _ in 0..2000 {
        let r = row(5).new_tree(&mut runner).unwrap().current();
        assert!(r.iter().all(|x| x.is_finite() && *x >= 0.0) && (r.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{r:?}");
        let s = smallest(&r);
        match s {
            s if s < f64::MIN_POSITIVE => subnormal += 1,
            s if s < 1e-100 => deep += 1,
            s if s < 1e-9 => confident += 1,
            _ => ordinary += 1,
        }
        let mut sorted: Vec<f64> = r.iter().copied().filter(|&x| x > 0.0).collect();
        sorted.sort_by(f64::total_cmp);
        ties_or_zeros += usize::from(r.contains(&0.0) || sorted.windows(2).any(|w| w[0] == w[1]));
    }
    for (name, count) in [
        ("ordinary", ordinary),
        ("confident", confident),
        ("below 1e-100", deep),
        ("subnormal", subnormal),
        ("ties or zeros", ties_or_zeros),
    ] {
        assert!(count >= 100, "only {count} of 2000 rows are {name}");
    }
}
