//! Criterion bench: optimal acceptance of an explicit law by max-flow (`specrs_core::flow`).
//!
//! The law is n i.i.d. drafts over k tokens given as its multiset graph (one row per multiset of
//! n tokens, probability = multinomial coefficient × Π q), the instance of the benchmark:
//! k = 64 and 128 with n = 2, k = 40 with n = 3. Two target/draft families: "indep" (independent
//! random p, q) and "close" (p = softmax(z), q = softmax(z + noise), a draft close to the target).
//! The timed call is the whole public `optimal_plan` (validation, grouping, max-flow, cut, plan).
//! Baselines (OR-Tools, scipy, HiGHS) are measured in the same run by benches/bench_flow.py.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use specrs_core::flow::optimal_plan;
use specrs_core::Rng;
use std::hint::black_box;
use std::time::Duration;

fn normal(rng: &mut Rng) -> f64 {
    let (u, v) = (rng.uniform_open(), rng.uniform());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn instance(close: bool, k: usize, rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let (mut p, mut q): (Vec<f64>, Vec<f64>) = if close {
        let z: Vec<f64> = (0..k).map(|_| 2.0 * normal(rng)).collect();
        let p = z.iter().map(|x| x.exp()).collect();
        let q = z.iter().map(|x| (x + 0.7 * normal(rng)).exp()).collect();
        (p, q)
    } else {
        // Gamma(1/2)-like weights (squared normals), as Dirichlet(1/2) draws.
        ((0..k).map(|_| normal(rng).powi(2)).collect(), (0..k).map(|_| normal(rng).powi(2)).collect())
    };
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    p.iter_mut().for_each(|x| *x /= sp);
    q.iter_mut().for_each(|x| *x /= sq);
    (p, q)
}

/// Rows: multisets of n tokens as non-decreasing tuples; probs: their i.i.d. probabilities.
fn multiset_law(q: &[f64], n: usize) -> (Vec<i64>, Vec<f64>) {
    fn rec(q: &[f64], n: usize, start: usize, row: &mut Vec<usize>, d: &mut Vec<i64>, w: &mut Vec<f64>) {
        if row.len() == n {
            let mut coef = 1.0;
            let fact = |x: usize| (1..=x).map(|i| i as f64).product::<f64>();
            let mut run = 1;
            for i in 1..=n {
                if i < n && row[i] == row[i - 1] {
                    run += 1;
                } else {
                    coef /= fact(run);
                    run = 1;
                }
            }
            coef *= fact(n);
            d.extend(row.iter().map(|&x| x as i64));
            w.push(coef * row.iter().map(|&x| q[x]).product::<f64>());
            return;
        }
        for t in start..q.len() {
            row.push(t);
            rec(q, n, t, row, d, w);
            row.pop();
        }
    }
    let (mut d, mut w) = (Vec::new(), Vec::new());
    rec(q, n, 0, &mut Vec::new(), &mut d, &mut w);
    let z: f64 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= z);
    (d, w)
}

fn bench_flow(c: &mut Criterion) {
    let mut group = c.benchmark_group("explicit_law_maxflow");
    group.sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for close in [false, true] {
        for (k, n) in [(64usize, 2usize), (128, 2), (40, 3)] {
            let mut rng = Rng::new(0);
            let (p, q) = instance(close, k, &mut rng);
            let (drafts, probs) = multiset_law(&q, n);
            let name = format!("{}/k{k}_n{n}", if close { "close" } else { "indep" });
            group.bench_with_input(BenchmarkId::from_parameter(name), &(), |b, _| {
                b.iter(|| black_box(optimal_plan(&p, &drafts, n, &probs).map(|plan| plan.value())))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_flow);
criterion_main!(benches);
