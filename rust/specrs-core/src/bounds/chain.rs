//! Expected accepted length of one draft chain, and its optima, for an explicit toy model
//! (docs/theory.md §11.4). A chain of γ drafts is drawn from q and verified against p:
//!
//! ```text
//! token-wise SD        E[τ_sd]    = Σ_{i=1}^γ Σ_{x^i} q(x^i) · Π_{j≤i} min(1, p_j(x_j)/q_j(x_j))
//! block verification   E[τ_block] = Σ_{i=1}^γ Σ_{x^i} q(x^i) · ρ_i(x^i)
//! full information     E[τ*]      = Σ_{i=1}^γ Σ_{x^i} min(p(x^i), q(x^i)) = Σ_i (1 − TV(p^(i), q^(i)))
//! ```
//!
//! Block verification is the best any lossless verifier can do that sees p and q on the drafted
//! path only (what one target pass returns; Sun et al., ICLR 2025); E[τ*] is the best over every
//! coupling of the draft and target sequence laws, which needs p and q off the path too, so it is
//! a diagnostic upper bound, not a verifier. sd ≤ block ≤ optimum on every model.
//!
//! **Layout.** The model is given by its rows after every prefix of length 0..γ−1, breadth first:
//! the prefix x₁..x_k (tokens in 0..V) is row Σ_{j<k} V^j + Σ_l x_l V^{k−1−l}, so there are
//! Σ_{k<γ} V^k rows of V entries (γ is read from the row count).

use crate::verify::block::log_rho_step;
use crate::verify::ratio;
use crate::{validate, Error, Real, Result};

/// E[accepted drafts] of one chain under token-wise SD and block verification, and the
/// full-information optimum (module docs); `depth` is γ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainOptima {
    pub depth: usize,
    pub sd: f64,
    pub block: f64,
    pub optimum: f64,
}

/// γ such that Σ_{k<γ} V^k = rows, if any.
fn depth_of(rows: usize, v: usize) -> Option<usize> {
    let (mut total, mut level, mut depth) = (0usize, 1usize, 0usize);
    while total < rows {
        total = total.checked_add(level)?;
        level = level.checked_mul(v)?;
        depth += 1;
    }
    (total == rows && rows > 0).then_some(depth)
}

