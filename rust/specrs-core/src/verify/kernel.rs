//! The O(V) passes every verifier and sampler is built from: weighted sums and a weighted pick,
//! over weights given lazily as a closure of the token id (e.g. `(p[i] − c·q[i])₊`), so that no
//! residual vector is ever materialised.
//!
//! Sums use a fixed order (eight interleaved f64 lanes per block of 256, then the block sums in
//! order), so results are bitwise the same on every platform while the inner loop vectorises and
//! is not bound by the latency of one long chain of additions.
//!
//! A pick may carry a few *adjustments* `(id, δ)`: the weight of `id` becomes w(id) + δ. This
//! expresses "exclude these tokens" (δ = −w(id)) or "these few tokens use another formula"
//! (greedy's top tokens, SpecHub's hub) while the closure stays branch-free.

use crate::Real;

const LANES: usize = 8;
const BLOCK: usize = 256;

/// Σ_i w(p[i], q[i]), summed in a fixed order. Works on zipped chunks (no bounds checks), so the
/// compiler vectorises the eight lanes.
#[inline]
pub(crate) fn sum2<T: Real, F: Fn(f64, f64) -> f64>(p: &[T], q: &[T], w: F) -> f64 {
    debug_assert_eq!(p.len(), q.len());
    let mut total = 0.0;
    for (pb, qb) in p.chunks(BLOCK).zip(q.chunks(BLOCK)) {
        total += block_sum2(pb, qb, &w);
    }
    total
}

/// Σ v in the same fixed order as [`sum2`]: the one lane sum for plain slices (e.g. the
/// quadrature sums of the bounds' without-replacement integral). Always inlined, so that it is
/// compiled with the target features of a multiversioned caller.
#[inline(always)]
pub(crate) fn sum(v: &[f64]) -> f64 {
    let mut total = 0.0;
    for b in v.chunks(BLOCK) {
        total += block_sum2(b, b, &|x, _| x);
    }
    total
}

#[inline(always)]
fn block_sum2<T: Real, F: Fn(f64, f64) -> f64>(pb: &[T], qb: &[T], w: &F) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut pc = pb.chunks_exact(LANES);
    let mut qc = qb.chunks_exact(LANES);
    for (a, b) in (&mut pc).zip(&mut qc) {
        for l in 0..LANES {
            lanes[l] += w(a[l].to_f64(), b[l].to_f64());
        }
    }
    let mut s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for (a, b) in pc.remainder().iter().zip(qc.remainder()) {
        s += w(a.to_f64(), b.to_f64());
    }
    s
}

/// K sums of w(p[i], q[i])[k] in one pass, each in a fixed order (four lanes, so that K arrays of
/// lanes still fit the SSE2 register file).
#[inline]
pub(crate) fn sums2<const K: usize, T: Real, F: Fn(f64, f64) -> [f64; K]>(p: &[T], q: &[T], w: F) -> [f64; K] {
    const L: usize = 4;
    let mut lanes = [[0.0f64; K]; L];
    let mut pc = p.chunks_exact(L);
    let mut qc = q.chunks_exact(L);
    for (a, b) in (&mut pc).zip(&mut qc) {
        for l in 0..L {
            let x = w(a[l].to_f64(), b[l].to_f64());
            for k in 0..K {
                lanes[l][k] += x[k];
            }
        }
    }
    let mut total = [0.0f64; K];
    for k in 0..K {
        total[k] = (lanes[0][k] + lanes[1][k]) + (lanes[2][k] + lanes[3][k]);
    }
    for (a, b) in pc.remainder().iter().zip(qc.remainder()) {
        let x = w(a.to_f64(), b.to_f64());
        for k in 0..K {
            total[k] += x[k];
        }
    }
    total
}

