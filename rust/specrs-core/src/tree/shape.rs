//! Tree shapes under a target budget (RSD's fixed-target-computation setting, docs/theory.md §8): the
//! number of draft tokens the target scores per call is B = Σ_l Π_{j≤l} b_j for constant
//! branching and W·L for RSD-S.

use super::kind::TreeKind;
use crate::names::{Method, ShapeFamily};
use crate::{validate, Error, Result};

/// Largest budget `shapes` enumerates.
pub use crate::limits::MAX_SHAPE_BUDGET as MAX_BUDGET;

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
    validate::positive_n("budget", budget)?;
    if budget > MAX_BUDGET {
        return Err(Error::too_large("budget", format!("is {budget}; shapes are enumerated up to {MAX_BUDGET}")));
    }
    if let Some(d) = depth {
        validate::positive_n("depth", d)?;
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

/// A tree shape as the APIs ask for it; every field optional. The one place the shape rules
/// live: `DraftTree(kind, ...)` resolves through [`for_tree`], generation methods through
/// [`for_method`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShapeSpec {
    pub branching: Option<Vec<usize>>,
    pub width: Option<usize>,
    pub depth: Option<usize>,
    pub budget: Option<usize>,
    pub acceptance: Option<Vec<f64>>,
}

/// An optional count given must be at least 1 (the one integer rule, [`validate::positive_n`]).
fn at_least_one(arg: &str, x: Option<usize>) -> Result<()> {
    x.map_or(Ok(()), |v| validate::positive_n(arg, v))
}

/// `depth` (≥ 1) and `budget` size the shape vector, one entry per level: bounded by
/// [`crate::limits::MAX_TREE_NODES`] before it is allocated.
fn check_levels(spec: &ShapeSpec) -> Result<()> {
    at_least_one("depth", spec.depth)?;
    for (arg, x) in [("depth", spec.depth), ("budget", spec.budget)] {
        if let Some(x) = x {
            crate::limits::check_count(arg, x, crate::limits::MAX_TREE_NODES, "the number of tree levels or tokens")?;
        }
    }
    Ok(())
}

fn check_branching(kind: TreeKind, b: &[usize]) -> Result<()> {
    if b.is_empty() {
        return Err(Error::invalid("branching", "is empty; the tree needs depth ≥ 1"));
    }
    if let Some(l) = b.iter().position(|&x| x == 0) {
        return Err(Error::invalid("branching", format!("is 0 at depth {}; every level needs at least one child", l + 1)));
    }
    if let Some(&x) = b.iter().find(|&&x| x > kind.max_branching()) {
        return Err(Error::invalid(
            "branching",
            format!("{x} children per node; {} draws at most {} (width ≤ {})", kind.as_str(), kind.max_branching(), kind.max_branching()),
        ));
    }
    Ok(())
}

/// The shape of a `DraftTree`: `budget` (with optional `depth`: the [`best`] shape), or for
/// RSD-S `width` beams (the `beam_width` argument) at each of `depth` levels, or for every other
/// kind an explicit `branching` (with `depth`, if given, equal to its length).
pub fn for_tree(kind: TreeKind, spec: &ShapeSpec) -> Result<Vec<usize>> {
    check_levels(spec)?;
    if let Some(b) = spec.budget {
        if spec.branching.is_some() || spec.width.is_some() {
            return Err(Error::invalid("budget", "give either `budget` or an explicit shape (`branching` / `beam_width`), not both"));
        }
        return best(kind, b, spec.depth, spec.acceptance.as_deref());
    }
    if kind == TreeKind::RsdS {
        if spec.branching.is_some() {
            return Err(Error::invalid("branching", "rsd-s takes `beam_width` and `depth`, not `branching`"));
        }
        let w = spec.width.ok_or_else(|| Error::invalid("beam_width", "rsd-s needs `beam_width` (or `budget`)"))?;
        validate::positive_n("beam_width", w)?;
        let l = spec.depth.ok_or_else(|| Error::invalid("depth", "rsd-s needs `depth` (or `budget`)"))?;
        return Ok(vec![w; l]);
    }
    if spec.width.is_some() {
        return Err(Error::invalid("beam_width", format!("only rsd-s takes `beam_width`; {} takes `branching`", kind.as_str())));
    }
    let b =
        spec.branching.clone().ok_or_else(|| Error::invalid("branching", format!("{} needs `branching` (or `budget`)", kind.as_str())))?;
    check_branching(kind, &b)?;
    if let Some(d) = spec.depth {
        if d != b.len() {
            return Err(Error::invalid("depth", format!("is {d} but `branching` has {} levels", b.len())));
        }
    }
    Ok(b)
}

