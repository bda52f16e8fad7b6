//! Distributions as the tree sees them: dense rows over the vocabulary, or sparse rows (the support
//! left after top-k/top-p warping) given as (token id, probability) pairs. Borrowed as [`DistRef`]
//! at the API boundary, stored as [`Dist`] for the draft distributions of expanded nodes (RRS needs
//! the whole q(·|path) at verification time).

use crate::{validate, Error, Real, Result};

/// A borrowed distribution row.
#[derive(Debug, Clone, Copy)]
pub enum DistRef<'a> {
    D32(&'a [f32]),
    D64(&'a [f64]),
    /// (token ids, probabilities); entries with probability 0 are padding.
    S32(&'a [i64], &'a [f32]),
    S64(&'a [i64], &'a [f64]),
}

/// An owned distribution row (same layouts as [`DistRef`]).
#[derive(Debug, Clone)]
pub enum Dist {
    D32(Vec<f32>),
    D64(Vec<f64>),
    S32(Vec<i64>, Vec<f32>),
    S64(Vec<i64>, Vec<f64>),
}

impl Dist {
    /// An owned copy (dense rows reuse pooled buffers, see `pool`).
    pub fn from_ref(d: DistRef<'_>) -> Self {
        match d {
            DistRef::D32(v) => Dist::D32(crate::pool::copy_of(v)),
            DistRef::D64(v) => Dist::D64(crate::pool::copy_of(v)),
            DistRef::S32(i, v) => Dist::S32(i.to_vec(), v.to_vec()),
            DistRef::S64(i, v) => Dist::S64(i.to_vec(), v.to_vec()),
        }
    }

    pub fn as_ref(&self) -> DistRef<'_> {
        match self {
            Dist::D32(v) => DistRef::D32(v),
            Dist::D64(v) => DistRef::D64(v),
            Dist::S32(i, v) => DistRef::S32(i, v),
            Dist::S64(i, v) => DistRef::S64(i, v),
        }
    }
}

impl Drop for Dist {
    fn drop(&mut self) {
        match self {
            Dist::D32(v) => crate::pool::give(std::mem::take(v)),
            Dist::D64(v) => crate::pool::give(std::mem::take(v)),
            _ => {}
        }
    }
}

/// Runs `$body` with `$ids: Option<&[i64]>` and `$vals: &[T]` bound for every layout.
#[macro_export]
macro_rules! with_dist {
    ($d:expr, |$ids:ident, $vals:ident| $body:expr) => {
        match $d {
            $crate::tree::DistRef::D32($vals) => {
                let $ids: Option<&[i64]> = None;
                $body
            }
            $crate::tree::DistRef::D64($vals) => {
                let $ids: Option<&[i64]> = None;
                $body
            }
            $crate::tree::DistRef::S32(i, $vals) => {
                let $ids: Option<&[i64]> = Some(i);
                $body
            }
            $crate::tree::DistRef::S64(i, $vals) => {
                let $ids: Option<&[i64]> = Some(i);
                $body
            }
        }
    };
}

impl DistRef<'_> {
    /// Number of stored entries (V for dense rows, K for sparse rows).
    pub fn len(&self) -> usize {
        with_dist!(*self, |_ids, v| v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_dense(&self) -> bool {
        matches!(self, DistRef::D32(_) | DistRef::D64(_))
    }

    /// Token id of stored entry `pos`.
    #[inline]
    pub fn token(&self, pos: usize) -> i64 {
        match self {
            DistRef::D32(_) | DistRef::D64(_) => pos as i64,
            DistRef::S32(i, _) | DistRef::S64(i, _) => i[pos],
        }
    }

    #[inline]
    pub fn value(&self, pos: usize) -> f64 {
        with_dist!(*self, |_ids, v| v[pos].to_f64())
    }
}

/// Entries per block of the block sums that [`checked_blocks`] returns (those of
/// [`validate::distribution_blocks`]): a draw of `crate::sample::Sampler` walks ≤ V/BLOCK block
/// sums, then ≤ BLOCK entries, instead of the whole row.
pub const BLOCK: usize = validate::BLOCK;

/// Validates a row as a distribution (finite, non-negative, Σ = 1 within `T::NORM_TOL`, by the
/// one pass of [`validate::distribution_blocks`]; sparse: ids of positive entries non-negative and
/// distinct) and returns its block sums and the number of positive entries.
pub fn checked_blocks<T: Real>(arg: &str, ids: Option<&[i64]>, vals: &[T]) -> Result<(Vec<f64>, usize)> {
    let (sums, stats) = validate::distribution_blocks(arg, vals)?;
    if let Some(ids) = ids {
        if ids.len() != vals.len() {
            return Err(Error::invalid("token_ids", format!("has {} entries per row but `{arg}` has {}", ids.len(), vals.len())));
        }
        let mut seen: Vec<i64> = Vec::with_capacity(ids.len());
        for (j, (&id, &x)) in ids.iter().zip(vals).enumerate() {
            if x.to_f64() > 0.0 {
                if id < 0 {
                    return Err(Error::invalid("token_ids", format!("negative token id {id} at index {j} with positive probability")));
                }
                seen.push(id);
            }
        }
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid("token_ids", format!("token id {} appears twice with positive probability", w[0])));
        }
    }
    Ok((sums, stats.positive))
}

