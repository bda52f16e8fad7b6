//! Draft samplers: the n drafts of one position, in draw order, for every [`Scheme`].
//!
//! All use the fixed core [`Rng`] (xoshiro256++ seeded by SplitMix64) and inverse-CDF picks with
//! a fixed summation order, so a seed gives the same drafts on every platform. Every scheme but
//! `cp` draws through the one [`Sampler`] (also used by the tree builders and, for its
//! conditionals, by `law::scheme_law`): one uniform per draw, O(V/256 + 256) per draw over the
//! block sums of the validation pass.
//!
//! - `iid`: n independent draws from q.
//! - `wor`: successive sampling without replacement: draw j from q with the earlier drafts
//!   removed, renormalised. This is the law of Gumbel-top-k (Kool et al. 2019; docs/theory.md §3) and of
//!   `torch.multinomial(q, n, replacement=False)`, in draw order; we draw it sequentially (n passes)
//!   instead of perturbing all V scores.
//! - `greedy` (Hu et al. 2025, §5.1): the top n−1 tokens of q, largest first (lowest id on ties),
//!   then one draw from q without them.
//! - `spechub` (Sun et al. 2024), n = 2: with hub a = argmax q (lowest id on ties), x₁ ~ q; the
//!   drafts are (x₁, a) if x₁ ≠ a, else (a, x₂) with x₂ ~ q without a.
//! - `topk`: the n largest entries of q, largest first (lowest id on ties); no randomness.
//! - `cp` (conditional Poisson): an n-subset S with probability ∏_{i∈S} q(i) / e_n(q), returned
//!   in **ascending token order** (the law is over sets). Sampled exactly by the sequential method:
//!   with e_k(i) the k-th elementary symmetric polynomial of q(i..V), the smallest member is i with
//!   probability q(i) e_{n−1}(i+1) / e_n(0), the next one j > i with q(j) e_{n−2}(j+1) / e_{n−1}(i+1),
//!   and so on (n picks over a (V+1)×(n+1) table).
//!
//! Without replacement, "q renormalised without the earlier drafts" divides by the mass that
//! remains, which the sampler *sums* (re-summing the blocks that hold excluded entries) instead of
//! computing 1 − Σ drawn: on a confident row such as q = (1, 1e-20, 1e-20) the subtraction is 0
//! and the second draft would repeat the first (docs/theory.md, "Remaining mass").

use crate::law::check_n;
use crate::names::Scheme;
use crate::verify::kernel::{self, pick_by, top_k, BLOCK};
use crate::{cancel, limits, parallel, validate, Error, Real, Result, Rng};

/// n draft token ids from q for `scheme`, in draw order (ascending for `cp`).
pub fn draft<T: Real>(q: &[T], n: usize, scheme: Scheme, rng: &mut Rng) -> Result<Vec<usize>> {
    let (blocks, stats) = validate::distribution_blocks("q", q)?;
    check_n(n, scheme, stats.positive)?;
    check_buffers(q.len(), n, scheme)?;
    let out = draw_scheme(&mut Sampler::new(q, blocks), scheme, n, |i| i as i64, rng);
    // A loop stopped by Ctrl-C leaves a partial result: report the interrupt instead.
    cancel::status().map(|_| out)
}