/// The tree a generation method drafts (empty for a method without a draft):
///
/// * fixed length (default): the method's shape family (registry, `names::ShapeFamily`) at
///   `depth` L and `width` k (defaults from the method's row): `chain` (1,)*L, `beam` (k,)*L,
///   `fan` (k, 1, …, 1); or an explicit per-depth `branching` (fan and chain methods; a chain
///   only of 1s);
/// * fixed target budget B (tree tokens per target call): a chain of B; with `width` k the
///   other methods keep k' = min(k, B) chains (or beams) of depth ⌊B / k'⌋; without `width` they
///   take the [`best`] shape for B. Every shape scores at most B tree tokens.
pub fn for_method(method: Method, spec: &ShapeSpec) -> Result<Vec<usize>> {
    let row = method.row();
    let Some(kind) = row.tree_kind else {
        return Ok(Vec::new());
    };
    check_levels(spec)?;
    at_least_one("width", spec.width)?;
    at_least_one("budget", spec.budget)?;
    if spec.budget.is_some() && (spec.branching.is_some() || spec.depth.is_some()) {
        return Err(Error::invalid("budget", "budget fixes the tree shape: give budget or depth/branching, not both"));
    }
    let shape = match (row.shape, spec.budget) {
        (ShapeFamily::Chain, budget) => {
            if let Some(b) = &spec.branching {
                if b.iter().any(|&x| x != 1) {
                    return Err(Error::invalid("branching", format!("{} drafts a single chain; use depth or budget", row.name)));
                }
            }
            let l = budget.or(spec.depth).or(spec.branching.as_ref().map(|b| b.len())).unwrap_or(row.default_depth);
            vec![1; l]
        }
        (_, Some(b)) if spec.width.is_none() => best(kind, b, None, spec.acceptance.as_deref())?,
        (ShapeFamily::Beam, budget) => {
            if spec.branching.is_some() {
                return Err(Error::invalid("branching", format!("{} takes width (beams per depth) and depth instead", row.name)));
            }
            let w = spec.width.unwrap_or(row.default_width);
            match budget {
                Some(b) => vec![w.min(b); b / w.min(b)],
                None => vec![w; spec.depth.unwrap_or(row.default_depth)],
            }
        }
        (family, budget) => match (&spec.branching, budget) {
            (Some(b), _) => {
                if let Some(d) = spec.depth {
                    if d != b.len() {
                        return Err(Error::invalid("depth", format!("is {d} but `branching` has {} levels", b.len())));
                    }
                }
                b.clone()
            }
            (None, Some(b)) => {
                let w = spec.width.unwrap_or(row.default_width).min(b);
                family.shape(b / w, w)
            }
            (None, None) => family.shape(spec.depth.unwrap_or(row.default_depth), spec.width.unwrap_or(row.default_width)),
        },
    };
    check_branching(kind, &shape)?;
    Ok(shape)
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
    fn method_shapes_follow_their_family_and_fit_the_budget() {
        let spec = |depth, width, budget| ShapeSpec { depth, width, budget, ..Default::default() };
        assert_eq!(for_method(Method::Autoregressive, &spec(Some(3), None, None)).unwrap(), Vec::<usize>::new());
        assert_eq!(for_method(Method::Sd, &ShapeSpec::default()).unwrap(), vec![1; 4]);
        assert_eq!(for_method(Method::Sd, &spec(None, None, Some(5))).unwrap(), vec![1; 5]);
        assert_eq!(for_method(Method::RsdS, &spec(Some(3), Some(4), None)).unwrap(), vec![4; 3]);
        assert_eq!(for_method(Method::RsdS, &spec(None, Some(4), Some(10))).unwrap(), vec![4; 2]);
        assert_eq!(for_method(Method::RsdC, &spec(Some(3), Some(3), None)).unwrap(), vec![3, 1, 1]);
        assert_eq!(for_method(Method::RsdC, &spec(None, Some(4), Some(8))).unwrap(), vec![4, 1]);
        assert_eq!(for_method(Method::RsdC, &spec(None, Some(20), Some(3))).unwrap(), vec![3]);
        let b = ShapeSpec { branching: Some(vec![3, 2]), ..Default::default() };
        assert_eq!(for_method(Method::Greedy, &b).unwrap(), vec![3, 2]);
        assert_eq!(for_method(Method::SpecHub, &b).unwrap_err().arg(), "branching");
        assert_eq!(for_method(Method::Sd, &b).unwrap_err().arg(), "branching");
        assert_eq!(for_method(Method::RsdS, &b).unwrap_err().arg(), "branching");
        assert_eq!(for_method(Method::RsdC, &ShapeSpec { depth: Some(3), ..b.clone() }).unwrap_err().arg(), "depth");
        assert_eq!(for_method(Method::RsdC, &ShapeSpec { budget: Some(3), ..b }).unwrap_err().arg(), "budget");
        assert_eq!(for_method(Method::RsdC, &spec(Some(0), None, None)).unwrap_err().arg(), "depth");
        assert_eq!(for_method(Method::RsdC, &spec(None, None, Some(0))).unwrap_err().arg(), "budget");
        for m in Method::ALL {
            let Some(kind) = m.row().tree_kind else { continue };
            for budget in [1, 3, 8, 16] {
                for width in [None, Some(2), Some(4)] {
                    if m == Method::SpecHub && width == Some(4) {
                        assert!(for_method(m, &spec(None, width, Some(budget))).is_err() || budget < 4);
                        continue;
                    }
                    let s = for_method(m, &spec(None, width, Some(budget))).unwrap();
                    let n = tree_size(kind, &s);
                    assert!(1 <= n && n <= budget, "{m:?} B={budget} w={width:?}: {s:?}");
                }
            }
            assert_eq!(for_method(m, &ShapeSpec::default()).unwrap(), m.row().default_shape(), "{m:?}");
        }
        // A DraftTree's rules: explicit shapes, rsd-s by beam width and depth.
        let t = |branching: Option<Vec<usize>>, width, depth| ShapeSpec { branching, width, depth, ..Default::default() };
        assert_eq!(for_tree(TreeKind::RsdS, &t(None, Some(2), Some(3))).unwrap(), vec![2; 3]);
        assert_eq!(for_tree(TreeKind::RsdS, &t(None, Some(2), None)).unwrap_err().arg(), "depth");
        assert_eq!(for_tree(TreeKind::RsdC, &t(None, Some(2), Some(3))).unwrap_err().arg(), "beam_width");
        assert_eq!(for_tree(TreeKind::RsdC, &t(Some(vec![2, 1]), None, Some(3))).unwrap_err().arg(), "depth");
        assert_eq!(for_tree(TreeKind::SpecHub, &t(Some(vec![3]), None, None)).unwrap_err().arg(), "branching");
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
