//! Criterion benches of the exact RRS-without-replacement method (docs/theory.md §12) and of the
//! acceptance study's row (`bounds::study_row`) on rows shaped like a real model's: Zipf-like
//! target logits z = −1.1·log(rank) + 0.7·Gumbel over a shuffled vocabulary, draft logits
//! z + 0.6·N(0, 1) (the rows of `benches/bench_study.py`), softmax at T ∈ {0.7, 1.0}; dense drafts,
//! a draft whose mass sits on its 8,192 most likely tokens (the SmolLM2 draft's head), a top-50
//! draft and a confident row (the draft's top logit 12 nats above the rest).
//!
//! cargo bench -p specrs-core --bench rrs_wor            (add a name filter, e.g. "V=32000 T=1")

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use specrs_core::bounds::{rrs_wor, study_row, MonteCarlo};
use specrs_core::Rng;

/// How the draft's support is cut.
#[derive(Clone, Copy)]
enum Draft {
    Dense,
    /// Only the k most likely draft tokens keep mass.
    Top(usize),
    /// The draft's top token 12 nats above the others (dense otherwise).
    Confident,
}

fn row(v: usize, seed: u64, temp: f64, draft: Draft) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let mut z: Vec<f64> = (0..v).map(|i| -1.1 * ((i + 1) as f64).ln() + 0.7 * rng.gumbel()).collect();
    // Shuffle (Fisher–Yates) so that the order by p/q is unrelated to the index order.
    for i in (1..v).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize % (i + 1);
        z.swap(i, j);
    }
    let mut d: Vec<f64> = z
        .iter()
        .map(|l| {
            let (u1, u2) = (rng.uniform_open(), rng.uniform());
            l + 0.6 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    match draft {
        Draft::Dense => {}
        Draft::Top(k) => {
            let mut sorted = d.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            let cut = sorted[k - 1];
            d.iter_mut().filter(|x| **x < cut).for_each(|x| *x = f64::NEG_INFINITY);
        }
        Draft::Confident => {
            let (top, _) = d.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
            let second = d.iter().enumerate().filter(|&(i, _)| i != top).map(|(_, &x)| x).fold(f64::NEG_INFINITY, f64::max);
            d[top] = second + 12.0 * temp;
        }
    }
    // Float32 probabilities, as a model gives them, then normalised in f64.
    let soft = |xs: &[f64]| {
        let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = xs.iter().map(|x| (((x - m) / temp).exp() as f32) as f64).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect::<Vec<f64>>()
    };
    (soft(&z), soft(&d))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rrs_wor");
    g.sample_size(10);
    let cases: [(usize, f64, Draft, &str); 7] = [
        (32_000, 1.0, Draft::Dense, "dense"),
        (32_000, 0.7, Draft::Dense, "dense"),
        (49_152, 1.0, Draft::Dense, "dense"),
        (49_152, 0.7, Draft::Dense, "dense"),
        (49_152, 1.0, Draft::Top(8192), "top-8192"),
        (49_152, 1.0, Draft::Top(50), "top-50"),
        (49_152, 1.0, Draft::Confident, "confident"),
    ];
    for (i, &(v, temp, draft, label)) in cases.iter().enumerate() {
        let (p, q) = row(v, 11 + i as u64, temp, draft);
        let curve = rrs_wor::Curve::new(&p, &q);
        for n in [3usize, 4] {
            let name = format!("exact n={n} V={v} T={temp} {label}");
            let prepared = rrs_wor::Prepared::new(&curve, rrs_wor::DETERMINISTIC_MAX_N);
            if let Some((rej, err, work)) = prepared.rejection_work(n, rrs_wor::TOLERANCE, rrs_wor::EXACT_NODES) {
                eprintln!("{name}: acceptance {:.12}, error estimate {err:.1e}, {work:?}", 1.0 - rej);
            }
            g.bench_function(name, |b| {
                b.iter(|| {
                    let prepared = rrs_wor::Prepared::new(black_box(&curve), rrs_wor::DETERMINISTIC_MAX_N);
                    prepared.rejection(n, rrs_wor::TOLERANCE, rrs_wor::EXACT_NODES).unwrap()
                })
            });
        }
    }
    g.finish();

    // The acceptance study's row: every column for n ∈ {2, 3, 4, 6, 8}.
    let mut g = c.benchmark_group("study_row");
    g.sample_size(10);
    let mc = MonteCarlo { samples: 256, ..MonteCarlo::default() };
    for (i, (temp, draft, label)) in
        [(1.0, Draft::Top(8192), "top-8192"), (0.7, Draft::Top(8192), "top-8192"), (1.0, Draft::Dense, "dense")].into_iter().enumerate()
    {
        let (p, q) = row(49_152, 31 + i as u64, temp, draft);
        g.bench_function(format!("V=49152 T={temp} {label} n=2,3,4,6,8"), |b| {
            b.iter(|| study_row(black_box(&p), black_box(&q), &[2, 3, 4, 6, 8], &mc, 0).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
