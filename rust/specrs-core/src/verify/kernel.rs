//! The two O(V) passes every verifier is built from: a weighted sum and a weighted pick, both over
//! weights given lazily as a closure of the token id (e.g. `(p[i] − c·q[i])₊`), so that no
//! residual vector is ever materialised.
//!
//! Both use a fixed summation order (eight interleaved f64 lanes per block, then the block sums in
//! order), so the results are bitwise the same on every platform, while still letting the compiler
//! vectorise the inner loop.

const LANES: usize = 8;
const BLOCK: usize = 256;

/// Σ_{i<len} w(i), summed in a fixed order.
#[inline]
pub(crate) fn sum_by<F: Fn(usize) -> f64>(len: usize, w: F) -> f64 {
    let mut total = 0.0;
    let mut start = 0;
    while start < len {
        let end = (start + BLOCK).min(len);
        total += block_sum(start, end, &w);
        start = end;
    }
    total
}

#[inline(always)]
fn block_sum<F: Fn(usize) -> f64>(start: usize, end: usize, w: &F) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut i = start;
    while i + LANES <= end {
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane += w(i + l);
        }
        i += LANES;
    }
    let mut s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    while i < end {
        s += w(i);
        i += 1;
    }
    s
}

/// Index drawn with probability w(i) / total by inverse CDF with the single uniform `u`
/// (target u·total). Blocks whose sum stays below the target are skipped with one vectorised sum;
/// the block that crosses it is walked entry by entry. Entries with w ≤ 0 are never returned; when
/// rounding leaves the running sum just short of the target, the last positive entry is returned.
/// `None` only when no weight is positive.
#[inline]
pub(crate) fn pick_by<F: Fn(usize) -> f64>(len: usize, total: f64, u: f64, w: F) -> Option<usize> {
    let target = u * total;
    let mut acc = 0.0;
    let mut last_pos = None;
    let mut start = 0;
    while start < len {
        let end = (start + BLOCK).min(len);
        let s = block_sum(start, end, &w);
        if acc + s > target {
            for i in start..end {
                let x = w(i);
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
                last_pos = (start..end).rev().find(|&i| w(i) > 0.0).or(last_pos);
            }
            acc += s;
        }
        start = end;
    }
    last_pos
}


/// [`pick_by`] with the ids in `excluded` given weight 0, without a per-entry membership test:
/// each block's sum has the excluded entries of that block subtracted, and only the crossing
/// block tests membership. `total` must be Σ w minus the excluded weights.
#[inline]
pub(crate) fn pick_by_excluding<F: Fn(usize) -> f64>(
    len: usize,
    total: f64,
    u: f64,
    excluded: &[usize],
    w: F,
) -> Option<usize> {
    let target = u * total;
    let mut acc = 0.0;
    let mut last_pos = None;
    let mut start = 0;
    while start < len {
        let end = (start + BLOCK).min(len);
        let mut s = block_sum(start, end, &w);
        let mut hit = false;
        for &e in excluded {
            if (start..end).contains(&e) {
                s -= w(e);
                hit = true;
            }
        }
        if acc + s > target || hit {
            for i in start..end {
                let x = w(i);
                if x > 0.0 && !excluded.contains(&i) {
                    acc += x;
                    last_pos = Some(i);
                    if target < acc {
                        return Some(i);
                    }
                }
            }
        } else {
            if s > 0.0 {
                last_pos = (start..end).rev().find(|&i| w(i) > 0.0).or(last_pos);
            }
            acc += s;
        }
        start = end;
    }
    last_pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_matches_naive_and_pick_inverts_the_cdf() {
        let w: Vec<f64> = (0..1000).map(|i| ((i * 37) % 11) as f64 * 0.01).collect();
        let naive: f64 = w.iter().sum();
        assert!((sum_by(w.len(), |i| w[i]) - naive).abs() < 1e-12);
        for k in 0..200 {
            let u = k as f64 / 200.0;
            let i = pick_by(w.len(), naive, u, |i| w[i]).unwrap();
            let before: f64 = w[..i].iter().sum();
            assert!(w[i] > 0.0);
            assert!(before <= u * naive + 1e-9 && u * naive < before + w[i] + 1e-9, "u={u} i={i}");
        }
        assert_eq!(pick_by(3, 0.0, 0.5, |_| 0.0), None);
        // u close to 1 with a total slightly too large still returns the last positive entry.
        assert_eq!(pick_by(w.len(), naive * 1.01, 0.999_999, |i| w[i]), w.iter().rposition(|&x| x > 0.0));
        // Excluding ids is the same as zeroing them.
        let ex = [3usize, 300, 999];
        let mut z = w.clone();
        for &e in &ex {
            z[e] = 0.0;
        }
        let tz: f64 = z.iter().sum();
        for k in 0..200 {
            let u = k as f64 / 200.0;
            assert_eq!(pick_by_excluding(w.len(), tz, u, &ex, |i| w[i]), pick_by(z.len(), tz, u, |i| z[i]));
        }
    }
}
