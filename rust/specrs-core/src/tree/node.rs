//! Node-level verification on aligned (p, q) rows, in two modes that share every formula:
//! `sample` (what `verify` runs, stopping at the first acceptance) and `law` (the explicit law of
//! the outcome, used by the exact-enumeration tests).
//!
//! * `rrs_wor` (RSD, Jeon et al. 2024, rsd.md §2.1): at step i accept X_i with probability
//!   min(1, p_i(X_i)/q_i(X_i)); on rejection p_{i+1} = norm((p_i − q_i)_+) and q_{i+1} = q_i with
//!   X_i removed, renormalised; after K rejections emit a sample of p_{K+1}.
//! * `rrs` (SpecInfer, Miao et al. 2023): the same with q_i = q (siblings i.i.d.).
//! * `greedy` (Hu et al. 2025, mdsd.md §4.2): one speculative-sampling step between p and
//!   q' = q without the top b−1 tokens, on the sampled (last) child; a residual sample that hits a
//!   top child also continues down that child.
//! * `spechub` (Sun et al., EMNLP 2024, mdsd.md §5), two children (x1, x2) one of which is the hub
//!   a = argmax q: pair (i, a) has probability q(i), pair (a, i) has q_ai(i) = q(a)q(i)/(1 − q(a)).
//!   Stages in order, each residual update deterministic (independent of the pair drawn), the
//!   leftovers L taken from p before the update:
//!   (1) pair (i, a): accept i w.p. min(1, p(i)/q(i)); L_ia = Σ_{i≠a}(q − p)₊,
//!   p₁(i) = (p(i) − q(i))₊ off a; (2) pair (a, i): accept i w.p. min(1, p₁(i)/q_ai(i));
//!   L_ai = Σ_{i≠a}(q_ai − p₁)₊, p₂(i) = (p₁(i) − q_ai(i))₊ off a; (3) pair (a, i): accept a
//!   w.p. min(1, p(a)/L_ai), p(a) ← (p(a) − L_ai)₊; (4) pair (i, a): accept a w.p.
//!   min(1, p(a)/L_ia), p(a) ← (p(a) − L_ia)₊; (5) emit a sample of norm(p₂ off a, p(a) at a).
//!   The stages of the pair not drawn are skipped; the residual is the same for both pairs.
//!   Works on the aligned rows, so it is O(|supp p ∪ supp q|) on sparse rows.
//! * `match` (deterministic siblings): emit a sample of p; continue if it is a child.
//!
//! Whatever the rule, the emitted token has law p (rsd.md §2.2, mdsd.md §4.2).

use super::dist::Aligned;
use crate::verify::ratio;
use crate::{Rng, Verifier};

/// Outcome of one node: the emitted token, and the child index it accepted (if any).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeOutcome {
    pub token: i64,
    /// Index among the node's children (draw order) of the child to continue with.
    pub child: Option<usize>,
}

/// Running state of recursive rejection sampling: unnormalised residual target r (mass m) and
/// current draft q_i (mass qm).
struct Rrs {
    r: Vec<f64>,
    m: f64,
    q: Vec<f64>,
    qm: f64,
    wor: bool,
}

impl Drop for Rrs {
    fn drop(&mut self) {
        super::pool::POOL64.give(std::mem::take(&mut self.r));
        super::pool::POOL64.give(std::mem::take(&mut self.q));
    }
}

impl Rrs {
    /// Takes the aligned rows over (no V-length copies on the sampling path).
    fn new(p: Vec<f64>, q: Vec<f64>, wor: bool) -> Self {
        let m = p.iter().sum();
        let qm = q.iter().sum();
        Rrs { r: p, m, q, qm, wor }
    }

    /// min(1, p_i(x)/q_i(x)).
    fn accept_prob(&self, x: usize) -> f64 {
        let qx = self.q[x] / self.qm;
        if qx <= 0.0 || qx.is_nan() {
            return 0.0;
        }
        ((self.r[x] / self.m) / qx).min(1.0)
    }

