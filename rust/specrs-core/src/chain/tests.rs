//! Chain verification: the exact law of the emitted sequence is the target's (every draft chain
//! and every random decision of this code enumerated, on context-dependent toy models with zeros,
//! ties, near-one-hot and float32 rows), placeholders end a chain, the batch equals the chains
//! one by one, and bad input is an error naming its row.

use super::*;
use crate::exact::{paths as enumerate, Path};
use crate::verify::verify_with;

/// Row families: random with exact zeros and ties, near-one-hot (mass 1e-300 off the top),
/// and a float32 softmax of [37, 0, 0].
#[derive(Clone, Copy, Debug)]
enum Family {
    Random,
    NearOneHot,
    Softmax37,
}

/// Element types the tests build rows in (f32 rows round each entry).
trait Elem: Real {
    fn from_f64(x: f64) -> Self;
}
impl Elem for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
}
impl Elem for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
}

/// A context-dependent toy model: the distribution after `prefix`, a deterministic function of
/// (seed, prefix), normalised in f64 and then stored as `T`.
fn dist<T: Elem>(seed: u64, prefix: &[usize], v: usize, fam: Family) -> Vec<T> {
    let mut h = seed;
    for &x in prefix {
        h = Rng::stream_seed(h, x as u64 + 1);
    }
    let mut rng = Rng::new(h);
    let w: Vec<f64> = match fam {
        Family::Random => {
            let mut w: Vec<f64> = (0..v)
                .map(|_| {
                    let u = rng.uniform();
                    if u < 0.2 {
                        0.0
                    } else if u < 0.4 {
                        0.25
                    } else {
                        rng.uniform()
                    }
                })
                .collect();
            if w.iter().all(|&x| x == 0.0) {
                w[(rng.next_u64() % v as u64) as usize] = 1.0;
            }
            w
        }
        Family::NearOneHot => {
            let top = (rng.next_u64() % v as u64) as usize;
            (0..v).map(|i| if i == top { 1.0 } else { 1e-300 }).collect()
        }
        Family::Softmax37 => {
            let top = (rng.next_u64() % v as u64) as usize;
            let e: Vec<f32> = (0..v).map(|i| if i == top { 1.0f32 } else { (-37.0f32).exp() }).collect();
            let s: f32 = e.iter().sum();
            e.iter().map(|&x| (x / s) as f64).collect()
        }
    };
    let s: f64 = w.iter().sum();
    w.iter().map(|&x| T::from_f64(x / s)).collect()
}

/// The law the verifier must reproduce: the row as the verifiers read it, renormalised in f64.
fn law_of<T: Elem>(row: &[T]) -> Vec<f64> {
    let s: f64 = row.iter().map(|x| x.to_f64()).sum();
    row.iter().map(|x| x.to_f64() / s).collect()
}

/// All sequences of length `len` over `v` tokens.
fn sequences(v: usize, len: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    for _ in 0..len {
        out = out.into_iter().flat_map(|s| (0..v).map(move |x| [s.clone(), vec![x]].concat())).collect();
    }
    out
}

/// P(first `h` tokens = s) when `head` is emitted and sampling continues from the target.
fn continue_with_p<T: Elem>(seed_p: u64, head: &[usize], h: usize, v: usize, fam: Family, law: &mut [f64], weight: f64) {
    let tails = sequences(v, h - head.len());
    for tail in tails {
        let mut w = weight;
        let mut s = head.to_vec();
        for &y in &tail {
            w *= law_of(&dist::<T>(seed_p, &s, v, fam))[y];
            s.push(y);
        }
        law[index(&s, v)] += w;
    }
}

fn index(s: &[usize], v: usize) -> usize {
    s.iter().fold(0, |a, &x| a * v + x)
}

