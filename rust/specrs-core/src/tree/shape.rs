//! Tree shapes under a target budget (RSD's fixed-target-computation setting, rsd.md §10.4): the
//! number of draft tokens the target scores per call is B = Σ_l Π_{j≤l} b_j for constant
//! branching and W·L for RSD-S.

use super::kind::TreeKind;
use crate::{Error, Result};

/// Largest budget `shapes` enumerates.
pub const MAX_BUDGET: usize = 1024;

/// Draft tokens the target scores for a tree of this shape (root excluded).
pub fn tree_size(kind: TreeKind, shape: &[usize]) -> usize {
    if kind == TreeKind::RsdS {
        return shape.first().map_or(0, |w| w.saturating_mul(shape.len()));
    }
    let (mut n, mut total) = (1usize, 0usize);
    for &b in shape {
        n = n.saturating_mul(b);
        total = total.saturating_add(n);
    }
    total
}

fn check(budget: usize, depth: Option<usize>) -> Result<()> {
    if budget == 0 {
        return Err(Error::invalid("budget", "must be at least 1"));
    }
    if budget > MAX_BUDGET {
        return Err(Error::too_large("budget", format!("is {budget}; shapes are enumerated up to {MAX_BUDGET}")));
    }
    if depth == Some(0) {
        return Err(Error::invalid("depth", "must be at least 1"));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn rec(budget: usize, depth: Option<usize>, cap: usize, n: usize, used: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    let done = match depth {
        Some(d) => cur.len() == d,
        None => !cur.is_empty(),
    };
    if done {
        out.push(cur.clone());
        if depth.is_some() {
            return;
        }
    }
    let max_b = cur.last().copied().unwrap_or(cap);
    let mut b = 1;
    while b <= max_b && used + n * b <= budget {
        cur.push(b);
        rec(budget, depth, cap, n * b, used + n * b, cur, out);
        cur.pop();
        b += 1;
    }
}

/// Every shape that scores at most `budget` draft tokens: non-increasing branching vectors
/// (optionally of length `depth`; entries ≤ 2 for SpecHub), or for RSD-S the widest (W,)*L for
/// each depth L.
pub fn shapes(kind: TreeKind, budget: usize, depth: Option<usize>) -> Result<Vec<Vec<usize>>> {
    check(budget, depth)?;
    let mut out = Vec::new();
    if kind == TreeKind::RsdS {
        let ls: Vec<usize> = match depth {
            Some(d) => vec![d],
            None => (1..=budget).collect(),
        };
        for l in ls {
            let w = budget / l;
            if w >= 1 {
                out.push(vec![w; l]);
            }
        }
    } else {
        rec(budget, depth, kind.max_branching(), 1, 0, &mut Vec::new(), &mut out);
    }
    if out.is_empty() {
        return Err(Error::invalid("budget", format!("is {budget}, too small for a tree of depth {}", depth.unwrap_or(1))));
    }
    Ok(out)
}

/// Modelled block efficiency 1 + Σ_l Π_{j≤l} a(b_j), with a(k) the probability that one of k
/// siblings is accepted (a(k) = acceptance[min(k, len) − 1]); RSD-S uses a(W) at every depth.
pub fn modelled_efficiency(shape: &[usize], acceptance: &[f64]) -> f64 {
    let a = |k: usize| acceptance[k.min(acceptance.len()) - 1];
    let (mut reach, mut tau) = (1.0, 1.0);
    for &b in shape {
        reach *= a(b);
        tau += reach;
    }
    tau
}

/// The shape of `shapes` with the largest modelled efficiency (ties: fewer nodes, then the first
/// listed). Default acceptance model: a(k) = 1 − 0.4^k.
pub fn best(kind: TreeKind, budget: usize, depth: Option<usize>, acceptance: Option<&[f64]>) -> Result<Vec<usize>> {
    let default: Vec<f64>;
    let acc = match acceptance {
        Some(a) => {
            if a.is_empty() {
                return Err(Error::invalid("acceptance", "is empty; give a(1), a(2), …"));
            }
            if let Some(i) = a.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return Err(Error::invalid("acceptance", format!("entry {} at index {i} is not a probability", a[i])));
            }
            a
        }
        None => {
            default = (1..=budget.min(MAX_BUDGET)).map(|k| 1.0 - 0.4f64.powi(k as i32)).collect();
            &default
        }
    };
    let all = shapes(kind, budget, depth)?;
    let mut best: Option<(f64, usize, Vec<usize>)> = None;
    for s in all {
        let tau = modelled_efficiency(&s, acc);
        let size = tree_size(kind, &s);
        let better = match &best {
            None => true,
            Some((bt, bs, _)) => tau > *bt + 1e-12 || ((tau - bt).abs() <= 1e-12 && size < *bs),
        };
        if better {
            best = Some((tau, size, s));
        }
    }
    best.map(|b| b.2).ok_or_else(|| Error::invalid("budget", "no shape fits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_fit_the_budget_and_are_complete() {
        let all = shapes(TreeKind::RsdC, 6, None).unwrap();
        for s in &all {
            assert!(tree_size(TreeKind::RsdC, s) <= 6);
            assert!(s.windows(2).all(|w| w[0] >= w[1]));
        }
        // Brute force over vectors with entries ≤ 6 and length ≤ 6.
        let mut count = 0;
        for len in 1..=6usize {
            let mut v = vec![1usize; len];
            loop {
                if v.windows(2).all(|w| w[0] >= w[1]) && tree_size(TreeKind::RsdC, &v) <= 6 {
                    count += 1;
                    assert!(all.contains(&v), "{v:?} missing");
                }
                let mut k = 0;
                while k < len {
                    v[k] += 1;
                    if v[k] <= 6 {
                        break;
                    }
                    v[k] = 1;
                    k += 1;
                }
                if k == len {
                    break;
                }
            }
        }
        assert_eq!(count, all.len());
        // SpecHub: the same shapes restricted to entries ≤ 2.
        let hub = shapes(TreeKind::SpecHub, 6, None).unwrap();
        let want: Vec<&Vec<usize>> = all.iter().filter(|s| s.iter().all(|&b| b <= 2)).collect();
        assert_eq!(hub.iter().collect::<Vec<_>>(), want);
        assert_eq!(shapes(TreeKind::RsdS, 12, Some(4)).unwrap(), vec![vec![3; 4]]);
        assert!(shapes(TreeKind::RsdC, 0, None).is_err());
        assert!(shapes(TreeKind::RsdC, 3, Some(0)).is_err());
        assert_eq!(shapes(TreeKind::RsdC, 2, Some(3)).unwrap_err().arg(), "budget");
    }

    #[test]
    fn best_shape_maximises_the_model() {
        // With certain acceptance the deepest chain wins; with a(1) = 0 wider roots win.
        assert_eq!(best(TreeKind::RsdC, 4, None, Some(&[1.0])).unwrap(), vec![1, 1, 1, 1]);
        let b = best(TreeKind::RsdC, 6, Some(2), Some(&[0.0, 0.5, 0.6, 0.7, 0.8])).unwrap();
        assert_eq!(b, vec![2, 2]);
        assert!(best(TreeKind::RsdC, 6, None, Some(&[1.5])).is_err());
    }
}
