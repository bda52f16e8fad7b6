//! α* for n i.i.d. drafts (with replacement): Q(H) = q(H)^n, so (Hu et al., ICLR 2025, §4.2.1;
//! mdsd.md §3.4)
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

#[inline(always)]
fn key(r: f64) -> u16 {
    ((r.to_bits() >> (52 - M)) as i64 - BASE as i64).clamp(0, NB as i64 - 1) as u16
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
fn lower_bound(p0: f64, q0: f64, pb: f64, qb: f64, lo: f64, hi: f64, n: i32) -> f64 {
    let (p1, q1) = (p0 + pb, q0 + qb);
    let (a, b) = (q0.powi(n), q1.powi(n));
    let lb_lo = (p0 - a).min(p0 + lo * qb - b);
    let lb_hi = if hi.is_finite() { (p1 - hi * qb - a).min(p1 - b) } else { f64::NEG_INFINITY };
    lb_lo.max(lb_hi)
}

/// α* for i.i.d. drafts; inputs already validated, `sp`, `sq` = 1/Σp, 1/Σq. n ≥ 1.
pub fn value<T: Real>(p: &[T], q: &[T], n: usize, sp: f64, sq: f64) -> f64 {
    let ni = n as i32;
    let mut sum_p = vec![0.0f64; NB];
    let mut sum_q = vec![0.0f64; NB];
    let mut count = vec![0u32; NB];
    let mut keys: Vec<u16> = Vec::with_capacity(p.len());
    for (&pi, &qi) in p.iter().zip(q) {
        let qi = qi.to_f64() * sq;
        if qi > 0.0 {
            let pi = pi.to_f64() * sp;
            let k = key(pi / qi);
            let ku = k as usize;
            sum_p[ku] += pi;
            sum_q[ku] += qi;
            count[ku] += 1;
            keys.push(k);
        } else {
            keys.push(NO_KEY);
        }
    }

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
        best = best.min(cp - cq.powi(ni));
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

/// Lowers `best` to the minimum of f over the prefixes inside one block of tokens that starts
/// at (p0, q0). The block's end value has already been evaluated by the caller.
fn refine(items: &mut [Item], p0: f64, q0: f64, n: i32, best: &mut f64, scratch: &mut Vec<Item>) {
    if items.len() <= SMALL {
        items.sort_unstable_by_key(|it| it.bits);
        let (mut cp, mut cq) = (p0, q0);
        for it in items.iter() {
            cp += it.p;
            cq += it.q;
            *best = best.min(cp - cq.powi(n));
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
        *best = best.min(cp - cq.powi(n));
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
    let s = super::prep::sorted(p, q, sp, sq);
    let (mut cp, mut cq, mut best) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in s.p.iter().zip(&s.q) {
        cp += a;
        cq += b;
        best = best.min(cp - cq.powi(n as i32));
    }
    1.0 + best
}
