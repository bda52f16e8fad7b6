//! Criterion benches of the optimal-acceptance engine on realistic peaked pairs (Zipf-like target
//! logits with Gumbel noise, draft = target + Gaussian noise, softmax at temperature T). Baselines in the same
//! run: the full-sort prefix scan for iid (`iid_sorted`).
//!
//! cargo bench -p specrs-core --bench bounds

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use specrs_core::bounds::{self, iid, prep, MonteCarlo};
use specrs_core::{Rng, Scheme, Verifier};

fn peaked(v: usize, seed: u64, temp: f64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let logits: Vec<f64> = (0..v).map(|i| -1.1 * ((i + 1) as f64).ln() + 0.7 * rng.gumbel()).collect();
    let soft = |xs: Vec<f64>| {
        let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = xs.iter().map(|x| ((x - m) / temp).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect::<Vec<f64>>()
    };
    // Draft = target + N(0, 0.6²) noise (Box–Muller), as `specrs bound --example` does.
    let q = soft(
        logits
            .iter()
            .map(|l| {
                let (u1, u2) = (rng.uniform_open(), rng.uniform());
                l + 0.6 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            })
            .collect(),
    );
    (soft(logits), q)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("bounds");
    g.sample_size(20);
    let (p, q) = peaked(151_936, 1, 0.7);
    g.bench_function("iid V=151936 n=4 (bucketed)", |b| {
        b.iter(|| bounds::optimal_acceptance(black_box(&p), black_box(&q), 4, Scheme::Iid).unwrap())
    });
    g.bench_function("iid V=151936 n=4 (baseline: full sort + scan)", |b| {
        b.iter(|| iid::value_sorted(black_box(&p), black_box(&q), 4, 1.0, 1.0))
    });
    let (p32, q32) = peaked(32_000, 2, 0.7);
    for n in [2usize, 3, 4] {
        g.bench_function(format!("wor V=32000 n={n} (exact)"), |b| {
            b.iter(|| bounds::optimal_acceptance(black_box(&p32), black_box(&q32), n, Scheme::Wor).unwrap())
        });
    }
    g.bench_function("wor V=32000 n=4 (sort only)", |b| b.iter(|| prep::sorted(black_box(&p32), black_box(&q32), 1.0, 1.0)));
    g.bench_function("cp V=32000 n=4", |b| b.iter(|| bounds::optimal_acceptance(black_box(&p32), black_box(&q32), 4, Scheme::Cp).unwrap()));
    g.bench_function("greedy V=32000 n=4", |b| {
        b.iter(|| bounds::optimal_acceptance(black_box(&p32), black_box(&q32), 4, Scheme::Greedy).unwrap())
    });
    let mc = MonteCarlo::default();
    for (v, n) in [(Verifier::Rrs, 4usize), (Verifier::Kseq, 4), (Verifier::RrsWor, 2), (Verifier::RrsWor, 4)] {
        g.bench_function(format!("verifier {} V=32000 n={n}", v.as_str()), |b| {
            b.iter(|| bounds::verifier_acceptance(black_box(&p32), black_box(&q32), n, v, None, &mc, 0).unwrap())
        });
    }
    // The exact RRS-wor method's hardest common case (issue 13 §4: V = 32,000, n = 4 at T = 1).
    let (p32t1, q32t1) = peaked(32_000, 2, 1.0);
    g.bench_function("verifier rrs_wor V=32000 T=1 n=4 (deterministic)", |b| {
        b.iter(|| bounds::verifier_acceptance(black_box(&p32t1), black_box(&q32t1), 4, Verifier::RrsWor, None, &mc, 0).unwrap())
    });
    g.finish();

    // SmolLM2's V = 49,152 as a float32 model gives it (the same peaked pair, cast).
    let mut g = c.benchmark_group("bounds_v49152_f32");
    g.sample_size(20);
    let (p64, q64) = peaked(49_152, 3, 0.7);
    let f32s = |v: &[f64]| {
        let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let s: f64 = f.iter().map(|&x| x as f64).sum();
        f.iter().map(|&x| (x as f64 / s) as f32).collect::<Vec<f32>>()
    };
    let (pf, qf) = (f32s(&p64), f32s(&q64));
    for (scheme, n) in [(Scheme::Iid, 4usize), (Scheme::Wor, 2), (Scheme::Wor, 4), (Scheme::Greedy, 4)] {
        g.bench_function(format!("{} n={n}", scheme.as_str()), |b| {
            b.iter(|| bounds::optimal_acceptance(black_box(&pf), black_box(&qf), n, scheme).unwrap())
        });
    }
    for (v, n) in [(Verifier::Rrs, 4usize), (Verifier::Kseq, 4)] {
        g.bench_function(format!("verifier {} n={n}", v.as_str()), |b| {
            b.iter(|| bounds::verifier_acceptance(black_box(&pf), black_box(&qf), n, v, None, &mc, 0).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("bounds-batch");
    g.sample_size(10);
    let (mut bp, mut bq) = (Vec::with_capacity(1024 * 32_000), Vec::with_capacity(1024 * 32_000));
    for r in 0..1024u64 {
        let (a, b) = peaked(32_000, 100 + r, 0.5 + (r % 8) as f64 * 0.1);
        bp.extend(a);
        bq.extend(b);
    }
    g.bench_function("iid batch 1024 x 32000 n=4 (rayon)", |b| {
        b.iter(|| bounds::optimal_acceptance_rows(black_box(&bp), black_box(&bq), 32_000, 4, Scheme::Iid).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