/// [`checked_blocks`] and the owned copy a tree stores ([`Dist::from_ref`]), in one pass over a
/// dense row (the copy is taken block by block by [`validate::distribution_blocks_into`]):
/// (block sums, number of positive entries, copy).
pub fn checked_copy(arg: &str, d: DistRef<'_>) -> Result<(Vec<f64>, usize, Dist)> {
    match d {
        DistRef::D32(v) => {
            let mut out = crate::pool::with_capacity(v.len());
            let (sums, stats) = validate::distribution_blocks_into(arg, v, &mut out)?;
            Ok((sums, stats.positive, Dist::D32(out)))
        }
        DistRef::D64(v) => {
            let mut out = crate::pool::with_capacity(v.len());
            let (sums, stats) = validate::distribution_blocks_into(arg, v, &mut out)?;
            Ok((sums, stats.positive, Dist::D64(out)))
        }
        DistRef::S32(..) | DistRef::S64(..) => {
            let (sums, positive) = with_dist!(d, |ids, vals| checked_blocks(arg, ids, vals))?;
            Ok((sums, positive, Dist::from_ref(d)))
        }
    }
}

/// Checks a row without keeping the block sums.
pub fn check(arg: &str, d: DistRef<'_>) -> Result<()> {
    with_dist!(d, |ids, vals| checked_blocks(arg, ids, vals).map(|_| ()))
}

/// p and q of one node on a common index space: dense (index = token id) when either row is
/// dense, else the sorted union of the two supports.
#[derive(Debug, Clone)]
pub struct Aligned {
    pub ids: Option<Vec<i64>>,
    pub p: Vec<f64>,
    pub q: Vec<f64>,
}

impl Aligned {
    /// Index of token `t`, if it is in the index space.
    pub fn index(&self, t: i64) -> Option<usize> {
        match &self.ids {
            None => (t >= 0 && (t as usize) < self.p.len()).then_some(t as usize),
            Some(ids) => ids.binary_search(&t).ok(),
        }
    }

    pub fn token(&self, i: usize) -> i64 {
        match &self.ids {
            None => i as i64,
            Some(ids) => ids[i],
        }
    }
}

/// A row as f64 over the dense index space 0..v: a dense row widened in one pass (no zero fill
/// first), a sparse one scattered onto zeros.
fn dense_f64(d: DistRef<'_>, v: usize) -> Result<Vec<f64>> {
    if d.is_dense() {
        let mut out = crate::pool::with_capacity(v);
        with_dist!(d, |_ids, vals| out.extend(vals.iter().map(|x| x.to_f64())));
        return Ok(out);
    }
    let mut out = crate::pool::filled(v, 0.0);
    scatter(d, &mut out, "token_ids")?;
    Ok(out)
}

fn scatter(d: DistRef<'_>, out: &mut [f64], arg: &str) -> Result<()> {
    with_dist!(d, |ids, vals| {
        match ids {
            None => {
                for (o, &v) in out.iter_mut().zip(vals) {
                    *o = v.to_f64();
                }
            }
            Some(ids) => {
                for (&t, &v) in ids.iter().zip(vals) {
                    let v = v.to_f64();
                    if v > 0.0 {
                        if t as u64 >= out.len() as u64 {
                            return Err(Error::invalid(arg, format!("token id {t} is outside the vocabulary 0..{}", out.len())));
                        }
                        out[t as usize] = v;
                    }
                }
            }
        }
        Ok(())
    })
}

