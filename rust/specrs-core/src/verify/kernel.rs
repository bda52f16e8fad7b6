//! The O(V) passes every verifier and sampler is built from: weighted sums and a weighted pick,
//! over weights given lazily as a closure of the token id (e.g. `(p[i] − c·q[i])₊`), so that no
//! residual vector is ever materialised; and the one top-k selection of the crate.
//!
//! Sums use a fixed order (eight interleaved f64 lanes per block of 256, then the block sums in
//! order), so results are bitwise the same on every platform while the inner loop vectorises and
//! is not bound by the latency of one long chain of additions.
//!
//! **Overrides, or "sum what remains".** A sum or a pick may carry a few *overrides* `(id, w)`:
//! the weight of `id` is `w` instead of the closure's value. This expresses "exclude these tokens"
//! (w = 0: drafted tokens, greedy's top set, SpecHub's hub) or "these few tokens use another
//! formula" (greedy's top tokens in the residual) while the closure stays branch-free. A block
//! that holds an overridden id is re-summed entry by entry with the override in place; it is never
//! computed as `block sum − w(id)`. That subtraction is what loses the law on confident rows: with
//! q = (1, 1e-17, 1e-17), `1 − q(0)` is 0 in f64 while the mass left is 2e-17, whereas a sum of
//! non-negative terms is accurate to a few ulps *relative to itself* and is positive whenever any
//! term is (docs/theory.md, "Remaining mass"). Cost: one pass plus ≤ 256 entries per overridden
//! block, no V-length temporary.

use crate::Real;

const LANES: usize = 8;
/// Entries per block of every blocked pass (the validation pass's blocks).
pub(crate) const BLOCK: usize = crate::validate::BLOCK;

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

/// Σ_i w̃(i), w̃ = w(p[i], q[i]) except at the overridden ids (each at most once, any order),
/// where it is the override: the mass of what remains, summed (see the module docs). Same fixed
/// order as [`sum2`] for the blocks without an override.
#[inline]
pub(crate) fn sum2_with<T: Real, F: Fn(f64, f64) -> f64>(p: &[T], q: &[T], ov: &[(usize, f64)], w: F) -> f64 {
    if ov.is_empty() {
        return sum2(p, q, w);
    }
    let ov = sorted(ov);
    let mut at = Blocks::new(&ov);
    let mut total = 0.0;
    for (b, (pb, qb)) in p.chunks(BLOCK).zip(q.chunks(BLOCK)).enumerate() {
        total += block_total(b, pb, qb, at.next(b), &w);
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

/// The overrides sorted by id (borrowed when they already are, as with one or two).
fn sorted<V: Copy>(ov: &[(usize, V)]) -> std::borrow::Cow<'_, [(usize, V)]> {
    if ov.windows(2).all(|w| w[0].0 < w[1].0) {
        std::borrow::Cow::Borrowed(ov)
    } else {
        let mut v = ov.to_vec();
        v.sort_unstable_by_key(|o| o.0);
        std::borrow::Cow::Owned(v)
    }
}

/// Walks sorted overrides block by block: O(V/BLOCK + k) for the whole pass.
struct Blocks<'a, V> {
    ov: &'a [(usize, V)],
    at: usize,
}

impl<'a, V> Blocks<'a, V> {
    fn new(ov: &'a [(usize, V)]) -> Self {
        Blocks { ov, at: 0 }
    }

    /// The overrides inside block `b` (blocks asked in increasing order).
    #[inline(always)]
    fn next(&mut self, b: usize) -> &'a [(usize, V)] {
        let (lo, end) = (self.at, (b + 1) * BLOCK);
        while self.at < self.ov.len() && self.ov[self.at].0 < end {
            self.at += 1;
        }
        &self.ov[lo..self.at]
    }
}

