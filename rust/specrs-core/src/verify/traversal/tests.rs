//! Traversal verification (docs/theory.md §14) by exact enumeration on toy Markov models: every
//! draft tree of the shape with its probability (`tree::exact::tree_law`), the verifier's exact
//! output law on each (`DraftTree::traversal_law`, the code that samples), completed by the
//! target and compared with the target's sequence law.

use std::collections::HashMap;

use super::Lossy;
use crate::tree::arena::DraftTree;
use crate::tree::exact::tests::{completed, target_law};
use crate::tree::exact::{last_token, tree_law};
use crate::tree::DistRef;
use crate::TreeKind;

/// Row families of the toy tables: random with exact zeros and a tie, near-one-hot (mass 1e-300
/// off the top), a float32 softmax of [37, 0, …] (entries rounded to f32), and the uniform row
/// (every entry tied).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fam {
    Random,
    OneHot,
    Softmax37,
    Uniform,
}

/// A (V, V) Markov table whose row a is of family `fams[a % fams.len()]`.
fn table(v: usize, seed: u64, fams: &[Fam]) -> Vec<f64> {
    let mut r = crate::Rng::new(seed);
    let mut t = vec![0.0; v * v];
    for a in 0..v {
        let row = &mut t[a * v..(a + 1) * v];
        let top = (a + seed as usize) % v;
        match fams[a % fams.len()] {
            Fam::Random => {
                for x in row.iter_mut() {
                    *x = r.uniform() + 0.02;
                }
                row[(a + 1) % v] = 0.0;
                row[(a + 2) % v] = row[top];
                let s: f64 = row.iter().sum();
                row.iter_mut().for_each(|x| *x /= s);
            }
            Fam::OneHot => (0..v).for_each(|i| row[i] = if i == top { 1.0 } else { 1e-300 }),
            Fam::Softmax37 => {
                let e: Vec<f32> = (0..v).map(|i| if i == top { 1.0f32 } else { (-37.0f32).exp() }).collect();
                let s: f32 = e.iter().sum();
                (0..v).for_each(|i| row[i] = (e[i] / s) as f64);
            }
            Fam::Uniform => row.iter_mut().for_each(|x| *x = 1.0 / v as f64),
        }
    }
    t
}

const SHAPES: [&[usize]; 7] = [&[1, 1], &[1, 1, 1], &[3], &[2, 1], &[1, 2], &[2, 2], &[2, 1, 1]];

/// (p families, q families) pairs: random, confident target or draft, float32, ties, and mixed
/// tables (a confident row in one context, random in the others).
const FAMILIES: [(&[Fam], &[Fam]); 7] = [
    (&[Fam::Random], &[Fam::Random]),
    (&[Fam::OneHot], &[Fam::Random]),
    (&[Fam::Random], &[Fam::OneHot]),
    (&[Fam::Softmax37], &[Fam::Random]),
    (&[Fam::Random], &[Fam::Softmax37]),
    (&[Fam::Uniform, Fam::Random], &[Fam::Random, Fam::Uniform]),
    (&[Fam::OneHot, Fam::Random, Fam::Softmax37], &[Fam::Softmax37, Fam::OneHot, Fam::Random]),
];

fn rows<'a>(t: &'a DraftTree, p: &'a [f64], v: usize, root: usize) -> impl Fn(usize) -> DistRef<'a> + 'a {
    move |i| DistRef::D64(&p[last_token(t, i, root) * v..][..v])
}

/// Σ_tree P(tree) · law(verifier | tree), `law` giving a tree's step law.
fn mixture(trees: &[(DraftTree, f64)], law: impl Fn(&DraftTree) -> Vec<(Vec<i64>, f64)>) -> Vec<(Vec<i64>, f64)> {
    let mut acc: HashMap<Vec<i64>, f64> = HashMap::new();
    for (t, pr) in trees {
        for (toks, q) in law(t) {
            *acc.entry(toks).or_insert(0.0) += pr * q;
        }
    }
    acc.into_iter().collect()
}

fn max_err(law: &[(Vec<i64>, f64)], p: &[f64], v: usize, root: usize, len: usize) -> f64 {
    let got = completed(law, p, v, root, len);
    let want = target_law(p, v, root, len);
    let keys: std::collections::HashSet<&Vec<i64>> = got.keys().chain(want.keys()).collect();
    keys.into_iter().map(|s| (got.get(s).copied().unwrap_or(0.0) - want.get(s).copied().unwrap_or(0.0)).abs()).fold(0.0, f64::max)
}

/// A law with the probabilities of equal token sequences added up.
fn merged(law: &[(Vec<i64>, f64)]) -> HashMap<Vec<i64>, f64> {
    let mut m = HashMap::new();
    for (t, pr) in law {
        *m.entry(t.clone()).or_insert(0.0) += pr;
    }
    m
}

