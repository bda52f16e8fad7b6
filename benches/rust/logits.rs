//! The logits kernel of generation (`tree::logits::warped_row`, docs/generation.md "Warping") at
//! V = 49,152 and 152,064, float32 LM-like logits: dense rows (T = 0.7) and top-k rows (k = 50,
//! T = 1); plus one RSD-S level of 16 frontier rows (warping + drawing the children) and one
//! node verification from logits. Baseline in the same run: one f64 summing pass over the same
//! logits (the floor for any kernel that reads every entry once). ns per element = time / V.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use specrs_core::tree::logits::{warped_row, Warp};
use specrs_core::tree::{TreeBatch, TreeKind};
use specrs_core::Rng;

/// Logits of a peaked LM-like row: 3 · Gumbel noise (a few tokens dominate).
fn logits(seed: u64, v: usize) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..v).map(|_| (3.0 * r.gumbel()) as f32).collect()
}

fn bench(c: &mut Criterion) {
    for v in [49_152usize, 152_064] {
        let x = logits(1, v);
        let mut g = c.benchmark_group(format!("logits_v{v}"));
        g.sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
        g.throughput(Throughput::Elements(v as u64));
        g.bench_function("baseline_sum_f64", |b| b.iter(|| black_box(black_box(&x).iter().map(|&y| y as f64).sum::<f64>())));
        let dense = Warp::new(0.7, None).unwrap();
        g.bench_function("dense_t0.7", |b| b.iter(|| black_box(warped_row("logits", black_box(&x), &dense).unwrap())));
        let topk = Warp::new(1.0, Some(50)).unwrap();
        g.bench_function("top_k50", |b| b.iter(|| black_box(warped_row("logits", black_box(&x), &topk).unwrap())));
        g.finish();
    }
    // One RSD-S 16 × 4 step's second level: 16 frontier rows warped and 16 children drawn.
    let v = 49_152;
    let rows: Vec<Vec<f32>> = (0..16).map(|s| logits(10 + s, v)).collect();
    let mut g = c.benchmark_group("tree_level_v49152");
    g.sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_millis(500));
    for (name, w) in [("dense_t0.7", Warp::new(0.7, None).unwrap()), ("top_k50", Warp::new(1.0, Some(50)).unwrap())] {
        let mut tb = TreeBatch::new(TreeKind::RsdS, vec![16; 4], &[1], true).unwrap();
        g.bench_function(format!("rsd_s_16x4_levels_1_2/{name}"), |b| {
            b.iter(|| {
                tb.begin(&[0], &[10], &[4]).unwrap();
                tb.expand_logits(|_, i| &rows[i], &w).unwrap();
                tb.expand_logits(|_, i| &rows[i], &w).unwrap();
                black_box(tb.slots())
            })
        });
        g.bench_function(format!("walk_node_from_logits/{name}"), |b| {
            tb.begin(&[0], &[10], &[1]).unwrap();
            tb.expand_logits(|_, i| &rows[i], &w).unwrap();
            b.iter(|| {
                tb.walk_begin().unwrap();
                tb.walk_row_logits(0, &rows[3], &w).unwrap();
                black_box(tb.walk_needs())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