/// Entry weights of one block with its (sorted) overrides in place, in order: `f(i, w̃(i))`.
#[inline(always)]
fn each_in_block<T: Real, V: Copy, W: Fn(f64, f64) -> V, F: FnMut(usize, V)>(
    start: usize,
    pb: &[T],
    qb: &[T],
    here: &[(usize, V)],
    w: &W,
    mut f: F,
) {
    let mut k = 0;
    for (j, (x, y)) in pb.iter().zip(qb).enumerate() {
        let i = start + j;
        let v = if k < here.len() && here[k].0 == i {
            k += 1;
            here[k - 1].1
        } else {
            w(x.to_f64(), y.to_f64())
        };
        f(i, v);
    }
}

/// The sum of block `b` (entries `pb`, `qb`) with the overrides `here` that fall in it: the lane
/// sum when there are none, else the entries summed one by one.
#[inline(always)]
fn block_total<T: Real, F: Fn(f64, f64) -> f64>(b: usize, pb: &[T], qb: &[T], here: &[(usize, f64)], w: &F) -> f64 {
    if here.is_empty() {
        return block_sum2(pb, qb, w);
    }
    let mut s = 0.0;
    each_in_block(b * BLOCK, pb, qb, here, w, |_, v| s += v);
    s
}

/// K sums of w(p[i], q[i])[k] in one pass, each in a fixed order (blocks of 256 with four lanes,
/// so that K arrays of lanes still fit the SSE2 register file), with overrides as in
/// [`sum2_with`] (`[0.0; K]` excludes an id from every sum).
#[inline]
pub(crate) fn sums2_with<const K: usize, T: Real, F: Fn(f64, f64) -> [f64; K]>(
    p: &[T],
    q: &[T],
    ov: &[(usize, [f64; K])],
    w: F,
) -> [f64; K] {
    let ov = sorted(ov);
    let mut at = Blocks::new(&ov);
    let mut total = [0.0f64; K];
    for (b, (pb, qb)) in p.chunks(BLOCK).zip(q.chunks(BLOCK)).enumerate() {
        let here = at.next(b);
        let s = if here.is_empty() {
            block_sums2(pb, qb, &w)
        } else {
            let mut s = [0.0f64; K];
            each_in_block(b * BLOCK, pb, qb, here, &w, |_, v| {
                for k in 0..K {
                    s[k] += v[k];
                }
            });
            s
        };
        for k in 0..K {
            total[k] += s[k];
        }
    }
    total
}

/// [`sums2_with`] without overrides.
#[inline]
pub(crate) fn sums2<const K: usize, T: Real, F: Fn(f64, f64) -> [f64; K]>(p: &[T], q: &[T], w: F) -> [f64; K] {
    sums2_with(p, q, &[], w)
}

#[inline(always)]
fn block_sums2<const K: usize, T: Real, F: Fn(f64, f64) -> [f64; K]>(pb: &[T], qb: &[T], w: &F) -> [f64; K] {
    const L: usize = 4;
    let mut lanes = [[0.0f64; K]; L];
    let mut pc = pb.chunks_exact(L);
    let mut qc = qb.chunks_exact(L);
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
/// (target u·total), where w̃(i) = w(p[i], q[i]) except at the overridden ids (each at most
/// once). `total` should be [`sum2_with`] of the same weights: the blocks are summed exactly as
/// there, so the target is crossed inside the weights. Blocks whose sum stays below the target
/// are skipped with one vectorised sum; the crossing block is walked entry by entry. Entries with
/// w̃ ≤ 0 (in particular excluded ids) are never returned; when rounding leaves the running sum
/// just short of the target, the last positive entry is returned. `None` only when no weight is
/// positive.
#[inline]
pub(crate) fn pick2<T: Real, F: Fn(f64, f64) -> f64>(p: &[T], q: &[T], total: f64, u: f64, ov: &[(usize, f64)], w: F) -> Option<usize> {
    let target = u * total;
    let ov = sorted(ov);
    let mut at = Blocks::new(&ov);
    let mut acc = 0.0;
    let mut last_pos = None;
    for (b, (pb, qb)) in p.chunks(BLOCK).zip(q.chunks(BLOCK)).enumerate() {
        let here = at.next(b);
        let s = block_total(b, pb, qb, here, &w);
        if acc + s > target {
            let mut hit = None;
            each_in_block(b * BLOCK, pb, qb, here, &w, |i, x| {
                if hit.is_none() && x > 0.0 {
                    acc += x;
                    last_pos = Some(i);
                    if target < acc {
                        hit = Some(i);
                    }
                }
            });
            if hit.is_some() {
                return hit;
            }
        } else {
            if s > 0.0 {
                // Remember the last positive entry of a skipped block for the rounding fallback
                // (searched from the end: usually the first entry looked at).
                let wt = |j: usize| match here.binary_search_by_key(&(b * BLOCK + j), |o| o.0) {
                    Ok(k) => here[k].1,
                    Err(_) => w(pb[j].to_f64(), qb[j].to_f64()),
                };
                last_pos = (0..pb.len()).rev().find(|&j| wt(j) > 0.0).map(|j| b * BLOCK + j).or(last_pos);
            }
            acc += s;
        }
    }
    last_pos
}

/// [`pick2`] for weights given by index (w(i), i < len), without overrides: for the few
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

/// 2^600 and its inverse: exact power-of-two rescalings that bring a subnormal mass into the
/// normal range (and back) without rounding.
pub(crate) const BIG: f64 = 4.149515568880993e180; // 2^600
pub(crate) const SMALL: f64 = 2.409919865102884e-181; // 2^-600

/// y ↦ y / m for 0 ≤ y ≤ m (a share of the mass m that remains), as two multiplications that
/// cannot overflow even when 1/m would (a subnormal m, below 5.6e-309): (y·2^600)·(1/(m·2^600)).
/// For m ≥ 2^-600 it is y·(1/m). Used where a hot loop renormalises by a remaining mass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share {
    scale: f64,
    inv: f64,
}

