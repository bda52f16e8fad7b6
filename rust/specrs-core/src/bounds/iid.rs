//! α* for n i.i.d. drafts (with replacement): Q(H) = q(H)^n, so (Hu et al., ICLR 2025, §4.2.1;
//! docs/theory.md §2.3)
//!
//! ```text
//!     α* = 1 + min(0, min_k [ p(H_k) − q(H_k)^n ]),   H_k = the k tokens of largest q/p.
//! ```
//!
//! A full sort costs O(V log V) (≈ 10 ms at V = 152k). Only the order *near the minimiser*
//! matters, so [`value`] buckets the ratios r = p/q in one pass by the top bits of their f64
//! pattern (monotone in r), evaluates f exactly at every bucket boundary (each is a prefix of the
//! sorted order), and bounds f inside each bucket from the bucket sums and the ratio range
//! [lo, hi] of the bucket: inside it p(H) ≥ P₀ + lo·(Q − Q₀) and p(H) ≥ P₁ − hi·(Q₁ − Q), and
//! P − Q^n is concave along either line, so the bound is the smaller of its two end values.
//! Only buckets whose bound is below the best boundary value are refined, recursively with
//! finer buckets (next 8 bits of the ratio), and sorted once they are small.

use super::prep::pown;
use crate::Real;

/// Mantissa bits of the ratio kept in the first-level key: buckets are 2^(1/16) wide in r.
const M: u32 = 4;
/// Ratios in [2^-64, 2^64) get their own buckets; smaller/larger ones share the end buckets.
const BASE: u64 = (1023 - 64) << M;
const NB: usize = 128 << M;
/// Blocks at most this long are sorted and scanned directly.
const SMALL: usize = 48;
const NO_KEY: u16 = u16::MAX;
const INF_BITS: u64 = 0x7FF0_0000_0000_0000;

#[derive(Clone, Copy)]
struct Item {
    bits: u64,
    p: f64,
    q: f64,
}

fn bucket_lo(k: usize) -> f64 {
    if k == 0 {
        0.0
    } else {
        f64::from_bits((k as u64 + BASE) << (52 - M))
    }
}

fn bucket_hi(k: usize) -> f64 {
    if k == NB - 1 {
        f64::INFINITY
    } else {
        f64::from_bits((k as u64 + 1 + BASE) << (52 - M))
    }
}

/// Lower bound of f = P − Q^n over the prefixes inside a block that starts at (p0, q0), has sums
/// (pb, qb) and ratios p/q in [lo, hi].
#[inline]
fn lower_bound(p0: f64, q0: f64, pb: f64, qb: f64, lo: f64, hi: f64, n: usize) -> f64 {
    let (p1, q1) = (p0 + pb, q0 + qb);
    let (a, b) = (pown(q0, n), pown(q1, n));
    let lb_lo = (p0 - a).min(p0 + lo * qb - b);
    let lb_hi = if hi.is_finite() { (p1 - hi * qb - a).min(p1 - b) } else { f64::NEG_INFINITY };
    lb_lo.max(lb_hi)
}