/// Exact law of the first γ+1 emitted tokens of one verification step (then sampling from p),
/// drafts x ~ q by the chain's own draft model, over every draft chain and every path of
/// `run_chain`. `placeholders` pads each chain with that many −1 drafts (rows of the target at
/// the real chain's end; the q rows there are garbage on purpose).
fn chain_law<T: Elem>(
    verifier: Verifier,
    seeds: (u64, u64),
    gamma: usize,
    placeholders: usize,
    v: usize,
    fams: (Family, Family),
) -> Vec<f64> {
    let (sp, sq) = seeds;
    let h = gamma + 1;
    let mut law = vec![0.0; v.pow(h as u32)];
    for x in sequences(v, gamma) {
        let mut wq = 1.0;
        for i in 0..gamma {
            wq *= law_of(&dist::<T>(sq, &x[..i], v, fams.1))[x[i]];
        }
        if wq == 0.0 {
            continue;
        }
        let rows = gamma + placeholders;
        let mut p = Vec::with_capacity(rows * v);
        let mut q = Vec::with_capacity(rows * v);
        let mut drafts: Vec<i64> = Vec::new();
        for i in 0..rows {
            let prefix = &x[..i.min(gamma)];
            p.extend(dist::<T>(sp, prefix, v, fams.0));
            if i < gamma {
                q.extend(dist::<T>(sq, prefix, v, fams.1));
                drafts.push(x[i] as i64);
            } else {
                q.extend((0..v).map(|_| T::from_f64(f64::NAN)));
                drafts.push(-1);
            }
        }
        for (out, pr) in enumerate(|src| run_chain(verifier, &p, &q, &drafts, v, 0, src).unwrap()) {
            let mut head = x[..out.accepted].to_vec();
            match out.token {
                Some(y) => head.push(y),
                None => {
                    assert_eq!(out.accepted, gamma);
                    assert_eq!(placeholders, 0, "a row was left, so the chain must draw the next token");
                }
            }
            continue_with_p::<T>(sp, &head, h, v, fams.0, &mut law, wq * pr);
        }
    }
    law
}