    /// Removes x from the draft only (greedy: q' = q without the top tokens).
    fn drop_draft(&mut self, x: usize) {
        self.qm -= self.q[x];
        self.q[x] = 0.0;
        if self.qm <= 0.0 {
            self.qm = self.q.iter().sum();
        }
    }

    /// After rejecting x: p_{i+1} = norm((p_i − q_i)_+), then (without replacement) drop x from q.
    fn reject(&mut self, x: usize) {
        let (m, qm) = (self.m, self.qm);
        let mut s = 0.0;
        for (r, &q) in self.r.iter_mut().zip(&self.q) {
            let v = (*r / m - q / qm).max(0.0);
            *r = v;
            s += v;
        }
        if self.wor {
            self.drop_draft(x);
        }
        if s > 1e-300 {
            self.m = s;
        } else {
            // Σ(p_i − q_i)_+ = 0 means p_i = q_i: unreachable in exact arithmetic (the acceptance
            // would have been 1). Keep the limit: the next target equals the next draft.
            let q = &self.q;
            self.r.copy_from_slice(q);
            self.m = self.q.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        }
    }
}

/// The SpecHub rule on one node, as data shared by `sample` and `law`: the acceptance stages that
/// apply to the drawn pair, (child index, conditional acceptance probability) in order, then the
/// unnormalised residual (mass `m`) emitted when every stage rejects.
struct Hub {
    stages: Vec<(usize, f64)>,
    r: Vec<f64>,
    m: f64,
}

impl Drop for Hub {
    fn drop(&mut self) {
        super::pool::POOL64.give(std::mem::take(&mut self.r));
    }
}

impl Hub {
    /// `p`, `q`: aligned rows (taken over, reused as the residual); `children` = (x1, x2).
    fn new(mut p: Vec<f64>, q: Vec<f64>, children: &[usize]) -> Self {
        let (x1, x2) = (children[0], children[1]);
        // The hub is whichever child has the larger q, ties to the lower index (= lower token id):
        // the builder's argmax with ties to the lowest id is always one of the two children.
        let hub_second = q[x2] > q[x1] || (q[x2] == q[x1] && x2 < x1);
        let a = if hub_second { x2 } else { x1 };
        let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
        let (ip, iq) = (1.0 / sp, 1.0 / sq);
        let qa = q[a] * iq;
        let c = qa / (1.0 - qa);
        let mut stages = Vec::with_capacity(2);
        if hub_second {
            stages.push((0, ratio(p[x1] * ip, q[x1] * iq)));
        } else {
            let p1 = (p[x2] * ip - q[x2] * iq).max(0.0);
            stages.push((1, ratio(p1, c * q[x2] * iq)));
        }
        // One pass: both leftovers from the pre-update p, and p₂ = (p − q/(1 − q(a)))₊ off a.
        let pa = p[a] * ip;
        let (mut l_ia, mut l_ai, mut m) = (0.0, 0.0, 0.0);
        for (i, (pi, &qi)) in p.iter_mut().zip(&q).enumerate() {
            if i == a {
                continue;
            }
            let (pn, qn) = (*pi * ip, qi * iq);
            l_ia += (qn - pn).max(0.0);
            let p1 = (pn - qn).max(0.0);
            l_ai += (c * qn - p1).max(0.0);
            let p2 = (p1 - c * qn).max(0.0);
            *pi = p2;
            m += p2;
        }
        let mut pa_left = pa;
        let after_ai = (pa_left - l_ai).max(0.0);
        if !hub_second {
            stages.push((0, ratio(pa_left, l_ai)));
        }
        pa_left = after_ai;
        if hub_second {
            stages.push((1, ratio(pa_left, l_ia)));
        }
        pa_left = (pa_left - l_ia).max(0.0);
        p[a] = pa_left;
        m += pa_left;
        if m.is_nan() || m <= 1e-300 {
            // No residual mass: the last stage accepts with certainty in exact arithmetic, so
            // this is reached only through rounding; emit from q then (as `Rrs::reject` does).
            return Hub { stages, r: q, m: sq };
        }
        super::pool::POOL64.give(q);
        Hub { stages, r: p, m }
    }
}