/// α* for i.i.d. drafts; inputs already validated, `sp`, `sq` = 1/Σp, 1/Σq. n ≥ 1.
pub fn value<T: Real>(p: &[T], q: &[T], n: usize, sp: f64, sq: f64) -> f64 {
    let ni = n;
    let (sum_p, sum_q, count, keys) = bucket_pass(p, q, sp, sq);

    // Exact values at the bucket boundaries, and where each bucket starts.
    let mut best = 0.0f64;
    let mut start = vec![(0.0f64, 0.0f64); NB];
    let (mut cp, mut cq) = (0.0f64, 0.0f64);
    for k in 0..NB {
        if count[k] == 0 {
            continue;
        }
        start[k] = (cp, cq);
        cp += sum_p[k];
        cq += sum_q[k];
        best = best.min(cp - pown(cq, ni));
    }
    // Buckets that may still hold a smaller value (a one-token bucket has only its boundaries).
    let mut cands: Vec<(f64, usize)> = (0..NB)
        .filter(|&k| count[k] >= 2)
        .map(|k| (lower_bound(start[k].0, start[k].1, sum_p[k], sum_q[k], bucket_lo(k), bucket_hi(k), ni), k))
        .filter(|&(lb, _)| lb < best)
        .collect();
    if cands.is_empty() {
        return 1.0 + best;
    }
    cands.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));

    // Gather the tokens of the candidate buckets, grouped by bucket.
    let mut slot = vec![u32::MAX; NB];
    let mut offset = Vec::with_capacity(cands.len() + 1);
    offset.push(0usize);
    for (s, &(_, k)) in cands.iter().enumerate() {
        slot[k] = s as u32;
        offset.push(offset[s] + count[k] as usize);
    }
    let mut fill = offset.clone();
    let mut items = vec![Item { bits: 0, p: 0.0, q: 0.0 }; offset[cands.len()]];
    for (i, &k) in keys.iter().enumerate() {
        if k == NO_KEY {
            continue;
        }
        let s = slot[k as usize];
        if s != u32::MAX {
            let qi = q[i].to_f64() * sq;
            let pi = p[i].to_f64() * sp;
            let s = s as usize;
            items[fill[s]] = Item { bits: (pi / qi).to_bits(), p: pi, q: qi };
            fill[s] += 1;
        }
    }
    let mut scratch = Vec::new();
    for (s, &(lb, k)) in cands.iter().enumerate() {
        if lb < best {
            let (p0, q0) = start[k];
            refine(&mut items[offset[s]..offset[s + 1]], p0, q0, ni, &mut best, &mut scratch);
        }
    }
    1.0 + best
}

type Buckets = (Vec<f64>, Vec<f64>, Vec<u32>, Vec<u16>);

/// First pass: bucket key of every token (NO_KEY for q = 0) and per-bucket sums and counts.
fn bucket_pass<T: Real>(p: &[T], q: &[T], sp: f64, sq: f64) -> Buckets {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2.
            return unsafe { bucket_pass_avx2(p, q, sp, sq) };
        }
    }
    bucket_pass_impl(p, q, sp, sq)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bucket_pass_avx2<T: Real>(p: &[T], q: &[T], sp: f64, sq: f64) -> Buckets {
    bucket_pass_impl(p, q, sp, sq)
}

#[inline(always)]
fn bucket_pass_impl<T: Real>(p: &[T], q: &[T], sp: f64, sq: f64) -> Buckets {
    const CHUNK: usize = 256;
    // Two interleaved tables (+ one trash slot NB for q = 0) halve the store-to-load chains of
    // consecutive tokens that fall in the same bucket.
    let mut tp = vec![0.0f64; 2 * (NB + 1)];
    let mut tq = vec![0.0f64; 2 * (NB + 1)];
    let mut cnt = vec![0u32; 2 * (NB + 1)];
    let mut keys: Vec<u16> = vec![0; p.len()];
    let mut kbuf = [0u32; CHUNK];
    for ((pc, qc), kc) in p.chunks(CHUNK).zip(q.chunks(CHUNK)).zip(keys.chunks_mut(CHUNK)) {
        // Vectorisable: ratio, key, and the q = 0 → trash slot select.
        for ((kb, &pi), &qi) in kbuf.iter_mut().zip(pc).zip(qc) {
            let qi = qi.to_f64() * sq;
            let r = pi.to_f64() * sp / qi;
            let k = ((r.to_bits() >> (52 - M)) as i64 - BASE as i64).clamp(0, NB as i64 - 1) as u32;
            *kb = if qi > 0.0 { k } else { NB as u32 };
        }
        for (j, ((&kb, &pi), &qi)) in kbuf.iter().zip(pc).zip(qc).enumerate() {
            let slot = kb as usize + (j & 1) * (NB + 1);
            tp[slot] += pi.to_f64() * sp;
            tq[slot] += qi.to_f64() * sq;
            cnt[slot] += 1;
        }
        for (k, &kb) in kc.iter_mut().zip(kbuf.iter()) {
            *k = if kb == NB as u32 { NO_KEY } else { kb as u16 };
        }
    }
    let sum_p: Vec<f64> = (0..NB).map(|k| tp[k] + tp[k + NB + 1]).collect();
    let sum_q: Vec<f64> = (0..NB).map(|k| tq[k] + tq[k + NB + 1]).collect();
    let count: Vec<u32> = (0..NB).map(|k| cnt[k] + cnt[k + NB + 1]).collect();
    (sum_p, sum_q, count, keys)
}

