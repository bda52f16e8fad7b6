//! One verification step at V = 49,152 (SmolLM2's vocabulary), n = 4 drafts (SpecHub: 2, SD: 1),
//! for every verifier, single thread, f32 inputs (softmax outputs of a float32 model), plus the
//! per-call cost of the optimal verifier once its plan is built (greedy drafts).
//!
//! Run: cargo bench -p specrs-core --bench verify

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use specrs_core::sample::draft;
use specrs_core::verify::{verify_scheme, OptimalVerifier};
use specrs_core::{Rng, Scheme, Verifier};

const V: usize = 49_152;

/// Draft and target distributions from correlated Gaussian logits (target = draft + noise).
fn instance() -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(0);
    let mut normal = || {
        let (u, v) = (rng.uniform_open(), rng.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let zq: Vec<f64> = (0..V).map(|_| 2.5 * normal()).collect();
    let zp: Vec<f64> = zq.iter().map(|z| z + normal()).collect();
    let softmax = |z: &[f64]| {
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|x| (x - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| (x / s) as f32).collect::<Vec<f32>>()
    };
    (softmax(&zp), softmax(&zq))
}

fn bench(c: &mut Criterion) {
    let (p, q) = instance();
    let cases = [
        (Verifier::Sd, Scheme::Iid, 1),
        (Verifier::Rrs, Scheme::Iid, 4),
        (Verifier::RrsWor, Scheme::Wor, 4),
        (Verifier::Kseq, Scheme::Iid, 4),
        (Verifier::Greedy, Scheme::Greedy, 4),
        (Verifier::SpecHub, Scheme::SpecHub, 2),
        (Verifier::Match, Scheme::Wor, 4),
    ];
    let mut g = c.benchmark_group("verify_v49152");
    for (verifier, scheme, n) in cases {
        let drafts = draft(&q, n, scheme, &mut Rng::new(1)).unwrap();
        let mut rng = Rng::new(2);
        g.bench_function(verifier.as_str(), |b| {
            b.iter(|| verify_scheme(verifier, Some(scheme), black_box(&p), black_box(&q), &drafts, &mut rng).unwrap())
        });
    }
    // The optimal verifier: plan built once (not timed), then one call = lookup + draw.
    let law = specrs_core::scheme_law(&q, 4, Scheme::Greedy).unwrap();
    let ov = OptimalVerifier::from_law(&p, &law).unwrap();
    let drafts = draft(&q, 4, Scheme::Greedy, &mut Rng::new(1)).unwrap();
    let mut rng = Rng::new(3);
    g.bench_function("optimal (plan prebuilt)", |b| b.iter(|| ov.verify(black_box(&drafts), &mut rng).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("draft_v49152");
    for (scheme, n) in [(Scheme::Iid, 4), (Scheme::Wor, 4), (Scheme::Greedy, 4), (Scheme::SpecHub, 2), (Scheme::Cp, 4)] {
        let mut rng = Rng::new(4);
        g.bench_function(scheme.as_str(), |b| b.iter(|| draft(black_box(&q), n, scheme, &mut rng).unwrap()));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