fn child_for(children: &[usize], token_idx: usize) -> Option<usize> {
    children.iter().position(|&c| c == token_idx)
}

fn draw(w: &[f64], total: f64, rng: &mut Rng) -> usize {
    rng.categorical(w, total)
}

/// Samples the node outcome. `children` are aligned indices of the children tokens in draw
/// order (greedy: the deterministic top children, then the sampled one; spechub: (x1, x2)).
pub fn sample(verifier: Verifier, a: Aligned, children: &[usize], rng: &mut Rng) -> NodeOutcome {
    let Aligned { ids, p, q } = a;
    let a = Aligned { ids, p: Vec::new(), q: Vec::new() };
    match verifier {
        Verifier::Rrs | Verifier::RrsWor => {
            let mut st = Rrs::new(p, q, verifier == Verifier::RrsWor);
            for (k, &x) in children.iter().enumerate() {
                let acc = st.accept_prob(x);
                if rng.uniform() < acc {
                    return NodeOutcome { token: a.token(x), child: Some(k) };
                }
                st.reject(x);
            }
            let y = draw(&st.r, st.m, rng);
            NodeOutcome { token: a.token(y), child: child_for(children, y) }
        }
        Verifier::Greedy => {
            let mut st = Rrs::new(p, q, true);
            if let Some((&last, top)) = children.split_last() {
                for &t in top {
                    st.drop_draft(t);
                }
                if rng.uniform() < st.accept_prob(last) {
                    return NodeOutcome { token: a.token(last), child: Some(children.len() - 1) };
                }
                st.reject(last);
            }
            let y = draw(&st.r, st.m, rng);
            NodeOutcome { token: a.token(y), child: child_for(children, y) }
        }
        Verifier::SpecHub if children.len() == 2 => {
            let h = Hub::new(p, q, children);
            for &(k, acc) in &h.stages {
                if rng.uniform() < acc {
                    return NodeOutcome { token: a.token(children[k]), child: Some(k) };
                }
            }
            let y = draw(&h.r, h.m, rng);
            NodeOutcome { token: a.token(y), child: child_for(children, y) }
        }
        _ => {
            // match (and the bonus draw at a node without children): a plain sample of p.
            let st = Rrs::new(p, q, false);
            let y = draw(&st.r, st.m, rng);
            NodeOutcome { token: a.token(y), child: child_for(children, y) }
        }
    }
}