impl Share {
    #[inline]
    pub(crate) fn of_mass(m: f64) -> Self {
        if m < SMALL {
            Share { scale: BIG, inv: 1.0 / (m * BIG) }
        } else {
            Share { scale: 1.0, inv: 1.0 / m }
        }
    }

    #[inline(always)]
    pub(crate) fn of(self, y: f64) -> f64 {
        (y * self.scale) * self.inv
    }
}

/// Largest k for which [`top_k`] keeps an insertion list (O(len·k)); above it, it selects.
const TOP_LIST: usize = 32;

/// Positions 0..len of the `k` largest `value`s, largest first; ties go to the lower `id` (the
/// token id of a position: the position itself for dense rows, `ids[pos]` for sparse ones), so
/// the choice is deterministic and the same for a row and its sparse form. The one top-k of the
/// crate: greedy's top set, SpecHub's hub (k = 1), `match`'s top-n, the top-k tree.
/// O(len) with a k-slot list for small k, O(len + k log k) selection otherwise. NaN values never
/// occur (inputs are validated).
pub(crate) fn top_k<V: Fn(usize) -> f64, I: Fn(usize) -> i64>(len: usize, k: usize, value: V, id: I) -> Vec<usize> {
    let k = k.min(len);
    if k == 0 {
        return Vec::new();
    }
    // a before b: larger value, then lower id.
    let before = |a: usize, b: usize| {
        let (x, y) = (value(a), value(b));
        x > y || (x == y && id(a) < id(b))
    };
    if k > TOP_LIST {
        let cmp = |a: &usize, b: &usize| {
            if before(*a, *b) {
                std::cmp::Ordering::Less
            } else if before(*b, *a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        };
        let mut idx: Vec<usize> = (0..len).collect();
        if k < len {
            idx.select_nth_unstable_by(k - 1, cmp);
            idx.truncate(k);
        }
        idx.sort_unstable_by(cmp);
        return idx;
    }
    let mut top: Vec<usize> = Vec::with_capacity(k + 1);
    for i in 0..len {
        if top.len() == k && !before(i, top[k - 1]) {
            continue;
        }
        let at = top.iter().position(|&t| before(i, t)).unwrap_or(top.len());
        top.insert(at, i);
        top.truncate(k);
    }
    top
}

/// [`top_k`] of a dense row (ids = positions).
#[inline]
pub(crate) fn top_k_of<T: Real>(vals: &[T], k: usize) -> Vec<usize> {
    top_k(vals.len(), k, |i| vals[i].to_f64(), |i| i as i64)
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
        // Overriding ids is the same as editing the weights.
        let ov = [(999usize, 0.0), (3, 0.5), (300, 0.0)];
        let mut z = w.clone();
        for &(j, x) in &ov {
            z[j] = x;
        }
        let tz: f64 = sum2(&z, &z0, |x, _| x);
        assert_eq!(sum2_with(&w, &z0, &ov, |x, _| x), {
            let mut t = 0.0;
            for (b, c) in z.chunks(BLOCK).enumerate() {
                t += if ov.iter().any(|o| o.0 / BLOCK == b) { c.iter().sum::<f64>() } else { sum2(c, c, |x, _| x) };
            }
            t
        });
        for k in 0..200 {
            let u = k as f64 / 200.0;
            assert_eq!(pick2(&w, &z0, tz, u, &ov, |x, _| x), pick2(&z, &z0, tz, u, &[], |x, _| x));
        }
        let [s1, s2] = sums2_with(&w, &z0, &[(3, [0.5, 1.0]), (999, [0.0, 0.0])], |x, _| [x, 2.0 * x]);
        assert!((s1 - (naive - w[3] - w[999] + 0.5)).abs() < 1e-12 && (s2 - (2.0 * (naive - w[3] - w[999]) + 1.0)).abs() < 1e-12);
    }
}