/// Index i drawn with probability w̃(i) / total by inverse CDF with the single uniform `u`
/// (target u·total), where w̃(i) = w(p[i], q[i]) plus the adjustments `adj` (each id at most
/// once). Blocks whose sum stays below the target are skipped with one vectorised sum; the
/// crossing block is walked entry by entry. Entries with w̃ ≤ 0 are never returned; when rounding
/// leaves the running sum just short of the target, the last positive entry is returned. `None`
/// only when no weight is positive.
#[inline]
pub(crate) fn pick2<T: Real, F: Fn(f64, f64) -> f64>(p: &[T], q: &[T], total: f64, u: f64, adj: &[(usize, f64)], w: F) -> Option<usize> {
    let target = u * total;
    let wt = |i: usize| {
        let mut x = w(p[i].to_f64(), q[i].to_f64());
        for &(j, d) in adj {
            if j == i {
                x += d;
            }
        }
        x
    };
    let mut acc = 0.0;
    let mut last_pos = None;
    for (b, (pb, qb)) in p.chunks(BLOCK).zip(q.chunks(BLOCK)).enumerate() {
        let (start, end) = (b * BLOCK, b * BLOCK + pb.len());
        let mut s = block_sum2(pb, qb, &w);
        for &(j, d) in adj {
            if (start..end).contains(&j) {
                s += d;
            }
        }
        if acc + s > target {
            for i in start..end {
                let x = wt(i);
                if x > 0.0 {
                    acc += x;
                    last_pos = Some(i);
                    if target < acc {
                        return Some(i);
                    }
                }
            }
        } else {
            if s > 0.0 {
                // Remember the last positive entry of a skipped block for the rounding fallback.
                last_pos = (start..end).rev().find(|&i| wt(i) > 0.0).or(last_pos);
            }
            acc += s;
        }
    }
    last_pos
}

/// [`pick2`] for weights given by index (w(i), i < len), without adjustments: for the few
/// callers whose weights are not a function of (p[i], q[i]) (conditional Poisson, explicit laws).
pub(crate) fn pick_by<F: Fn(usize) -> f64>(len: usize, total: f64, u: f64, w: F) -> Option<usize> {
    let target = u * total;
    let mut acc = 0.0;
    let mut last_pos = None;
    for i in 0..len {
        let x = w(i);
        if x > 0.0 {
            acc += x;
            last_pos = Some(i);
            if target < acc {
                return Some(i);
            }
        }
    }
    last_pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_match_naive_and_pick_inverts_the_cdf() {
        let w: Vec<f64> = (0..1000).map(|i| ((i * 37) % 11) as f64 * 0.01).collect();
        let z0 = vec![0.0f64; w.len()];
        let naive: f64 = w.iter().sum();
        assert!((sum2(&w, &z0, |x, _| x) - naive).abs() < 1e-12);
        assert_eq!(sum(&w), sum2(&w, &z0, |x, _| x));
        let [a, b] = sums2(&w, &z0, |x, _| [x, 2.0 * x]);
        assert!((a - naive).abs() < 1e-12 && (b - 2.0 * naive).abs() < 1e-12);
        for k in 0..200 {
            let u = k as f64 / 200.0;
            let i = pick2(&w, &z0, naive, u, &[], |x, _| x).unwrap();
            let before: f64 = w[..i].iter().sum();
            assert!(w[i] > 0.0);
            assert!(before <= u * naive + 1e-9 && u * naive < before + w[i] + 1e-9, "u={u} i={i}");
            assert_eq!(pick_by(w.len(), naive, u, |i| w[i]), Some(i));
        }
        assert_eq!(pick2(&[0.0f64; 3], &[0.0; 3], 0.0, 0.5, &[], |x, _| x), None);
        // u close to 1 with a total slightly too large still returns the last positive entry.
        assert_eq!(pick2(&w, &z0, naive * 1.01, 0.999_999, &[], |x, _| x), w.iter().rposition(|&x| x > 0.0));
        // Adjusting ids is the same as editing the weights.
        let adj = [(999usize, -w[999]), (3, 0.5), (300, -w[300])];
        let mut z = w.clone();
        for &(j, d) in &adj {
            z[j] += d;
        }
        let tz: f64 = z.iter().sum();
        for k in 0..200 {
            let u = k as f64 / 200.0;
            assert_eq!(pick2(&w, &z0, tz, u, &adj, |x, _| x), pick2(&z, &z0, tz, u, &[], |x, _| x));
        }
    }
}