/// Explicit law of the node outcome: (outcome, probability) for every outcome with positive
/// probability. Same arithmetic as [`sample`].
pub fn law(verifier: Verifier, a: &Aligned, children: &[usize]) -> Vec<(NodeOutcome, f64)> {
    let mut out = Vec::new();
    let residual = |st: &Rrs, reach: f64, out: &mut Vec<(NodeOutcome, f64)>| {
        for (y, &r) in st.r.iter().enumerate() {
            if r > 0.0 && reach > 0.0 {
                out.push((NodeOutcome { token: a.token(y), child: child_for(children, y) }, reach * r / st.m));
            }
        }
    };
    match verifier {
        Verifier::Rrs | Verifier::RrsWor => {
            let mut st = Rrs::new(a.p.clone(), a.q.clone(), verifier == Verifier::RrsWor);
            let mut reach = 1.0;
            for (k, &x) in children.iter().enumerate() {
                let acc = st.accept_prob(x);
                if reach * acc > 0.0 {
                    out.push((NodeOutcome { token: a.token(x), child: Some(k) }, reach * acc));
                }
                reach *= 1.0 - acc;
                st.reject(x);
            }
            residual(&st, reach, &mut out);
        }
        Verifier::Greedy => {
            let mut st = Rrs::new(a.p.clone(), a.q.clone(), true);
            let mut reach = 1.0;
            if let Some((&last, top)) = children.split_last() {
                for &t in top {
                    st.drop_draft(t);
                }
                let acc = st.accept_prob(last);
                if acc > 0.0 {
                    out.push((NodeOutcome { token: a.token(last), child: Some(children.len() - 1) }, acc));
                }
                reach = 1.0 - acc;
                st.reject(last);
            }
            residual(&st, reach, &mut out);
        }
        Verifier::SpecHub if children.len() == 2 => {
            let h = Hub::new(a.p.clone(), a.q.clone(), children);
            let mut reach = 1.0;
            for &(k, acc) in &h.stages {
                if reach * acc > 0.0 {
                    out.push((NodeOutcome { token: a.token(children[k]), child: Some(k) }, reach * acc));
                }
                reach *= 1.0 - acc;
            }
            for (y, &r) in h.r.iter().enumerate() {
                if r > 0.0 && reach > 0.0 {
                    out.push((NodeOutcome { token: a.token(y), child: child_for(children, y) }, reach * r / h.m));
                }
            }
        }
        _ => {
            let st = Rrs::new(a.p.clone(), a.q.clone(), false);
            residual(&st, 1.0, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(p: &[f64], q: &[f64]) -> Aligned {
        Aligned { ids: None, p: p.to_vec(), q: q.to_vec() }
    }

    fn emitted(l: &[(NodeOutcome, f64)], v: usize) -> Vec<f64> {
        let mut e = vec![0.0; v];
        for (o, pr) in l {
            e[o.token as usize] += pr;
        }
        e
    }

    /// rsd.md §2.4: acceptance of K drafts without replacement on the toy pair, enumerating the
    /// draft tuples with their successive-sampling law.
    #[test]
    fn rrs_wor_matches_the_reference_acceptance_table() {
        let p = [0.4, 0.3, 0.2, 0.05, 0.05];
        let q = [0.05, 0.05, 0.2, 0.3, 0.4];
        let a = aligned(&p, &q);
        for (k, want_wor, want_iid) in [(1, 0.4, 0.4), (2, 0.4940, 0.4600), (3, 0.6435, 0.5140), (4, 0.95, 0.5626)] {
            for (scheme, v, want) in [
                (crate::Scheme::Wor, Verifier::RrsWor, want_wor),
                (crate::Scheme::Iid, Verifier::Rrs, want_iid),
            ] {
                let dl = crate::scheme_law(&q, k, scheme).unwrap();
                let (mut acc, mut out) = (0.0, vec![0.0; 5]);
                for r in 0..dl.len() {
                    let l = law(v, &a, dl.row(r));
                    acc += dl.probs[r] * l.iter().filter(|(o, _)| o.child.is_some()).map(|x| x.1).sum::<f64>();
                    for (t, e) in emitted(&l, 5).iter().enumerate() {
                        out[t] += dl.probs[r] * e;
                    }
                }
                assert!((acc - want).abs() < 1e-4, "k={k} {v:?}: {acc} vs {want}");
                for t in 0..5 {
                    assert!((out[t] - p[t]).abs() < 1e-14);
                }
            }
        }
    }

    /// Negative control: skipping the draft renormalisation (treating wor draws as iid) is biased.
    #[test]
    fn rrs_without_renormalisation_on_wor_drafts_is_biased() {
        let p = [0.4, 0.3, 0.2, 0.05, 0.05];
        let q = [0.05, 0.05, 0.2, 0.3, 0.4];
        let a = aligned(&p, &q);
        let dl = crate::scheme_law(&q, 3, crate::Scheme::Wor).unwrap();
        let mut out = vec![0.0; 5];
        for r in 0..dl.len() {
            for (t, e) in emitted(&law(Verifier::Rrs, &a, dl.row(r)), 5).iter().enumerate() {
                out[t] += dl.probs[r] * e;
            }
        }
        let tv: f64 = out.iter().zip(&p).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0;
        assert!(tv > 1e-3, "tv {tv}");
    }

    /// SpecHub drafts: the SpecHub rule is exact with acceptance p(a) + Σ min(p, q') (mdsd.md §5),
    /// `sample` agrees with `law`; negative controls: RRS without replacement on the same drafts,
    /// and the SpecHub rule with the two pair types swapped, are biased.
    #[test]
    fn spechub_is_exact_and_the_controls_are_biased() {
        let p = [0.1, 0.45, 0.15, 0.3];
        let q = [0.4, 0.3, 0.2, 0.1];
        let a = aligned(&p, &q);
        let dl = crate::scheme_law(&q, 2, crate::Scheme::SpecHub).unwrap();
        let run = |v: Verifier, swap: bool| {
            let (mut out, mut acc) = (vec![0.0; 4], 0.0);
            for r in 0..dl.len() {
                let mut ch = dl.row(r).to_vec();
                if swap {
                    ch.reverse();
                }
                for (o, pr) in law(v, &a, &ch) {
                    out[o.token as usize] += dl.probs[r] * pr;
                    acc += if o.child.is_some() { dl.probs[r] * pr } else { 0.0 };
                }
            }
            (out, acc)
        };
        let (out, acc) = run(Verifier::SpecHub, false);
        for t in 0..4 {
            assert!((out[t] - p[t]).abs() < 1e-14, "{out:?}");
        }
        // Hub 0, q' = q without the hub renormalised.
        let want: f64 = p[0] + (1..4).map(|i| p[i].min(q[i] / 0.6)).sum::<f64>();
        assert!((acc - want).abs() < 1e-14, "{acc} vs {want}");
        for (v, swap) in [(Verifier::RrsWor, false), (Verifier::SpecHub, true)] {
            let (out, _) = run(v, swap);
            let tv: f64 = out.iter().zip(&p).map(|(x, y)| (x - y).abs()).sum::<f64>() / 2.0;
            assert!(tv > 1e-3, "{v:?} swap={swap}: tv {tv}");
        }
        for ch in [[2usize, 0], [0, 3]] {
            let l = law(Verifier::SpecHub, &a, &ch);
            let mut rng = Rng::new(8);
            let n = 100_000;
            let mut counts = std::collections::HashMap::new();
            for _ in 0..n {
                let o = sample(Verifier::SpecHub, aligned(&p, &q), &ch, &mut rng);
                *counts.entry((o.token, o.child)).or_insert(0usize) += 1;
            }
            for (o, pr) in &l {
                let f = *counts.get(&(o.token, o.child)).unwrap_or(&0) as f64 / n as f64;
                assert!((f - pr).abs() < 5.0 * (pr * (1.0 - pr) / n as f64).sqrt() + 1e-9, "{ch:?} {o:?}");
            }
            assert_eq!(counts.len(), l.len());
        }
    }

    #[test]
    fn greedy_is_exact_and_sampling_agrees_with_the_law() {
        let p = [0.1, 0.5, 0.15, 0.25];
        let q = [0.4, 0.3, 0.2, 0.1];
        let a = aligned(&p, &q);
        let dl = crate::scheme_law(&q, 3, crate::Scheme::Greedy).unwrap();
        let mut out = vec![0.0; 4];
        for r in 0..dl.len() {
            for (t, e) in emitted(&law(Verifier::Greedy, &a, dl.row(r)), 4).iter().enumerate() {
                out[t] += dl.probs[r] * e;
            }
        }
        for t in 0..4 {
            assert!((out[t] - p[t]).abs() < 1e-14);
        }
        // Monte Carlo of `sample` against `law` for one fixed tuple.
        let ch = [0usize, 1, 3];
        let l = law(Verifier::Greedy, &a, &ch);
        let mut rng = Rng::new(3);
        let n = 100_000;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..n {
            let o = sample(Verifier::Greedy, aligned(&p, &q), &ch, &mut rng);
            *counts.entry((o.token, o.child)).or_insert(0usize) += 1;
        }
        for (o, pr) in &l {
            let f = *counts.get(&(o.token, o.child)).unwrap_or(&0) as f64 / n as f64;
            assert!((f - pr).abs() < 5.0 * (pr * (1.0 - pr) / n as f64).sqrt() + 1e-9);
        }
        assert_eq!(counts.values().sum::<usize>(), n);
        assert_eq!(counts.len(), l.len());
    }
}