/// Lowers `best` to the minimum of f over the prefixes inside one block of tokens that starts
/// at (p0, q0). The block's end value has already been evaluated by the caller.
fn refine(items: &mut [Item], p0: f64, q0: f64, n: usize, best: &mut f64, scratch: &mut Vec<Item>) {
    if items.len() <= SMALL {
        items.sort_unstable_by_key(|it| it.bits);
        let (mut cp, mut cq) = (p0, q0);
        for it in items.iter() {
            cp += it.p;
            cq += it.q;
            *best = best.min(cp - pown(cq, n));
        }
        return;
    }
    let (mn, mx) = items.iter().fold((u64::MAX, 0u64), |(a, b), it| (a.min(it.bits), b.max(it.bits)));
    if mn == mx {
        // One ratio: P is linear in Q along the block and −Q^n is concave, so the minimum is at
        // an end, and both ends are boundaries already evaluated.
        return;
    }
    let d = 64 - (mn ^ mx).leading_zeros();
    let shift = d.saturating_sub(8);
    let nb = (((mx - mn) >> shift) + 1) as usize;
    let sub = |it: &Item| ((it.bits - mn) >> shift) as usize;
    let mut count = vec![0usize; nb];
    let mut sums = vec![(0.0f64, 0.0f64); nb];
    for it in items.iter() {
        let k = sub(it);
        count[k] += 1;
        sums[k].0 += it.p;
        sums[k].1 += it.q;
    }
    // Counting sort by sub-bucket.
    let mut offset = vec![0usize; nb + 1];
    for k in 0..nb {
        offset[k + 1] = offset[k] + count[k];
    }
    scratch.clear();
    scratch.extend_from_slice(items);
    let mut fill = offset.clone();
    for it in scratch.iter() {
        let k = sub(it);
        items[fill[k]] = *it;
        fill[k] += 1;
    }
    let mut start = vec![(0.0f64, 0.0f64); nb];
    let (mut cp, mut cq) = (p0, q0);
    for k in 0..nb {
        if count[k] == 0 {
            continue;
        }
        start[k] = (cp, cq);
        cp += sums[k].0;
        cq += sums[k].1;
        *best = best.min(cp - pown(cq, n));
    }
    let edge = |k: usize| {
        let b = mn.saturating_add((k as u64) << shift);
        if b >= INF_BITS {
            f64::INFINITY
        } else {
            f64::from_bits(b)
        }
    };
    let mut cands: Vec<(f64, usize)> = (0..nb)
        .filter(|&k| count[k] >= 2)
        .map(|k| (lower_bound(start[k].0, start[k].1, sums[k].0, sums[k].1, edge(k), edge(k + 1), n), k))
        .filter(|&(lb, _)| lb < *best)
        .collect();
    cands.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    for (lb, k) in cands {
        if lb < *best {
            let (a, b) = start[k];
            refine(&mut items[offset[k]..offset[k + 1]], a, b, n, best, scratch);
        }
    }
}

/// The plain sorted-prefix scan (full sort). Reference for tests and benches.
pub fn value_sorted<T: Real>(p: &[T], q: &[T], n: usize, sp: f64, sq: f64) -> f64 {
    values_sorted(&super::prep::sorted(p, q, sp, sq), &[n])[0]
}

/// The sorted-prefix scan for every n in `ns` at once (one pass over the sorted tokens; each value
/// equals [`value_sorted`]'s bit for bit).
pub fn values_sorted(s: &super::prep::Sorted, ns: &[usize]) -> Vec<f64> {
    let (mut cp, mut cq) = (0.0f64, 0.0f64);
    let mut best = vec![0.0f64; ns.len()];
    for (a, b) in s.p.iter().zip(&s.q) {
        cp += a;
        cq += b;
        for (bv, &n) in best.iter_mut().zip(ns) {
            *bv = bv.min(cp - pown(cq, n));
        }
    }
    best.iter().map(|b| 1.0 + b).collect()
}