/// Aligns a target row `p` with a draft row `q` (`q` None: a node without a draft distribution).
pub fn align(p: DistRef<'_>, q: Option<DistRef<'_>>) -> Result<Aligned> {
    let v_dense = match (p.is_dense(), q.map(|q| q.is_dense())) {
        (true, Some(true)) => {
            if p.len() != q.map_or(0, |q| q.len()) {
                return Err(Error::invalid(
                    "probs",
                    format!(
                        "has {} columns but the draft distributions had {}; both must cover the vocabulary",
                        p.len(),
                        q.map_or(0, |q| q.len())
                    ),
                ));
            }
            Some(p.len())
        }
        (true, _) => Some(p.len()),
        (false, Some(true)) => q.map(|q| q.len()),
        (false, _) => None,
    };
    if let Some(v) = v_dense {
        let pa = dense_f64(p, v)?;
        let qa = match q {
            Some(q) => dense_f64(q, v)?,
            None => crate::pool::filled(v, 0.0),
        };
        return Ok(Aligned { ids: None, p: pa, q: qa });
    }
    // Both sparse: sorted union of the positive supports.
    let mut entries: Vec<(i64, f64, f64)> = Vec::new();
    with_dist!(p, |ids, vals| {
        let ids = ids.unwrap_or(&[]);
        for (&t, &v) in ids.iter().zip(vals) {
            if v.to_f64() > 0.0 {
                entries.push((t, v.to_f64(), 0.0));
            }
        }
    });
    if let Some(q) = q {
        with_dist!(q, |ids, vals| {
            let ids = ids.unwrap_or(&[]);
            for (&t, &v) in ids.iter().zip(vals) {
                if v.to_f64() > 0.0 {
                    entries.push((t, 0.0, v.to_f64()));
                }
            }
        });
    }
    entries.sort_unstable_by_key(|e| e.0);
    let mut ids = Vec::with_capacity(entries.len());
    let mut pa = Vec::with_capacity(entries.len());
    let mut qa = Vec::with_capacity(entries.len());
    for (t, pv, qv) in entries {
        if ids.last() == Some(&t) {
            *pa.last_mut().unwrap_or(&mut 0.0) += pv;
            *qa.last_mut().unwrap_or(&mut 0.0) += qv;
        } else {
            ids.push(t);
            pa.push(pv);
            qa.push(qv);
        }
    }
    Ok(Aligned { ids: Some(ids), p: pa, q: qa })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_argument() {
        assert!(check("probs", DistRef::D64(&[0.5, 0.5])).is_ok());
        assert_eq!(check("probs", DistRef::D64(&[0.5, 0.4])).unwrap_err().arg(), "probs");
        assert!(check("probs", DistRef::D64(&[1.5, -0.5])).unwrap_err().to_string().contains("negative"));
        assert!(check("probs", DistRef::D32(&[f32::NAN, 1.0])).unwrap_err().to_string().contains("non-finite"));
        let e = check("probs", DistRef::S64(&[3, 3], &[0.5, 0.5])).unwrap_err();
        assert_eq!(e.arg(), "token_ids");
        assert!(check("probs", DistRef::S64(&[3, -1], &[1.0, 0.0])).is_ok());
    }

    #[test]
    fn align_dense_and_sparse() {
        let a = align(DistRef::S64(&[4, 1], &[0.5, 0.5]), Some(DistRef::S32(&[1, 2, -1], &[0.5, 0.5, 0.0]))).unwrap();
        assert_eq!(a.ids, Some(vec![1, 2, 4]));
        assert_eq!(a.p, vec![0.5, 0.0, 0.5]);
        assert_eq!(a.q, vec![0.5, 0.5, 0.0]);
        let a = align(DistRef::D64(&[0.5, 0.5, 0.0]), Some(DistRef::S64(&[2], &[1.0]))).unwrap();
        assert_eq!(a.q, vec![0.0, 0.0, 1.0]);
        assert!(align(DistRef::D64(&[1.0]), Some(DistRef::S64(&[2], &[1.0]))).is_err());
        assert!(align(DistRef::D64(&[1.0]), Some(DistRef::D64(&[0.5, 0.5]))).is_err());
    }
}

/// The `k` largest entries of every row of a row-major (rows × cols) array, largest first, ties
/// to the lower column: (values, columns), both rows × k. The generation loop's top-k candidates
/// on a CPU.
///
/// Why not the kernel alone: it tests every entry against its k-entry buffer one by one. Here a
/// vectorised pass first takes the maximum of each block of [`TOPK_BLOCK`] entries; the k-th
/// largest block maximum τ is a lower bound of the k-th largest entry (k blocks hold an entry
/// ≥ τ), so only the entries ≥ τ of the blocks whose maximum is ≥ τ are ranked by the kernel
/// (`verify::kernel::top_k`), in column order, which keeps its ties ([`top_k_in_blocks`]).
pub fn top_k_rows<T: Real>(vals: &[T], cols: usize, k: usize) -> Result<(Vec<T>, Vec<i64>)> {
    if cols == 0 || vals.len() % cols != 0 {
        return Err(Error::invalid("logits", format!("{} entries are not rows of {cols}", vals.len())));
    }
    if k == 0 || k > cols {
        return Err(Error::invalid("k", format!("is {k}; must lie in 1..={cols}")));
    }
    let rows = vals.len() / cols;
    let (mut v, mut ids) = (Vec::with_capacity(rows * k), Vec::with_capacity(rows * k));
    for row in vals.chunks(cols) {
        let maxima: Vec<f64> = row.chunks(TOPK_BLOCK).map(block_max).collect();
        if maxima.len() <= k || maxima.iter().any(|m| m.is_nan()) {
            for x in crate::verify::kernel::top_k_of(row, k) {
                v.push(row[x]);
                ids.push(x as i64);
            }
            continue;
        }
        let (rv, ri) = top_k_in_blocks(row, &maxima, k);
        v.extend(rv);
        ids.extend(ri);
    }
    Ok((v, ids))
}