/// The n drafts of `scheme` from the sampler's row, in draw order, as positions of the row (for
/// `cp`, ascending positions: pass dense rows). `id` maps a position to its token id, so that
/// greedy's top set and SpecHub's hub break ties to the lower token id on sparse rows too. The
/// sampler must start with nothing excluded. Returns fewer than n drafts when the support runs out
/// (only reachable through a truncating tree level: `draft` checks n against the support) or
/// when the current call is cancelled (Ctrl-C: the caller reports `cancel::status()`).
pub(crate) fn draw_scheme<T: Real, I: Fn(usize) -> i64>(
    s: &mut Sampler<'_, T>,
    scheme: Scheme,
    n: usize,
    id: I,
    rng: &mut Rng,
) -> Vec<usize> {
    let vals = s.vals;
    let top = |k: usize| {
        let mut t = top_k(vals.len(), k, |i| vals[i].to_f64(), &id);
        t.retain(|&x| vals[x].to_f64() > 0.0);
        t
    };
    let mut out = Vec::with_capacity(n);
    match scheme {
        Scheme::Iid => out.extend((0..n).map_while(|_| {
            cancel::check(s.draw_cost()).ok()?;
            s.pick(rng.uniform())
        })),
        Scheme::Wor => out.extend((0..n).map_while(|_| {
            cancel::check(s.draw_cost()).ok()?;
            s.draw(rng)
        })),
        Scheme::Greedy => {
            for x in top(n - 1) {
                if cancel::check(s.draw_cost()).is_err() {
                    break;
                }
                s.exclude(x);
                out.push(x);
            }
            out.extend(s.draw(rng));
        }
        Scheme::SpecHub => {
            // x1 ~ q; the hub a completes the pair unless x1 = a, then x2 ~ q without a (the
            // sampler has already excluded x1). n = 1: the single draw x1.
            if let Some(x1) = s.draw(rng) {
                out.push(x1);
                if n >= 2 {
                    let a = top(1).first().copied().unwrap_or(x1);
                    if x1 != a {
                        out.push(a);
                    } else {
                        out.extend(s.draw(rng));
                    }
                }
            }
        }
        // Err only when cancelled (Ctrl-C): the caller reports `cancel::status()`.
        Scheme::Cp => out = conditional_poisson(vals, n, rng).unwrap_or_default(),
        Scheme::TopK => out = top(n),
    }
    out
}

/// Checks n and the scratch memory of `scheme` for n drafts over V = `v` (before allocating).
fn check_buffers(v: usize, n: usize, scheme: Scheme) -> Result<()> {
    limits::check_count("n", n, limits::MAX_DRAFTS, "the number of drafts")?;
    if scheme == Scheme::Cp {
        limits::check_alloc("n", "the (V+1)×(n+1) table of the cp sampler", &[v.saturating_add(1), n.saturating_add(1)], 8)?;
    }
    Ok(())
}

/// The one sampler of the crate: inverse-CDF draws from a row of non-negative weights, with
/// replacement ([`Sampler::pick`]) or without ([`Sampler::draw`], [`Sampler::exclude`]).
///
/// It keeps the sum of each block of 256 entries that is not excluded. An exclusion *re-sums* its
/// block from the remaining entries instead of subtracting, so the mass that remains
/// ([`Sampler::rest`]) is a sum of non-negative terms: accurate relative to itself and positive
/// while any positive entry remains, however confident the row. A draw walks ≤ V/256 block sums
/// and ≤ 256 entries: O(V/256 + 256) after the validation pass that produced the block sums.
pub struct Sampler<'a, T: Real> {
    vals: &'a [T],
    blocks: Vec<f64>,
    excluded: Vec<usize>,
}

impl<'a, T: Real> Sampler<'a, T> {
    /// A sampler over `vals` with its block sums (as `validate::distribution_blocks` returns them).
    pub fn new(vals: &'a [T], blocks: Vec<f64>) -> Self {
        debug_assert_eq!(blocks.len(), vals.len().div_ceil(BLOCK));
        Sampler { vals, blocks, excluded: Vec::new() }
    }

    /// A sampler over an unvalidated (but finite, non-negative) row: computes the block sums.
    pub fn of(vals: &'a [T]) -> Self {
        let blocks = vals.chunks(BLOCK).map(|b| kernel::sum2(b, b, |x, _| x)).collect();
        Sampler { vals, blocks, excluded: Vec::new() }
    }

    /// Roughly the steps one draw or exclusion costs (for `cancel::check`): the block walk, one
    /// block, and the exclusion list it scans.
    pub fn draw_cost(&self) -> usize {
        self.blocks.len() + BLOCK * (1 + self.excluded.len().min(BLOCK))
    }