/// The three expected accepted lengths of the chain model `p`, `q` (row-major, rows × `v`, in
/// the layout of the module docs). Rows are normalised by their sums. Cost O(rows · V).
pub fn chain_optima<T: Real>(p: &[T], q: &[T], v: usize) -> Result<ChainOptima> {
    if v == 0 || p.len() % v != 0 {
        return Err(Error::invalid("p", format!("must have shape (rows, V); got {} entries for V = {v}", p.len())));
    }
    validate::same_len("p", p.len(), "q", q.len())?;
    let rows = p.len() / v;
    let depth = depth_of(rows, v).ok_or_else(|| {
        Error::invalid(
            "p",
            format!("has {rows} rows; a chain model over V = {v} has one row per prefix of length 0..γ-1, i.e. 1 + V + … + V^(γ-1) rows"),
        )
    })?;
    let mut sums = Vec::with_capacity(rows);
    for r in 0..rows {
        let (ps, qs) = validate::pair(&p[r * v..(r + 1) * v], &q[r * v..(r + 1) * v]).map_err(|e| e.in_row(r))?;
        sums.push((ps.sum, qs.sum));
    }
    let mut out = ChainOptima { depth, sd: 0.0, block: 0.0, optimum: 0.0 };
    // Depth-first over the prefixes: (row of the prefix, its depth k, q(x^k), p(x^k), the SD
    // acceptance product, log ρ_k).
    let mut stack = vec![(0usize, 0usize, 1.0f64, 1.0f64, 1.0f64, 0.0f64)];
    let mut offset = vec![0usize; depth + 1];
    for k in 1..=depth {
        offset[k] = offset[k - 1] + v.pow(k as u32 - 1);
    }
    while let Some((r, k, qx, px, sd, lr)) = stack.pop() {
        crate::cancel::check(v)?;
        let (ps, qs) = sums[r];
        let local = r - offset[k];
        for x in 0..v {
            let (pv, qv) = (p[r * v + x].to_f64(), q[r * v + x].to_f64());
            let (pn, qn) = (pv / ps, qv / qs);
            out.optimum += (px * pn).min(qx * qn);
            if qv <= 0.0 {
                continue; // never drafted
            }
            let qx2 = qx * qn;
            let sd2 = sd * ratio(pn, qn);
            let lr2 = log_rho_step(lr, pv, ps, qv, qs);
            out.sd += qx2 * sd2;
            out.block += qx2 * lr2.exp();
            if k + 1 < depth {
                stack.push((offset[k + 1] + local * v + x, k + 1, qx2, px * pn, sd2, lr2));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::run_chain;
    use crate::exact::paths;
    use crate::{Rng, Verifier};

    /// Rows of a chain model from its conditionals, in the layout of the module docs.
    fn rows(f: &dyn Fn(&[usize]) -> Vec<f64>, v: usize, depth: usize) -> Vec<f64> {
        let mut level: Vec<Vec<usize>> = vec![Vec::new()];
        let mut out = Vec::new();
        for _ in 0..depth {
            for pre in &level {
                out.extend(f(pre));
            }
            level = level.iter().flat_map(|pre| (0..v).map(move |x| [pre.clone(), vec![x]].concat())).collect();
        }
        out
    }

    /// E[accepted] of `verifier` by enumerating every draft chain and every path of `run_chain`.
    fn enumerated(verifier: Verifier, p: &dyn Fn(&[usize]) -> Vec<f64>, q: &dyn Fn(&[usize]) -> Vec<f64>, v: usize, g: usize) -> f64 {
        let mut chains: Vec<Vec<usize>> = vec![Vec::new()];
        for _ in 0..g {
            chains = chains.iter().flat_map(|c| (0..v).map(move |x| [c.clone(), vec![x]].concat())).collect();
        }
        let mut e = 0.0;
        for x in chains {
            let wq: f64 = (0..g).map(|i| q(&x[..i])[x[i]]).product();
            if wq == 0.0 {
                continue;
            }
            let pr: Vec<f64> = (0..g).flat_map(|i| p(&x[..i])).collect();
            let qr: Vec<f64> = (0..g).flat_map(|i| q(&x[..i])).collect();
            let d: Vec<i64> = x.iter().map(|&t| t as i64).collect();
            for (o, w) in paths(|s| run_chain(verifier, &pr, &qr, &d, v, 0, s).unwrap()) {
                e += wq * w * o.accepted as f64;
            }
        }
        e
    }

    /// A context-dependent random row (some exact zeros) after `prefix`.
    fn random_row(seed: u64, prefix: &[usize], v: usize) -> Vec<f64> {
        let mut h = seed;
        for &x in prefix {
            h = Rng::stream_seed(h, x as u64 + 1);
        }
        let mut r = Rng::new(h);
        let mut w: Vec<f64> = (0..v).map(|_| if r.uniform() < 0.2 { 0.0 } else { r.uniform() }).collect();
        if w.iter().all(|&x| x == 0.0) {
            w[0] = 1.0;
        }
        let s: f64 = w.iter().sum();
        w.iter().map(|x| x / s).collect()
    }

    /// docs/theory.md §11.1 and §11.4: the worked example (1.18, 1.24, 1.32) and the binary toy
    /// (10/9, 11/9, 12/9).
    #[test]
    fn reproduces_the_worked_example_and_the_toy() {
        let p = |pre: &[usize]| match pre {
            [] => vec![0.2, 0.5, 0.3],
            [0] => vec![0.6, 0.2, 0.2],
            [1] => vec![0.3, 0.4, 0.3],
            _ => vec![0.1, 0.1, 0.8],
        };
        let q = |pre: &[usize]| match pre {
            [] => vec![0.5, 0.3, 0.2],
            [0] => vec![0.2, 0.3, 0.5],
            [1] => vec![0.5, 0.25, 0.25],
            _ => vec![0.3, 0.3, 0.4],
        };
        let o = chain_optima(&rows(&p, 3, 2), &rows(&q, 3, 2), 3).unwrap();
        assert_eq!(o.depth, 2);
        assert!((o.sd - 1.18).abs() < 1e-12 && (o.block - 1.24).abs() < 1e-12 && (o.optimum - 1.32).abs() < 1e-12, "{o:?}");
        let (pt, qt) = (|_: &[usize]| vec![1.0 / 3.0, 2.0 / 3.0], |_: &[usize]| vec![2.0 / 3.0, 1.0 / 3.0]);
        let o = chain_optima(&rows(&pt, 2, 2), &rows(&qt, 2, 2), 2).unwrap();
        assert!((o.sd - 10.0 / 9.0).abs() < 1e-12 && (o.block - 11.0 / 9.0).abs() < 1e-12 && (o.optimum - 12.0 / 9.0).abs() < 1e-12);
    }

    /// On random models (V = 2–3, γ = 1–3): the sd and block values are the verifiers' own
    /// enumerated E[accepted], and sd ≤ block ≤ optimum on every instance.
    #[test]
    fn values_are_the_verifiers_expected_lengths_and_ordered() {
        let mut cases = 0;
        for v in 2..=3 {
            for g in 1..=3 {
                for trial in 0..6u64 {
                    let (sp, sq) = (100 * v as u64 + 10 * g as u64 + trial, 7_000 + trial + 10 * g as u64);
                    let p = move |pre: &[usize]| random_row(sp, pre, v);
                    let q = move |pre: &[usize]| random_row(sq, pre, v);
                    let o = chain_optima(&rows(&p, v, g), &rows(&q, v, g), v).unwrap();
                    assert_eq!(o.depth, g);
                    assert!((o.sd - enumerated(Verifier::Sd, &p, &q, v, g)).abs() < 1e-12, "{o:?}");
                    assert!((o.block - enumerated(Verifier::Block, &p, &q, v, g)).abs() < 1e-12, "{o:?}");
                    assert!(o.sd <= o.block + 1e-12 && o.block <= o.optimum + 1e-12, "{o:?}");
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 36);
    }

    #[test]
    fn bad_layouts_are_errors_naming_the_argument() {
        let row = [0.5f64, 0.5];
        assert_eq!(chain_optima(&row, &row, 2).unwrap().depth, 1);
        let two: Vec<f64> = row.repeat(2);
        let e = chain_optima(&two, &two, 2).unwrap_err();
        assert!(e.arg() == "p" && e.to_string().contains("1 + V"), "{e}");
        assert_eq!(chain_optima(&row, &row[..1], 2).unwrap_err().arg(), "q");
        let mut bad = row.repeat(3);
        bad[3] = f64::NAN;
        assert_eq!(chain_optima(&bad, &row.repeat(3), 2).unwrap_err().arg(), "p[row 1]");
        assert_eq!(chain_optima::<f64>(&[], &[], 2).unwrap_err().arg(), "p");
    }
}