/// The `k` largest entries of a row without NaN, given the maximum of each of its blocks of
/// [`TOPK_BLOCK`] entries (more than k blocks), largest first, ties to the lower column, as
/// `verify::kernel::top_k_of` ranks them. The k-th largest block maximum τ is a lower bound of
/// the k-th largest entry (k blocks hold an entry ≥ τ), so only the entries ≥ τ of blocks whose
/// maximum is ≥ τ are candidates (usually about k of them), ranked in column order (which keeps
/// the ties).
pub(crate) fn top_k_in_blocks<T: Real>(row: &[T], maxima: &[f64], k: usize) -> (Vec<T>, Vec<i64>) {
    let mut sel = maxima.to_vec();
    sel.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let tau = sel[k - 1];
    let (mut cand, mut pos) = (Vec::new(), Vec::new());
    for (b, (&mb, chunk)) in maxima.iter().zip(row.chunks(TOPK_BLOCK)).enumerate() {
        if mb >= tau {
            for (j, &v) in chunk.iter().enumerate() {
                if v.to_f64() >= tau {
                    cand.push(v);
                    pos.push(b * TOPK_BLOCK + j);
                }
            }
        }
    }
    let top = crate::verify::kernel::top_k_of(&cand, k);
    (top.iter().map(|&i| cand[i]).collect(), top.iter().map(|&i| pos[i] as i64).collect())
}

/// Entries per block of [`top_k_rows`]' pre-pass.
pub(crate) const TOPK_BLOCK: usize = 64;

/// Largest entry of a block (NaN if any entry is NaN), eight lanes so that it vectorises.
fn block_max<T: Real>(b: &[T]) -> f64 {
    let mut lanes = [f64::NEG_INFINITY; 8];
    let mut nan = false;
    let mut it = b.chunks_exact(8);
    for c in &mut it {
        for (lane, x) in lanes.iter_mut().zip(c) {
            let x = x.to_f64();
            nan |= x.is_nan();
            *lane = if x > *lane { x } else { *lane };
        }
    }
    let mut m = lanes.iter().fold(f64::NEG_INFINITY, |a, &x| if x > a { x } else { a });
    for x in it.remainder() {
        let x = x.to_f64();
        nan |= x.is_nan();
        m = if x > m { x } else { m };
    }
    if nan {
        f64::NAN
    } else {
        m
    }
}

#[cfg(test)]
mod top_k_rows_tests {
    use super::*;

    /// The block pre-pass never changes the result: rows with many ties, a peaked row, constant
    /// rows, rows shorter than k blocks, every k.
    #[test]
    fn top_k_rows_equals_the_kernel_on_every_row() {
        let mut r = crate::Rng::new(9);
        let cols = 700;
        let mut rows: Vec<f32> = Vec::new();
        for kind in 0..4 {
            for _ in 0..5 {
                rows.extend((0..cols).map(|i| match kind {
                    0 => (r.uniform() * 4.0).floor() as f32,
                    1 => r.gumbel() as f32,
                    2 => 1.0,
                    _ => {
                        if i == 650 {
                            9.0
                        } else {
                            (r.uniform() - 1.0) as f32
                        }
                    }
                }));
            }
        }
        for k in [1, 3, 10, 11, 64, 300, 700] {
            let (v, ids) = top_k_rows(&rows, cols, k).unwrap();
            for (row, (vr, ir)) in rows.chunks(cols).zip(v.chunks(k).zip(ids.chunks(k))) {
                let want = crate::verify::kernel::top_k_of(row, k);
                assert_eq!(ir.iter().map(|&x| x as usize).collect::<Vec<_>>(), want, "k={k}");
                assert!(vr.iter().zip(&want).all(|(&a, &j)| a == row[j]));
            }
        }
        assert_eq!(top_k_rows(&rows, 7, 0).unwrap_err().arg(), "k");
        assert_eq!(top_k_rows(&rows[..5], 7, 1).unwrap_err().arg(), "logits");
    }
}