    /// The row's weights.
    pub fn vals(&self) -> &'a [T] {
        self.vals
    }

    /// The mass not excluded, Σ of the block sums (never 1 − Σ excluded).
    pub fn rest(&self) -> f64 {
        self.blocks.iter().sum()
    }

    /// Whether entry `x` is excluded.
    pub fn is_excluded(&self, x: usize) -> bool {
        self.excluded.contains(&x)
    }

    /// Removes entry `x` from later draws (greedy drafting removes its top tokens first).
    pub fn exclude(&mut self, x: usize) {
        if !self.is_excluded(x) {
            self.excluded.push(x);
            self.resum(x / BLOCK);
        }
    }

    /// Puts an excluded entry back (the explicit laws enumerate by excluding and restoring).
    pub fn include(&mut self, x: usize) {
        if let Some(k) = self.excluded.iter().position(|&e| e == x) {
            self.excluded.swap_remove(k);
            self.resum(x / BLOCK);
        }
    }

    /// Which entries of block `b` are excluded (one flag per entry; the exclusions are few, so
    /// this is one short scan instead of a search per entry).
    fn excluded_in(&self, b: usize) -> [bool; BLOCK] {
        let mut out = [false; BLOCK];
        for &e in &self.excluded {
            if e / BLOCK == b {
                out[e % BLOCK] = true;
            }
        }
        out
    }

    fn resum(&mut self, b: usize) {
        let start = b * BLOCK;
        let end = (start + BLOCK).min(self.vals.len());
        let off = self.excluded_in(b);
        self.blocks[b] = (start..end).filter(|&y| !off[y - start]).map(|y| self.vals[y].to_f64()).sum();
    }

    /// The entry with probability vals[x] / rest among those not excluded, by inverse CDF with the
    /// uniform `u` (nothing is excluded by the pick itself). Never an excluded or zero entry;
    /// `None` only when no mass remains.
    pub fn pick(&self, u: f64) -> Option<usize> {
        let total = self.rest();
        // Written negated so that a NaN total also returns None.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(total > 0.0) {
            return None;
        }
        let target = u * total;
        // The last block with mass is never skipped, so rounding cannot walk past all of them.
        let last = self.blocks.iter().rposition(|&s| s > 0.0)?;
        let mut acc = 0.0;
        for (b, &s) in self.blocks.iter().enumerate().take(last + 1) {
            if s <= 0.0 {
                continue;
            }
            if b < last && acc + s <= target {
                acc += s;
                continue;
            }
            let off = self.excluded_in(b);
            let start = b * BLOCK;
            let end = (start + BLOCK).min(self.vals.len());
            let mut found = None;
            for x in start..end {
                let v = self.vals[x].to_f64();
                if v > 0.0 && !off[x - start] {
                    acc += v;
                    found = Some(x);
                    if target < acc {
                        break;
                    }
                }
            }
            // Rounding may leave the walk just short of the target: the block's last positive
            // entry (one exists, since s > 0 sums the entries that remain).
            return found;
        }
        None
    }

    /// A draw without replacement: [`Sampler::pick`] with a fresh uniform, then excluded.
    pub fn draw(&mut self, rng: &mut Rng) -> Option<usize> {
        let x = self.pick(rng.uniform())?;
        self.exclude(x);
        Some(x)
    }
}

