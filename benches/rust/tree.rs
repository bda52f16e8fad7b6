//! Draft-tree step cost, model calls excluded: build + flatten + verify of a 64-node RSD-S tree
//! (W = 8, L = 8: 8 expand calls; and W = 16, L = 4, the tree of `benches/bench_step_overhead.py`:
//! 49 expanded rows) at V = 49,152 and 32,000, single thread, dense float32 rows
//! (the softmax output as is) and sparse rows (top-64 support after warping); plus build + verify
//! of a 2×2×2 RSD-C tree (the without-replacement sampler and verifier at every node).
//! Baseline in the same run: one summing pass over the same dense draft rows (the floor for any
//! method that reads every q row once).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use specrs_core::tree::{DistRef, DraftTree, TreeKind};
use specrs_core::Rng;

/// (beam width W, depth L) of the RSD-S trees.
const SHAPES: [(usize, usize); 2] = [(8, 8), (16, 4)];
const POOL: usize = 16;
const K: usize = 64;

/// Peaked LM-like rows: p ∝ exp(3·z) with z standard-Gumbel-ish noise (a few tokens dominate).
fn rows(seed: u64, v: usize) -> Vec<Vec<f32>> {
    let mut r = Rng::new(seed);
    (0..POOL)
        .map(|_| {
            let mut w: Vec<f64> = (0..v).map(|_| (3.0 * r.gumbel()).exp()).collect();
            let s: f64 = w.iter().sum();
            w.iter_mut().for_each(|x| *x /= s);
            let mut f: Vec<f32> = w.iter().map(|&x| x as f32).collect();
            // Make the f32 row sum to 1 within f32 tolerance.
            let fs: f64 = f.iter().map(|&x| x as f64).sum();
            f.iter_mut().for_each(|x| *x = (*x as f64 / fs) as f32);
            f
        })
        .collect()
}

/// Top-K support of a dense row, renormalised: (ids, probs).
fn sparse(row: &[f32]) -> (Vec<i64>, Vec<f32>) {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.select_nth_unstable_by(K - 1, |a, b| row[*b].partial_cmp(&row[*a]).unwrap());
    idx.truncate(K);
    idx.sort();
    let s: f64 = idx.iter().map(|&i| row[i] as f64).sum();
    (idx.iter().map(|&i| i as i64).collect(), idx.iter().map(|&i| (row[i] as f64 / s) as f32).collect())
}

fn build(w: usize, l: usize, q: &[DistRef<'_>], seed: u64) -> DraftTree {
    build_kind(TreeKind::RsdS, vec![w; l], q, seed)
}

fn build_kind(kind: TreeKind, shape: Vec<usize>, q: &[DistRef<'_>], seed: u64) -> DraftTree {
    let mut t = DraftTree::new(kind, shape, Some(0), seed).unwrap();
    while !t.done() {
        let f = t.frontier.clone();
        let rows: Vec<DistRef> = f.iter().map(|&n| q[n % POOL]).collect();
        t.expand(&rows).unwrap();
    }
    t
}

fn bench(c: &mut Criterion) {
    for v in [49_152usize, 32_000] {
        for (w, l) in SHAPES {
            bench_v(c, v, w, l);
        }
    }
}

fn bench_v(c: &mut Criterion, v: usize, w: usize, l: usize) {
    let qd = rows(1, v);
    let pd = rows(2, v);
    let qs: Vec<(Vec<i64>, Vec<f32>)> = qd.iter().map(|r| sparse(r)).collect();
    let ps: Vec<(Vec<i64>, Vec<f32>)> = pd.iter().map(|r| sparse(r)).collect();
    // For the sparse target rows, make p share q's support on purpose-free rows: union is handled.
    let q_dense: Vec<DistRef> = qd.iter().map(|r| DistRef::D32(r)).collect();
    let p_dense: Vec<DistRef> = pd.iter().map(|r| DistRef::D32(r)).collect();
    let q_sparse: Vec<DistRef> = qs.iter().map(|(i, v)| DistRef::S32(i, v)).collect();
    let p_sparse: Vec<DistRef> = ps.iter().map(|(i, v)| DistRef::S32(i, v)).collect();

    let t = build(w, l, &q_dense, 3);
    assert_eq!(t.len(), 1 + w * l);
    let expanded_rows = t.nodes.iter().filter(|n| n.q.is_some()).count();

    let mut g = c.benchmark_group(format!("tree_rsd_s_{w}x{l}_v{v}"));
    g.sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    g.bench_function("baseline_sum_of_expanded_q_rows", |b| {
        b.iter(|| {
            let mut s = 0.0f64;
            for k in 0..expanded_rows {
                s += qd[k % POOL].iter().map(|&x| x as f64).sum::<f64>();
            }
            black_box(s)
        })
    });
    for (name, q, p) in [("dense_f32", &q_dense, &p_dense), ("sparse_top64_f32", &q_sparse, &p_sparse)] {
        let mut seed = 0u64;
        g.bench_function(format!("{name}/build"), |b| {
            b.iter(|| {
                seed += 1;
                black_box(build(w, l, q, seed))
            })
        });
        let t = build(w, l, q, 7);
        g.bench_function(format!("{name}/flatten"), |b| b.iter(|| black_box(t.flatten(100).unwrap())));
        g.bench_function(format!("{name}/verify"), |b| {
            b.iter(|| {
                seed += 1;
                black_box(t.verify(t.len(), |i| p[i % POOL], seed).unwrap())
            })
        });
        g.bench_function(format!("{name}/step_total"), |b| {
            b.iter(|| {
                seed += 1;
                let t = build(w, l, q, seed);
                let f = t.flatten(100).unwrap();
                black_box((f.n, t.verify(t.len(), |i| p[i % POOL], seed).unwrap()))
            })
        });
        g.bench_function(format!("{name}/rsd_c_2x2x2_build_verify"), |b| {
            b.iter(|| {
                seed += 1;
                let t = build_kind(TreeKind::RsdC, vec![2, 2, 2], q, seed);
                black_box(t.verify(t.len(), |i| p[i % POOL], seed).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