fn target_law<T: Elem>(seed_p: u64, h: usize, v: usize, fam: Family) -> Vec<f64> {
    let mut law = vec![0.0; v.pow(h as u32)];
    continue_with_p::<T>(seed_p, &[], h, v, fam, &mut law, 1.0);
    law
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

const FAMILIES: [(Family, Family); 5] = [
    (Family::Random, Family::Random),
    (Family::NearOneHot, Family::Random),
    (Family::Random, Family::NearOneHot),
    (Family::Softmax37, Family::Random),
    (Family::Random, Family::Softmax37),
];

#[test]
fn sd_chain_emits_the_target_sequence_law_exactly() {
    every_family_emits_the_target_law(Verifier::Sd);
}

#[test]
fn block_chain_emits_the_target_sequence_law_exactly() {
    every_family_emits_the_target_law(Verifier::Block);
}

fn every_family_emits_the_target_law(verifier: Verifier) {
    let mut cases = 0;
    for (k, fams) in FAMILIES.iter().enumerate() {
        for gamma in 1..=3 {
            for v in [2usize, 3] {
                for trial in 0..4u64 {
                    let seeds = (1000 * k as u64 + 10 * trial, 7 + 1000 * k as u64 + 10 * trial);
                    let got = chain_law::<f64>(verifier, seeds, gamma, 0, v, *fams);
                    let want = target_law::<f64>(seeds.0, gamma + 1, v, fams.0);
                    assert!(max_err(&got, &want) < 1e-12, "{verifier:?} {fams:?} γ={gamma} V={v}: {got:?} vs {want:?}");
                    let got = chain_law::<f32>(verifier, seeds, gamma, 0, v, *fams);
                    let want = target_law::<f32>(seeds.0, gamma + 1, v, fams.0);
                    assert!(max_err(&got, &want) < 1e-12, "f32 {fams:?} γ={gamma} V={v}");
                    cases += 2;
                }
            }
        }
    }
    assert_eq!(cases, 240);
}

#[test]
fn a_placeholder_ends_the_chain_and_its_row_gives_the_next_token() {
    for verifier in CHAIN_VERIFIERS.iter().copied() {
        for gamma in 1..=2 {
            for pad in 1..=2 {
                let seeds = (31 + gamma as u64, 97 + pad as u64);
                let fams = (Family::Random, Family::Random);
                let got = chain_law::<f64>(verifier, seeds, gamma, pad, 3, fams);
                let want = target_law::<f64>(seeds.0, gamma + 1, 3, fams.0);
                assert!(max_err(&got, &want) < 1e-12, "{verifier:?} γ={gamma} pad={pad}");
            }
        }
    }
}

/// Negative control: a chain rule that keeps going after a rejection (emits the residual token
/// and then verifies the next draft, which was drafted after another token) is lossy, and the
/// enumeration sees it.
#[test]
fn the_law_check_catches_a_chain_that_ignores_rejections() {
    let (v, gamma) = (3usize, 2);
    let seeds = (5, 6);
    let fams = (Family::Random, Family::Random);
    let mut law = vec![0.0; v.pow(3)];
    for x in sequences(v, gamma) {
        let wq: f64 = (0..gamma).map(|i| law_of(&dist::<f64>(seeds.1, &x[..i], v, fams.1))[x[i]]).product();
        if wq == 0.0 {
            continue;
        }
        let p0 = dist::<f64>(seeds.0, &[], v, fams.0);
        let q0 = dist::<f64>(seeds.1, &[], v, fams.1);
        let p1 = dist::<f64>(seeds.0, &x[..1], v, fams.0);
        let q1 = dist::<f64>(seeds.1, &x[..1], v, fams.1);
        let mut first = Vec::new();
        for (o, pr) in enumerate(|s| verify_with(Verifier::Sd, None, &p0, &q0, &[x[0]], s).unwrap()) {
            first.push((o.token, pr));
        }
        for (t0, pr0) in first {
            // Wrong: verifies x₁ against p(·|x₀) even when t₀ ≠ x₀.
            for (o, pr1) in enumerate(|s| verify_with(Verifier::Sd, None, &p1, &q1, &[x[1]], s).unwrap()) {
                continue_with_p::<f64>(seeds.0, &[t0, o.token], 3, v, fams.0, &mut law, wq * pr0 * pr1);
            }
        }
    }
    let want = target_law::<f64>(seeds.0, 3, v, fams.0);
    assert!(max_err(&law, &want) > 1e-3);
}

#[test]
fn batch_equals_chains_one_by_one_with_their_own_seeds() {
    let v = 50;
    let mut rng = Rng::new(3);
    let lens = [0usize, 3, 1, 4, 2, 3];
    let rows: usize = lens.iter().sum();
    let mut p = Vec::new();
    let mut q = Vec::new();
    let mut drafts = Vec::new();
    for r in 0..rows {
        p.extend(dist::<f32>(r as u64, &[], v, Family::Random));
        let qr = dist::<f32>(1000 + r as u64, &[], v, Family::Random);
        let support: Vec<usize> = (0..v).filter(|&i| qr[i] > 0.0).collect();
        drafts.push(support[(rng.next_u64() % support.len() as u64) as usize] as i64);
        q.extend(qr);
    }
    drafts[rows - 1] = -1; // a trailing placeholder in the last chain
    let ends: Vec<usize> = lens
        .iter()
        .scan(0, |a, &l| {
            *a += l;
            Some(*a)
        })
        .collect();
    let seeds: Vec<u64> = (0..lens.len() as u64).map(|b| 77 + b).collect();
    let batch = verify_chains(Verifier::Sd, &p, &q, &drafts, &ends, v, &seeds).unwrap();
    let mut lo = 0;
    for (b, &hi) in ends.iter().enumerate() {
        let one = verify_chain(Verifier::Sd, &p[lo * v..hi * v], &q[lo * v..hi * v], &drafts[lo..hi], v, &mut Rng::new(seeds[b])).unwrap();
        assert_eq!(batch[b], one, "chain {b}");
        lo = hi;
    }
    assert_eq!(batch[0], ChainOutcome { accepted: 0, token: None }, "an empty chain leaves the bonus");
    // The same chain in another batch position, with its seed, gives the same outcome.
    let moved = verify_chains(Verifier::Sd, &p[..3 * v], &q[..3 * v], &drafts[..3], &[3], v, &seeds[1..2]).unwrap();
    assert_eq!(moved[0], batch[1]);
}

#[test]
fn bad_input_is_an_error_naming_the_row() {
    let v = 3;
    let p = vec![0.2f64, 0.3, 0.5, 0.1, 0.1, 0.8];
    let q = vec![0.5f64, 0.25, 0.25, 0.3, 0.3, 0.4];
    let ok = verify_chains(Verifier::Sd, &p, &q, &[0, 1], &[1, 2], v, &[1, 2]);
    assert!(ok.is_ok());
    let e = verify_chains(Verifier::Rrs, &p, &q, &[0, 1], &[1, 2], v, &[1, 2]).unwrap_err();
    assert!(e.arg() == "verifier" && e.to_string().contains("chains support: sd, block"), "{e}");
    let e = verify_chains(Verifier::Sd, &p, &q, &[0, 1], &[2, 1], v, &[1, 2]).unwrap_err();
    assert_eq!(e.arg(), "cu_num_drafts");
    let e = verify_chains(Verifier::Sd, &p, &q, &[0, 1], &[1, 1], v, &[1, 2]).unwrap_err();
    assert!(e.arg() == "cu_num_drafts" && e.to_string().contains("2 draft rows"), "{e}");
    let e = verify_chains(Verifier::Sd, &p, &q, &[0, 1], &[2], v, &[1, 2]).unwrap_err();
    assert_eq!(e.arg(), "seeds");
    let e = verify_chains(Verifier::Sd, &p[..5], &q, &[0, 1], &[1, 2], v, &[1, 2]).unwrap_err();
    assert_eq!(e.arg(), "drafts");
    let e = verify_chains(Verifier::Sd, &p, &q, &[0, 3], &[1, 2], v, &[1, 2]).unwrap_err();
    assert!(e.arg() == "drafts[row 1]" && e.to_string().contains("outside the vocabulary"), "{e}");
    let mut bad = p.clone();
    bad[4] = f64::NAN;
    let e = verify_chains(Verifier::Sd, &bad, &q, &[0, 1], &[1, 2], v, &[1, 2]).unwrap_err();
    assert_eq!(e.arg(), "p[row 1]");
    // A token the draft distribution gives probability 0 could not have been drafted.
    let zq = vec![0.5f64, 0.5, 0.0, 0.3, 0.3, 0.4];
    let e = verify_chain(Verifier::Sd, &p, &zq, &[2, 1], v, &mut Rng::new(0)).unwrap_err();
    assert_eq!(e.arg(), "drafts[row 0]");
}

/// A chain model given by its conditionals: `p(prefix)`, `q(prefix)` are the rows after `prefix`.
type Model<'a> = &'a dyn Fn(&[usize]) -> Vec<f64>;

/// Every (draft chain, its q-probability, outcome, outcome probability) of one step of
/// `verifier` on the model, by enumerating the draft chains and every path of `run_chain`.
fn outcomes(verifier: Verifier, p: Model, q: Model, gamma: usize, v: usize) -> Vec<(Vec<usize>, f64, ChainOutcome, f64)> {
    let mut out = Vec::new();
    for x in sequences(v, gamma) {
        let wq: f64 = (0..gamma).map(|i| q(&x[..i])[x[i]]).product();
        if wq == 0.0 {
            continue;
        }
        let pr: Vec<f64> = (0..gamma).flat_map(|i| p(&x[..i])).collect();
        let qr: Vec<f64> = (0..gamma).flat_map(|i| q(&x[..i])).collect();
        let drafts: Vec<i64> = x.iter().map(|&t| t as i64).collect();
        for (o, w) in enumerate(|src| run_chain(verifier, &pr, &qr, &drafts, v, 0, src).unwrap()) {
            out.push((x.clone(), wq, o, w));
        }
    }
    out
}

fn expected_accepted(verifier: Verifier, p: Model, q: Model, gamma: usize, v: usize) -> f64 {
    outcomes(verifier, p, q, gamma, v).iter().map(|(_, wq, o, w)| wq * w * o.accepted as f64).sum()
}

/// ρ_i of the drafted chain x (docs/theory.md §11.1), in plain arithmetic.
fn rho(p: Model, q: Model, x: &[usize], i: usize) -> f64 {
    (0..i).fold(1.0, |r, j| (r * p(&x[..j])[x[j]] / q(&x[..j])[x[j]]).min(1.0))
}

/// docs/theory.md §11.1, worked example (γ = 2, V = 3): E[τ] = 1.18 token-wise, 1.24 by block
/// verification; and P(τ ≥ i | x^i) = ρ_i for every draft chain.
#[test]
fn block_verification_reproduces_the_worked_example() {
    let (p, q) = (example_p, example_q);
    let sd = expected_accepted(Verifier::Sd, &p, &q, 2, 3);
    let bv = expected_accepted(Verifier::Block, &p, &q, 2, 3);
    assert!((sd - 1.18).abs() < 1e-12 && (bv - 1.24).abs() < 1e-12, "sd {sd} block {bv}");
    // The draft "ab": P(τ = 0, 1, 2) = (0.6875, 0.0458.., 0.2667..) under block verification.
    let ab: Vec<(usize, f64)> =
        outcomes(Verifier::Block, &p, &q, 2, 3).into_iter().filter(|o| o.0 == [0, 1]).map(|o| (o.2.accepted, o.3)).collect();
    let at = |t: usize| ab.iter().filter(|o| o.0 == t).map(|o| o.1).sum::<f64>();
    assert!((at(0) - 0.6875).abs() < 1e-12 && (at(1) - (1.0 - 0.8 / 3.0) * 0.0625).abs() < 1e-12 && (at(2) - 0.8 / 3.0).abs() < 1e-12);
    // The paper's binary toy: p = (1/3, 2/3), q = (2/3, 1/3) at every position, γ = 2.
    let (pt, qt) = (|_: &[usize]| vec![1.0 / 3.0, 2.0 / 3.0], |_: &[usize]| vec![2.0 / 3.0, 1.0 / 3.0]);
    assert!((expected_accepted(Verifier::Sd, &pt, &qt, 2, 2) - 10.0 / 9.0).abs() < 1e-12);
    assert!((expected_accepted(Verifier::Block, &pt, &qt, 2, 2) - 11.0 / 9.0).abs() < 1e-12);
}

/// On random context-dependent models (zeros, near-one-hot, float32-rounded rows), block
/// verification keeps the prefix x^i with probability exactly ρ_i, so E[τ] = Σ_i E_q[ρ_i]
/// (docs/theory.md §11.1), and accepts at least as much as token-wise SD in expectation.
#[test]
fn block_accepts_rho_and_never_less_than_sd() {
    let mut cases = 0;
    for (k, fams) in FAMILIES.iter().enumerate() {
        for gamma in 1..=3 {
            for trial in 0..3u64 {
                let (sp, sq, v) = (500 + 10 * k as u64 + trial, 900 + 10 * k as u64 + trial, 3);
                let p = move |pre: &[usize]| law_of(&dist::<f64>(sp, pre, v, fams.0));
                let q = move |pre: &[usize]| law_of(&dist::<f64>(sq, pre, v, fams.1));
                let all = outcomes(Verifier::Block, &p, &q, gamma, v);
                // P(τ ≥ i | x^i): over the chains that share the prefix x^i, weighted by q.
                for i in 1..=gamma {
                    for pre in sequences(v, i) {
                        let mine: Vec<&(Vec<usize>, f64, ChainOutcome, f64)> = all.iter().filter(|o| o.0[..i] == pre[..]).collect();
                        let mass: f64 = mine.iter().map(|o| o.1 * o.3).sum();
                        if mass == 0.0 {
                            continue;
                        }
                        let reach: f64 = mine.iter().filter(|o| o.2.accepted >= i).map(|o| o.1 * o.3).sum::<f64>() / mass;
                        assert!((reach - rho(&p, &q, &pre, i)).abs() < 1e-12, "{fams:?} {pre:?} i={i}: {reach}");
                    }
                }
                let sd = expected_accepted(Verifier::Sd, &p, &q, gamma, v);
                let bv = expected_accepted(Verifier::Block, &p, &q, gamma, v);
                assert!(bv >= sd - 1e-12, "{fams:?} γ={gamma}: block {bv} < sd {sd}");
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 45);
}

/// P(first `h` tokens = s) of `head` continued by sampling the model's p, into `law`.
fn complete(p: Model, head: &[usize], h: usize, v: usize, law: &mut [f64], weight: f64) {
    for tail in sequences(v, h - head.len()) {
        let mut s = head.to_vec();
        let mut w = weight;
        for &y in &tail {
            w *= p(&s)[y];
            s.push(y);
        }
        law[index(&s, v)] += w;
    }
}

/// The worked example of docs/theory.md §11.1 (γ = 2, V = 3), whose first token is over-drafted.
fn example_p(pre: &[usize]) -> Vec<f64> {
    match pre {
        [] => vec![0.2, 0.5, 0.3],
        [0] => vec![0.6, 0.2, 0.2],
        [1] => vec![0.3, 0.4, 0.3],
        [2] => vec![0.1, 0.1, 0.8],
        _ => vec![1.0 / 3.0; 3],
    }
}

fn example_q(pre: &[usize]) -> Vec<f64> {
    match pre {
        [] => vec![0.5, 0.3, 0.2],
        [0] => vec![0.2, 0.3, 0.5],
        [1] => vec![0.5, 0.25, 0.25],
        _ => vec![0.3, 0.3, 0.4],
    }
}

/// Negative control: block verification that scans forward and stops at the first failing
/// position (τ = the first i with η_i > h_i, minus one) instead of taking the last passing one is
/// lossy, and the sequence-law check sees it on a model where the real rule is exact.
#[test]
fn the_law_check_catches_block_verification_that_stops_at_the_first_failure() {
    use crate::verify::block::{Block, Position};
    let (p, q) = (example_p, example_q);
    let (v, gamma) = (3usize, 2);
    let (mut wrong_law, mut right_law, mut want) = (vec![0.0; 27], vec![0.0; 27], vec![0.0; 27]);
    complete(&p, &[], 3, v, &mut want, 1.0);
    for x in sequences(v, gamma) {
        let wq: f64 = (0..gamma).map(|i| q(&x[..i])[x[i]]).product();
        let pr: Vec<Vec<f64>> = (0..gamma).map(|i| p(&x[..i])).collect();
        let qr: Vec<Vec<f64>> = (0..gamma).map(|i| q(&x[..i])).collect();
        let rows: Vec<Position<'_, f64>> =
            (0..gamma).map(|i| Position { p: &pr[i], q: &qr[i], sums: Sums { p: 1.0, q: 1.0 }, draft: x[i] }).collect();
        let wrong = |src: &mut Path| {
            let mut b = Block::new(&rows);
            let tau = (1..=gamma).find(|&i| !src.coin(b.h(i))).map_or(gamma, |i| i - 1);
            (tau, (tau < gamma).then(|| b.residual(tau, src)))
        };
        for (rule, law) in [(0, &mut wrong_law), (1, &mut right_law)] {
            let outs = if rule == 0 {
                enumerate(wrong)
            } else {
                enumerate(|src| {
                    let o = crate::verify::block::verify(&rows, src);
                    (o.accepted, o.token)
                })
            };
            for ((tau, y), w) in outs {
                let mut head = x[..tau].to_vec();
                head.extend(y);
                complete(&p, &head, 3, v, law, wq * w);
            }
        }
    }
    assert!(max_err(&right_law, &want) < 1e-12);
    assert!(max_err(&wrong_law, &want) > 1e-3, "{}", max_err(&wrong_law, &want));
}