fn conditional_poisson<T: Real>(q: &[T], n: usize, rng: &mut Rng) -> Result<Vec<usize>> {
    let v = q.len();
    // Scale by max q: the law is unchanged and the e_k stay away from overflow.
    let m = q.iter().map(|x| x.to_f64()).fold(0.0, f64::max);
    let w = |i: usize| q[i].to_f64() / m;
    let k1 = n + 1;
    // e[i*k1 + k] = e_k(w_i, …, w_{V−1}).
    let mut e = vec![0.0f64; (v + 1) * k1];
    e[v * k1] = 1.0;
    for i in (0..v).rev() {
        cancel::check(k1)?;
        e[i * k1] = 1.0;
        for k in 1..k1 {
            e[i * k1 + k] = e[(i + 1) * k1 + k] + w(i) * e[(i + 1) * k1 + k - 1];
        }
    }
    // Products of n small entries underflow (q = (1, 1e-200, 1e-200, 1e-200), n = 3): then the
    // table holds logarithms, log e_k(i) = logaddexp(log e_k(i+1), log w_i + log e_{k−1}(i+1)).
    // Above 1e-250 a lost term is below 1e-58 of the sum it belongs to.
    let logs = e[n] < 1e-250;
    if logs {
        e.fill(f64::NEG_INFINITY);
        e[v * k1] = 0.0;
        for i in (0..v).rev() {
            cancel::check(k1)?;
            e[i * k1] = 0.0;
            let lw = w(i).ln();
            for k in 1..k1 {
                let (a, b) = (e[(i + 1) * k1 + k], lw + e[(i + 1) * k1 + k - 1]);
                let (hi, lo) = if a > b { (a, b) } else { (b, a) };
                e[i * k1 + k] = if lo == f64::NEG_INFINITY { hi } else { hi + (lo - hi).exp().ln_1p() };
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for left in (1..=n).rev() {
        let here = e[start * k1 + left];
        cancel::check(v - start)?;
        let (total, u) = (if logs { 1.0 } else { here }, rng.uniform());
        let rel = pick_by(v - start, total, u, |j| {
            let i = start + j;
            let rest = e[(i + 1) * k1 + left - 1];
            if logs {
                (w(i).ln() + rest - here).exp()
            } else {
                w(i) * rest
            }
        })
        .unwrap_or(0);
        out.push(start + rel);
        start += rel + 1;
    }
    Ok(out)
}

/// One draft tuple from an explicit joint law: row r of `tuples` (rows × n, row-major) with
/// probability `probs[r]`. Returns the row index.
pub fn draft_explicit_row(probs: &[f64], rng: &mut Rng) -> Result<usize> {
    let total = validate::distribution("probs", probs)?;
    let u = rng.uniform();
    Ok(pick_by(probs.len(), total, u, |i| probs[i]).unwrap_or(0))
}

/// Checks an explicit law's table: `tuples` has `probs.len()` rows of n ≥ 1 entries.
pub fn check_table(tuples_len: usize, n: usize, rows: usize) -> Result<()> {
    if n == 0 || tuples_len != rows * n {
        return Err(Error::invalid("drafts", format!("must be a (rows, n) table with one row per entry of `probs` ({rows} rows), n ≥ 1")));
    }
    Ok(())
}

/// [`draft`] for each row of q (rows × V, row-major) in parallel; row r uses
/// `Rng::for_stream(seed, r)`. Returns rows × n ids, row-major.
pub fn draft_batch<T: Real>(q: &[T], v: usize, n: usize, scheme: Scheme, seed: u64) -> Result<Vec<usize>> {
    if v == 0 || q.len() % v != 0 {
        return Err(Error::invalid("q", "must have shape (rows, V) with V ≥ 1"));
    }
    let m = q.len() / v;
    check_buffers(v, n, scheme)?;
    let len = limits::check_alloc("n", "the (rows, n) array of drafts", &[m, n], 8)?;
    let rows =
        parallel::map(m, |r| draft(&q[r * v..(r + 1) * v], n, scheme, &mut Rng::for_stream(seed, r as u64)).map_err(|e| e.in_row(r)))?;
    let mut out = Vec::with_capacity(len);
    for r in rows {
        out.extend(r?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::scheme_law;
    use std::collections::HashMap;

    /// Empirical frequencies of the draft tuples match `scheme_law` (ground truth) within 5 sd.
    #[test]
    fn every_scheme_samples_its_explicit_law() {
        let q = [0.35, 0.0, 0.25, 0.25, 0.1, 0.05];
        let draws = 100_000;
        for scheme in Scheme::ALL {
            for n in 1..=3usize {
                if scheme == Scheme::SpecHub && n != 2 {
                    continue;
                }
                let law = scheme_law(&q, n, scheme).unwrap();
                let mut rng = Rng::new(11);
                let mut counts: HashMap<Vec<usize>, usize> = HashMap::new();
                for _ in 0..draws {
                    *counts.entry(draft(&q, n, scheme, &mut rng).unwrap()).or_default() += 1;
                }
                let mut seen = 0;
                for r in 0..law.len() {
                    let c = counts.get(law.row(r)).copied().unwrap_or(0);
                    seen += c;
                    let (f, pr) = (c as f64 / draws as f64, law.probs[r]);
                    let sd = (pr * (1.0 - pr) / draws as f64).sqrt();
                    assert!((f - pr).abs() <= 5.0 * sd + 1e-12, "{scheme:?} n={n} {:?}: {f} vs {pr}", law.row(r));
                }
                assert_eq!(seen, draws, "{scheme:?} drew a tuple outside its law");
            }
        }
    }

    #[test]
    fn seeds_reproduce_and_bad_arguments_are_errors() {
        let q = [0.1, 0.3, 0.1, 0.3, 0.2];
        let a = draft(&q, 3, Scheme::Wor, &mut Rng::new(8)).unwrap();
        assert_eq!(a, draft(&q, 3, Scheme::Wor, &mut Rng::new(8)).unwrap());
        let b = draft_batch(&[q, q].concat(), 5, 2, Scheme::Cp, 4).unwrap();
        assert_eq!(&b[2..], &draft(&q, 2, Scheme::Cp, &mut Rng::for_stream(4, 1)).unwrap()[..]);
        assert!(draft(&q, 6, Scheme::Wor, &mut Rng::new(0)).is_err());
        assert!(draft(&q, 3, Scheme::SpecHub, &mut Rng::new(0)).is_err());
        assert!(draft_explicit_row(&[0.5, 0.6], &mut Rng::new(0)).is_err());
    }

    /// Confident rows (all but 1e-17..1e-300 of the mass on one token, f32 softmaxes with 37 and
    /// 60 nat gaps): drafts without replacement never repeat and never have q = 0, and every
    /// scheme's frequencies match its explicit law (which must itself be normalised).
    #[test]
    fn confident_rows_keep_the_law() {
        let f32_row = |gap: f32, v: usize| {
            let e: Vec<f32> = (0..v).map(|i| if i == 1 { 1.0 } else { (-gap).exp() }).collect();
            let s: f32 = e.iter().sum();
            e.iter().map(|x| x / s).collect::<Vec<f32>>()
        };
        let rows64: Vec<Vec<f64>> =
            vec![vec![1.0, 1e-20, 1e-20], vec![1e-300, 1.0, 0.0, 1e-300, 2e-300], vec![1.0 - 1e-15, 5e-16, 0.0, 5e-16]];
        for q in &rows64 {
            check_row(q);
        }
        for (gap, v) in [(37.0f32, 3usize), (30.0, 5), (60.0, 4)] {
            check_row(&f32_row(gap, v));
        }
        // The draft after excluding a 1.0 top token (V over several blocks).
        let mut big = vec![0.0f64; 3 * BLOCK];
        big[BLOCK + 1] = 1.0;
        big[5] = 1e-300;
        big[2 * BLOCK + 9] = 1e-300;
        for seed in 0..50 {
            let d = draft(&big, 3, Scheme::Wor, &mut Rng::new(seed)).unwrap();
            let mut u = d.clone();
            u.sort();
            assert_eq!(u, vec![5, BLOCK + 1, 2 * BLOCK + 9], "{d:?}");
        }
    }

    fn check_row<T: Real>(q: &[T]) {
        let support = q.iter().filter(|x| x.to_f64() > 0.0).count();
        for scheme in Scheme::ALL {
            for n in 1..=support.min(3) {
                if scheme == Scheme::SpecHub && n != 2 {
                    continue;
                }
                let law = scheme_law(q, n, scheme).unwrap();
                let total: f64 = law.probs.iter().sum();
                assert!((total - 1.0).abs() < 1e-14, "{scheme:?} n={n}: law sums to {total}");
                assert!(law.probs.iter().all(|p| p.is_finite() && *p > 0.0));
                let mut rng = Rng::new(3);
                let draws = 20_000;
                let mut counts: HashMap<Vec<usize>, usize> = HashMap::new();
                for _ in 0..draws {
                    let d = draft(q, n, scheme, &mut rng).unwrap();
                    assert!(d.iter().all(|&x| q[x].to_f64() > 0.0), "{scheme:?}: drafted a q = 0 token {d:?}");
                    if scheme.distinct() {
                        for k in 0..d.len() {
                            assert!(!d[..k].contains(&d[k]), "{scheme:?}: repeated draft {d:?}");
                        }
                    }
                    *counts.entry(d).or_default() += 1;
                }
                for r in 0..law.len() {
                    let c = counts.get(law.row(r)).copied().unwrap_or(0);
                    let (f, pr) = (c as f64 / draws as f64, law.probs[r]);
                    let sd = (pr * (1.0 - pr) / draws as f64).sqrt();
                    assert!((f - pr).abs() <= 5.0 * sd + 1e-12, "{scheme:?} n={n} {:?}: {f} vs {pr}", law.row(r));
                }
                assert_eq!(counts.values().sum::<usize>(), draws);
                assert!(counts.keys().all(|t| (0..law.len()).any(|r| law.row(r) == &t[..])), "{scheme:?}: tuple outside the law");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 400, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5A3D), ..Default::default() })]

        /// Rows of every regime of `test_rows` (ordinary, confident down to 1e-300, float32
        /// softmaxes, subnormal tails): no scheme drafts a q = 0 token and the distinct schemes
        /// never repeat one (issue 9 §1: `draft([1, 1e-20, 1e-20], 3, wor)` gave [0, 0, 0]).
        #[test]
        fn drafts_never_repeat_nor_draw_zero_mass(q in crate::test_rows::row(6), seed in 0u64..1000) {
            let support = q.iter().filter(|&&x| x > 0.0).count();
            let mut rng = Rng::new(seed);
            for scheme in Scheme::ALL {
                for n in 1..=support.min(4) {
                    if scheme.row().n.is_some_and(|k| k != n) {
                        continue;
                    }
                    for _ in 0..20 {
                        let d = draft(&q, n, scheme, &mut rng).unwrap();
                        proptest::prop_assert!(d.iter().all(|&x| q[x] > 0.0), "{scheme:?} q={q:?}: drafted a q = 0 token {d:?}");
                        if scheme.distinct() {
                            for k in 0..d.len() {
                                proptest::prop_assert!(!d[..k].contains(&d[k]), "{scheme:?} q={q:?}: repeated draft {d:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The sampler over rows longer than one block: drawn entries never repeat, the support runs
    /// out with None, and `include` restores an exclusion exactly.
    #[test]
    fn sampler_spans_blocks_and_runs_out_cleanly() {
        let mut big = vec![0.0f64; 3 * BLOCK];
        big[3] = 0.5;
        big[BLOCK + 7] = 0.25;
        big[2 * BLOCK + 1] = 0.25;
        let mut rng = Rng::new(5);
        let mut s = Sampler::of(&big);
        let before = s.rest();
        let mut got: Vec<usize> = (0..3).map(|_| s.draw(&mut rng).unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![3, BLOCK + 7, 2 * BLOCK + 1]);
        assert!(s.draw(&mut rng).is_none() && s.rest() == 0.0);
        for x in got {
            s.include(x);
        }
        assert_eq!(s.rest(), before);
    }
}