fn accepted(law: &[(Vec<i64>, f64)]) -> f64 {
    law.iter().map(|(t, pr)| pr * (t.len() - 1) as f64).sum()
}

/// The traversal law of every tree of `kind` (wor siblings unless iid) with lossy variant `lossy`.
fn traversal(kind: TreeKind, shape: &[usize], p: &[f64], q: &[f64], v: usize, lossy: Option<Lossy>) -> Vec<(Vec<i64>, f64)> {
    let root = 1;
    let trees = tree_law(kind, shape, q, v, root, true).unwrap();
    mixture(&trees, |t| t.traversal_law(rows(t, p, v, root), kind != TreeKind::Iid, |x| x.lossy = lossy).unwrap())
}

/// The emitted-sequence law is the target's to 1e-12 on every shape, row family, V = 3..5, for
/// siblings without replacement (the `traversal` kind's Gumbel-top-k) and i.i.d. siblings.
#[test]
fn traversal_emits_the_target_sequence_law_exactly() {
    let mut n = 0;
    for shape in SHAPES {
        for (fp, fq) in FAMILIES {
            for v in [3usize, 4, 5] {
                if v == 5 && shape.len() == 3 {
                    continue; // keeps the enumeration small
                }
                for seed in 0..2u64 {
                    let (p, q) = (table(v, 10 + seed, fp), table(v, 20 + seed, fq));
                    for kind in [TreeKind::Traversal, TreeKind::Iid] {
                        let law = traversal(kind, shape, &p, &q, v, None);
                        let total: f64 = law.iter().map(|x| x.1).sum();
                        assert!((total - 1.0).abs() < 1e-12, "{kind:?} {shape:?} total {total}");
                        let err = max_err(&law, &p, v, 1, shape.len() + 1);
                        assert!(err < 1e-12, "{kind:?} {shape:?} V={v} {fp:?}/{fq:?} seed {seed}: {err}");
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n, 7 * 7 * 2 * 2 * 3 - 2 * 7 * 2 * 2);
}

/// On a chain, traversal is block verification: the same law per drafted chain (to rounding), the
/// same E[accepted], and with the same seed the same step (the same coins on the same values).
#[test]
fn traversal_on_a_chain_is_block_verification() {
    for shape in [&[1usize, 1][..], &[1, 1, 1]] {
        for (fp, fq) in FAMILIES {
            let v = 3;
            let (p, q) = (table(v, 3, fp), table(v, 4, fq));
            for (t, _) in tree_law(TreeKind::SdBlock, shape, &q, v, 1, true).unwrap() {
                let mut tt = t.clone();
                tt.kind = TreeKind::Traversal;
                let a = t.verify_law(t.nodes.len(), rows(&t, &p, v, 1)).unwrap();
                let b = tt.verify_law(t.nodes.len(), rows(&t, &p, v, 1)).unwrap();
                let (la, lb) = (merged(&a), merged(&b));
                for k in la.keys().chain(lb.keys()) {
                    let (x, y) = (la.get(k).copied().unwrap_or(0.0), lb.get(k).copied().unwrap_or(0.0));
                    assert!((x - y).abs() < 1e-15, "{shape:?} {fp:?}/{fq:?} {k:?}: {x} vs {y}\n{a:?}\n{b:?}");
                }
                assert!((accepted(&a) - accepted(&b)).abs() < 1e-15);
                for seed in 0..50 {
                    let sa = t.verify(t.nodes.len(), rows(&t, &p, v, 1), seed).unwrap();
                    let sb = tt.verify(t.nodes.len(), rows(&t, &p, v, 1), seed).unwrap();
                    assert_eq!((sa.tokens, sa.path, sa.bonus), (sb.tokens, sb.path, sb.bonus), "seed {seed}");
                }
            }
        }
    }
}

/// On one level, traversal is RRS without replacement (Gumbel-top-k siblings, the rsd-c walk) and
/// RRS with replacement (i.i.d. siblings, the iid walk), tree by tree.
#[test]
fn one_level_is_rrs_without_and_with_replacement() {
    for (fp, fq) in FAMILIES {
        for (shape, v) in [(&[3usize][..], 4usize), (&[2], 3), (&[4], 5)] {
            let (p, q) = (table(v, 5, fp), table(v, 6, fq));
            for (kind, wor) in [(TreeKind::RsdC, true), (TreeKind::Iid, false)] {
                for (t, _) in tree_law(kind, shape, &q, v, 1, true).unwrap() {
                    let la = merged(&t.verify_law(t.nodes.len(), rows(&t, &p, v, 1)).unwrap());
                    let lb = merged(&t.traversal_law(rows(&t, &p, v, 1), wor, |_| {}).unwrap());
                    for k in la.keys().chain(lb.keys()) {
                        let (x, y) = (la.get(k).copied().unwrap_or(0.0), lb.get(k).copied().unwrap_or(0.0));
                        assert!((x - y).abs() < 1e-14, "{kind:?} {shape:?} {fp:?}/{fq:?} {k:?}: {x} vs {y}");
                    }
                }
            }
        }
    }
}

/// E[accepted] of traversal ≥ top-down RRS (without replacement on the same Gumbel-top-k trees,
/// with replacement on i.i.d. trees) on every instance; strictly larger on some.
#[test]
fn traversal_accepts_at_least_top_down_rrs() {
    let (mut n, mut strictly) = (0, 0);
    let mut random: HashMap<(&[usize], bool), (f64, f64)> = HashMap::new();
    for shape in SHAPES {
        for (fp, fq) in FAMILIES {
            for seed in 0..3u64 {
                let v = 3;
                let (p, q) = (table(v, 30 + seed, fp), table(v, 40 + seed, fq));
                for (kind, top_down) in [(TreeKind::Traversal, TreeKind::RsdC), (TreeKind::Iid, TreeKind::Iid)] {
                    let trav = accepted(&traversal(kind, shape, &p, &q, v, None));
                    let trees = tree_law(top_down, shape, &q, v, 1, true).unwrap();
                    let rrs = accepted(&mixture(&trees, |t| t.verify_law(t.nodes.len(), rows(t, &p, v, 1)).unwrap()));
                    assert!(trav >= rrs - 1e-12, "{kind:?} {shape:?} {fp:?}/{fq:?}: {trav} < {rrs}");
                    n += 1;
                    strictly += (trav > rrs + 1e-9) as usize;
                    if fp == [Fam::Random] && fq == [Fam::Random] {
                        let e = random.entry((shape, kind == TreeKind::Iid)).or_insert((0.0, 0.0));
                        (e.0, e.1) = (e.0 + trav, e.1 + rrs);
                    }
                }
            }
        }
    }
    assert_eq!(n, 7 * 7 * 3 * 2);
    println!("traversal > top-down on {strictly} of {n} instances");
    for ((shape, iid), (t, r)) in &random {
        println!("random rows {shape:?} iid={iid}: E[accepted] traversal {t:.4} / top-down {r:.4} = {:.4}", t / r);
    }
    assert!(strictly > 0);
}

/// Negative controls (docs/theory.md §14.4): the parent update min(S / (1 − Ms(t)), 1) and the
/// bonus drawn from the original p after every child was rejected are caught by the law test.
#[test]
fn the_law_test_catches_the_lossy_variants() {
    for lossy in [Lossy::ParentUpdate, Lossy::StaleBonus] {
        for shape in [&[1usize, 1][..], &[2, 1], &[1, 2], &[2, 2]] {
            let v = 4;
            let fams: &[Fam] = &[Fam::Random];
            let (p, q) = (table(v, 50, fams), table(v, 60, fams));
            let err = max_err(&traversal(TreeKind::Traversal, shape, &p, &q, v, Some(lossy)), &p, v, 1, shape.len() + 1);
            assert!(err > 1e-3, "{lossy:?} {shape:?}: {err}");
        }
    }
}

/// The walk that samples (rows fed one node at a time, as `generate` feeds them) follows the law
/// `traversal_law` enumerates: every outcome within 5 standard errors over 40,000 steps, on the
/// most likely [2, 2] tree.
#[test]
fn the_sampling_walk_follows_the_exact_law() {
    let v = 3;
    let (p, q) = (table(v, 71, &[Fam::Random]), table(v, 72, &[Fam::Random]));
    let trees = tree_law(TreeKind::Traversal, &[2, 2], &q, v, 1, true).unwrap();
    let (t, _) = trees.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let law: HashMap<Vec<i64>, f64> = t.verify_law(t.nodes.len(), rows(t, &p, v, 1)).unwrap().into_iter().collect();
    let draws = 40_000;
    let mut counts: HashMap<Vec<i64>, usize> = HashMap::new();
    for s in 0..draws {
        let step = t.verify(t.nodes.len(), rows(t, &p, v, 1), s).unwrap();
        assert_eq!((step.tokens.len(), step.keep.len()), (step.path.len() + 1, step.path.len() + 1));
        *counts.entry(step.tokens).or_insert(0) += 1;
    }
    for (toks, pr) in &law {
        let got = counts.get(toks).copied().unwrap_or(0) as f64 / draws as f64;
        let se = (pr * (1.0 - pr) / draws as f64).sqrt().max(1e-9);
        assert!((got - pr).abs() < 5.0 * se + 1e-12, "{toks:?}: {got} vs {pr}");
    }
    assert!(counts.keys().all(|k| law.contains_key(k)));
}
