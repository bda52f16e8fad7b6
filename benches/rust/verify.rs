//! One verification step for every verifier, n = 4 drafts (SpecHub: 2, SD: 1), single thread,
//! f32 inputs (softmax outputs of a float32 model), at V = 49,152 (SmolLM2's vocabulary) and
//! V = 32,000, on dense rows and on top-64 rows (the same rows after top-k warping: 64 non-zero
//! entries, dense layout); plus the per-call cost of the optimal verifier once its plan is built
//! (greedy drafts), and the draft samplers.
//!
//! Run: cargo bench -p specrs-core --bench verify

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use specrs_core::sample::draft;
use specrs_core::verify::{verify_scheme, OptimalVerifier};
use specrs_core::{Rng, Scheme, Verifier};

/// Draft and target distributions from correlated Gaussian logits (target = draft + noise).
fn instance(v: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(0);
    let mut normal = || {
        let (u, w) = (rng.uniform_open(), rng.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * w).cos()
    };
    let zq: Vec<f64> = (0..v).map(|_| 2.5 * normal()).collect();
    let zp: Vec<f64> = zq.iter().map(|z| z + normal()).collect();
    (softmax(&zp), softmax(&zq))
}

fn softmax(z: &[f64]) -> Vec<f32> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|x| (x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| (x / s) as f32).collect()
}

/// The row kept on its `k` largest entries, renormalised (zeros elsewhere, dense layout).
fn top_k_row(row: &[f32], k: usize) -> Vec<f32> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.select_nth_unstable_by(k - 1, |a, b| row[*b].partial_cmp(&row[*a]).unwrap());
    let s: f64 = idx[..k].iter().map(|&i| row[i] as f64).sum();
    let mut out = vec![0.0f32; row.len()];
    for &i in &idx[..k] {
        out[i] = (row[i] as f64 / s) as f32;
    }
    out
}

fn bench(c: &mut Criterion) {
    let cases = [
        (Verifier::Sd, Scheme::Iid, 1),
        (Verifier::Rrs, Scheme::Iid, 4),
        (Verifier::RrsWor, Scheme::Wor, 4),
        (Verifier::Kseq, Scheme::Iid, 4),
        (Verifier::Greedy, Scheme::Greedy, 4),
        (Verifier::SpecHub, Scheme::SpecHub, 2),
        (Verifier::Match, Scheme::Wor, 4),
    ];
    for v in [49_152usize, 32_000] {
        let (pd, qd) = instance(v);
        // Top-64 rows: the target keeps the draft's top 64 tokens' support plus its own.
        let (pk, qk) = (top_k_row(&pd, 64), top_k_row(&qd, 64));
        for (rows, p, q) in [("dense", &pd, &qd), ("top64", &pk, &qk)] {
            let mut g = c.benchmark_group(format!("verify_v{v}_{rows}"));
            for (verifier, scheme, n) in cases {
                let Ok(drafts) = draft(q, n, scheme, &mut Rng::new(1)) else { continue };
                if verify_scheme(verifier, Some(scheme), p, q, &drafts, &mut Rng::new(2)).is_err() {
                    continue;
                }
                let mut rng = Rng::new(2);
                g.bench_function(verifier.as_str(), |b| {
                    b.iter(|| verify_scheme(verifier, Some(scheme), black_box(p), black_box(q), &drafts, &mut rng).unwrap())
                });
            }
            if v == 49_152 && rows == "dense" {
                // The optimal verifier: plan built once (not timed), then one call = lookup + draw.
                let law = specrs_core::scheme_law(q, 4, Scheme::Greedy).unwrap();
                let ov = OptimalVerifier::from_law(p, &law).unwrap();
                let drafts = draft(q, 4, Scheme::Greedy, &mut Rng::new(1)).unwrap();
                let mut rng = Rng::new(3);
                g.bench_function("optimal (plan prebuilt)", |b| b.iter(|| ov.verify(black_box(&drafts), &mut rng).unwrap()));
            }
            g.finish();

            let mut g = c.benchmark_group(format!("draft_v{v}_{rows}"));
            for (scheme, n) in [(Scheme::Iid, 4), (Scheme::Wor, 4), (Scheme::Greedy, 4), (Scheme::SpecHub, 2), (Scheme::Cp, 4)] {
                let mut rng = Rng::new(4);
                g.bench_function(scheme.as_str(), |b| b.iter(|| draft(black_box(q), n, scheme, &mut rng).unwrap()));
            }
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