#[cfg(test)]
mod remaining_mass {
    use super::*;

    /// The cancellation that lost the law: with q = (1, 1e-17, 1e-17) the mass left after
    /// excluding token 0 is 2e-17, but `Σq − q(0)` is 0 (and a pick over it finds nothing). The
    /// override re-sums the block: exact to the ulp, and the pick never returns the excluded id.
    #[test]
    fn excluding_the_top_token_keeps_the_tail_mass() {
        for tail in [1e-17, 1e-100, 1e-300, 5e-324] {
            let mut q = vec![1.0f64, tail, tail];
            q.extend(std::iter::repeat(0.0).take(600)); // several blocks
            q[BLOCK + 3] = tail;
            let naive = sum2(&q, &q, |x, _| x) - 1.0;
            let rest = sum2_with(&q, &q, &[(0, 0.0)], |x, _| x);
            assert_eq!(rest, 3.0 * tail, "tail {tail}");
            if tail == 1e-17 {
                assert_eq!(naive, 0.0, "the subtraction this kernel replaces cancels");
            }
            for k in 0..100 {
                let i = pick2(&q, &q, rest, k as f64 / 100.0, &[(0, 0.0)], |x, _| x).unwrap();
                assert!(i != 0 && q[i] > 0.0, "tail {tail}: picked {i}");
            }
            // Excluding every positive id leaves nothing: None, never an excluded id.
            let all = [(0, 0.0), (1, 0.0), (2, 0.0), (BLOCK + 3, 0.0)];
            assert_eq!(sum2_with(&q, &q, &all, |x, _| x), 0.0);
            assert_eq!(pick2(&q, &q, 1.0, 0.5, &all, |x, _| x), None);
        }
    }

    #[test]
    fn top_k_breaks_ties_to_the_lower_id_whatever_the_order() {
        let mut r = crate::Rng::new(1);
        for _ in 0..200 {
            let len = 1 + (r.next_u64() % 80) as usize;
            // Few distinct values so that ties are common; ids a permutation (a sparse row).
            let v: Vec<f64> = (0..len).map(|_| (r.uniform() * 4.0).floor()).collect();
            let mut ids: Vec<i64> = (0..len as i64).collect();
            for i in (1..len).rev() {
                ids.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
            }
            for k in [0, 1, 2, 5, 33, 40, len] {
                let got = top_k(len, k, |i| v[i], |i| ids[i]);
                let mut want: Vec<usize> = (0..len).collect();
                want.sort_by(|&a, &b| v[b].partial_cmp(&v[a]).unwrap().then(ids[a].cmp(&ids[b])));
                want.truncate(k.min(len));
                assert_eq!(got, want, "k={k}");
            }
        }
    }
}
