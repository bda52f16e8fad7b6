//! Khisti et al.'s two-step verifier (ICLR 2025, "Multi-Draft Speculative Sampling: Canonical
//! Decomposition and Theoretical Limits"; docs/theory.md §13) for n i.i.d. drafts, with an
//! **optimal** selection rule: it attains α* of the i.i.d. scheme.
//!
//! 1. **Select** one draft. Every token v has a law μ_v of *keys*, laid out on [0, 1] by
//!    [`Layout`]; each draft draws its key from its token's law, independently, and the draft
//!    with the largest key is selected. The selected token's law is
//!
//!    ```text
//!    p_I(v) = n·q(v)·∫ G(t)^(n−1) dμ_v(t),      G(t) = Σ_w q(w)·μ_w([0, t]),
//!    ```
//!
//!    (draft j is v with its key at t, and the n − 1 others have smaller keys).
//! 2. **Speculative sampling** from p_I to p: accept the selected token with min(1, p/p_I), else
//!    sample norm((p − p_I)₊). Lossless for any layout, because p_I is computed from the very
//!    layout the selection uses.
//!
//! The layout is what makes the rule optimal (docs/theory.md §13.2): H* is the minimising
//! prefix of α* = 1 + min(0, min_H [p(H) − q(H)^n]) (tokens in ascending p/q), its tokens get
//! the keys [0, a], a = q(H*), the others [a, 1]; inside each part a target p_I (≤ p above a,
//! ≥ p below it, from a one-pass recursion) is realised by the *left-curtain* construction: in
//! ascending order of target p_I/q, each token takes the part of the keys still free that lies
//! between two cut points chosen so that its mass is q(v) and its value is its target. Then
//! Σ min(p, p_I) = α*. A token's law ends up as a few uniform pieces ("fragments").
//!
//! Only the order of the fragments and their lengths enter p_I and the selection, never key
//! positions: G at a fragment is the sum of the (normalised) masses before it, and every power
//! difference y^k − x^k is formed as (y − x)·Σ x^i y^(k−1−i) from the piece's own mass, so
//! tokens of mass 1e-300 keep their relative accuracy.

use super::source::Source;
use super::{ratio, Ctx, Outcome};
use crate::bounds::prep::pown;
use crate::Real;

/// y^k − x^k for 0 ≤ x ≤ y given d = y − x (computed by the caller from masses, not as y − x):
/// d·Σ_{i<k} x^i y^(k−1−i), a sum of non-negative terms.
#[inline]
fn pow_diff(y: f64, x: f64, d: f64, k: usize) -> f64 {
    let mut acc = 0.0;
    let mut xi = 1.0;
    for i in 0..k {
        acc += xi * pown(y, k - 1 - i);
        xi *= x;
    }
    d * acc
}

/// The key layout of one row and the selection law p_I it induces.
pub(crate) struct Layout {
    /// p_I, normalised, indexed by token (0 where q = 0).
    pub r: Vec<f64>,
    /// Fragments in key order: (token, mass).
    frags: Vec<(usize, f64)>,
    /// CSR over tokens: `own[own_at[v]..own_at[v + 1]]` = (fragment index, token mass before it).
    own_at: Vec<usize>,
    own: Vec<(usize, f64)>,
    /// Σ of each token's fragment masses (≈ q(v); the laws μ_v are normalised by it).
    mass: Vec<f64>,
}

/// The still-free keys of one part, as fragments (start, length, value) in key order, with
/// prefix sums of mass and value (∫ n t^(n−1) dt) for the curtain's cut-point search.
struct Free {
    frags: Vec<(f64, f64, f64)>,
    cm: Vec<f64>,
    cv: Vec<f64>,
    /// The part's upper end (where a token goes if rounding has left no free keys).
    end: f64,
    n: usize,
}

impl Free {
    fn new(lo: f64, len: f64, n: usize) -> Self {
        let mut f = Free { frags: vec![(lo, len, pow_diff(lo + len, lo, len, n))], cm: vec![0.0], cv: vec![0.0], end: lo + len, n };
        f.index(0);
        f
    }

    /// Prefix sums from fragment `from` on (the ones before are unchanged).
    fn index(&mut self, from: usize) {
        self.cm.truncate(from + 1);
        self.cv.truncate(from + 1);
        let (mut m, mut v) = (self.cm[from], self.cv[from]);
        for &(_, l, w) in &self.frags[from..] {
            m += l;
            v += w;
            self.cm.push(m);
            self.cv.push(v);
        }
    }

    fn total(&self) -> f64 {
        self.cm[self.frags.len()]
    }

    /// (fragment, offset into it) at mass coordinate u (the fragments are not empty).
    fn locate(&self, u: f64) -> (usize, f64) {
        let k = self.frags.len();
        let i = self.cm[1..].partition_point(|&c| c <= u).min(k - 1);
        (i, (u - self.cm[i]).clamp(0.0, self.frags[i].1))
    }

    /// Key position at mass coordinate u.
    fn position(&self, u: f64) -> f64 {
        let (i, o) = self.locate(u);
        self.frags[i].0 + o
    }

    /// Mass coordinate of key position t (the free mass below t).
    fn coordinate(&self, t: f64) -> f64 {
        let i = self.frags.partition_point(|f| f.0 + f.1 <= t);
        if i == self.frags.len() {
            return self.total();
        }
        let (s, l, _) = self.frags[i];
        self.cm[i] + (t - s).clamp(0.0, l)
    }

    /// Value of the free keys between mass coordinates u and u + m.
    fn value(&self, u: f64, m: f64) -> f64 {
        let n = self.n;
        let (i, oi) = self.locate(u);
        let (j, oj) = self.locate(u + m);
        let (si, li, _) = self.frags[i];
        if i == j {
            let w = m.min(li - oi);
            return pow_diff(si + oi + w, si + oi, w, n);
        }
        let sj = self.frags[j].0;
        let head = pow_diff(si + li, si + oi, li - oi, n);
        let tail = pow_diff(sj + oj, sj, oj, n);
        head + (self.cv[j] - self.cv[i + 1]).max(0.0) + tail
    }

    /// The start u ∈ [0, total − m] of the mass-m window whose value is `target` (the value grows
    /// with u): a Newton step from the position where the key density n t^(n−1) equals the
    /// window's mean target/m, kept inside a shrinking bracket.
    fn window(&self, m: f64, target: f64) -> f64 {
        let n = self.n;
        let span = (self.total() - m).max(0.0);
        if n == 1 || span == 0.0 {
            return 0.0;
        }
        let density = |t: f64| n as f64 * pown(t, n - 1);
        let mean = target / m;
        let t0 = (mean / n as f64).powf(1.0 / (n - 1) as f64);
        let (mut lo, mut hi) = (0.0f64, span);
        let mut u = (self.coordinate(t0) - 0.5 * m).clamp(0.0, span);
        // Stops at 1e-13 of the target: a window's value error moves the acceptance by at most as
        // much, far below what any caller resolves, and rounding may not allow better.
        for _ in 0..100 {
            let w = self.value(u, m);
            if w < target {
                lo = u;
            } else {
                hi = u;
            }
            if (w - target).abs() <= 1e-13 * target || hi - lo <= 1e-15 * span {
                break;
            }
            let slope = density(self.position(u + m)) - density(self.position(u));
            let next = if slope > 0.0 { u + (target - w) / slope } else { f64::NAN };
            let step = if next > lo && next < hi { next } else { 0.5 * (lo + hi) };
            if (step - u).abs() <= 1e-16 * span {
                break;
            }
            u = step;
        }
        u
    }

    /// Takes the mass-m window starting at mass coordinate u: returns its pieces, keeps the rest.
    fn take(&mut self, u: f64, m: f64) -> Vec<(f64, f64)> {
        let n = self.n;
        let piece = |s: f64, l: f64| (s, l, pow_diff(s + l, s, l, n));
        let (i, oi) = self.locate(u);
        let (j, oj) = self.locate(u + m);
        let (si, li, _) = self.frags[i];
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(2);
        if oi > 0.0 {
            kept.push(piece(si, oi));
        }
        if i == j {
            let w = m.min(li - oi);
            taken.push((si + oi, w));
            if li - oi - w > 0.0 {
                kept.push(piece(si + oi + w, li - oi - w));
            }
        } else {
            if li - oi > 0.0 {
                taken.push((si + oi, li - oi));
            }
            taken.extend(self.frags[i + 1..j].iter().map(|f| (f.0, f.1)));
            let (sj, lj, _) = self.frags[j];
            if oj > 0.0 {
                taken.push((sj, oj));
            }
            if lj - oj > 0.0 {
                kept.push(piece(sj + oj, lj - oj));
            }
        }
        self.frags.splice(i..=j, kept);
        if self.frags.is_empty() {
            self.cm.truncate(1);
            self.cv.truncate(1);
        } else {
            self.index(i.min(self.frags.len() - 1));
        }
        taken
    }
}

impl Layout {
    /// The layout for n i.i.d. drafts from q against p (raw rows; `ip`, `iq` = 1/Σp, 1/Σq).
    pub(crate) fn new<T: Real>(p: &[T], q: &[T], n: usize, ip: f64, iq: f64) -> Self {
        // Drafted tokens (q > 0) in ascending p/q, ties by id: (id, p, q) normalised.
        let mut keyed: Vec<(f64, usize)> =
            p.iter().zip(q).enumerate().filter(|(_, (_, y))| y.to_f64() > 0.0).map(|(i, (x, y))| (x.to_f64() / y.to_f64(), i)).collect();
        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let items: Vec<(usize, f64, f64)> = keyed.iter().map(|&(_, i)| (i, p[i].to_f64() * ip, q[i].to_f64() * iq)).collect();
        // H*: the prefix minimising p(H) − q(H)^n (0 for the empty prefix).
        let (mut best, mut cut, mut cp, mut cq) = (0.0f64, 0usize, 0.0f64, 0.0f64);
        for (k, &(_, x, y)) in items.iter().enumerate() {
            cp += x;
            cq += y;
            let f = cp - pown(cq, n);
            if f < best {
                best = f;
                cut = k + 1;
            }
        }
        let (low, high) = items.split_at(cut);
        let a: f64 = low.iter().map(|t| t.2).sum();
        let hi_mass: f64 = high.iter().map(|t| t.2).sum();

        let mut pieces: Vec<(f64, usize, f64)> = Vec::new(); // (start, token, mass)
                                                             // Below a: p_I ≥ p. R_j = max(X_j^n, R_{j−1} + p_j), the least cumulative law that is ≥ p
                                                             // token by token and ≥ the bottom-most placement X^n.
        if !low.is_empty() {
            let mut targets = Vec::with_capacity(low.len());
            let (mut x, mut prev) = (0.0f64, 0.0f64);
            for &(_, pj, qj) in low {
                let f = pown(x + qj, n);
                x += qj;
                let rj = f.max(prev + pj);
                targets.push((rj - prev).max(0.0));
                prev = rj;
            }
            curtain(low, &targets, Free::new(0.0, a, n), &mut pieces);
        }
        // Above a: p_I ≤ p. Backwards, R_{j−1} = max(f_{j−1}, R_j − p_j) from R_m = f_m, with
        // f_j = (a + x_j)^n − a^n the bottom-most placement: the least law that is ≤ p token by token.
        if !high.is_empty() {
            let m = high.len();
            let mut f = Vec::with_capacity(m + 1);
            f.push(0.0);
            let mut x = 0.0f64;
            for &(_, _, qj) in high {
                x += qj;
                f.push(pow_diff(a + x, a, x, n));
            }
            let mut cum = vec![0.0f64; m + 1];
            cum[m] = f[m];
            for j in (1..m).rev() {
                cum[j] = f[j].max(cum[j + 1] - high[j].1);
            }
            let targets: Vec<f64> = (0..m).map(|j| (cum[j + 1] - cum[j]).max(0.0)).collect();
            curtain(high, &targets, Free::new(a, hi_mass, n), &mut pieces);
        }
        Self::from_pieces(pieces, p.len(), n, iq, q)
    }

    fn from_pieces<T: Real>(pieces: Vec<(f64, usize, f64)>, v: usize, n: usize, iq: f64, q: &[T]) -> Self {
        // Key order; pieces at one position keep the order they were made in (the low part first).
        let mut keyed: Vec<(f64, usize)> = pieces.iter().enumerate().map(|(k, x)| (x.0, k)).collect();
        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let pieces: Vec<(f64, usize, f64)> = keyed.iter().map(|&(_, k)| pieces[k]).collect();
        let mut mass = vec![0.0f64; v];
        let mut count = vec![0usize; v + 1];
        for &(_, t, m) in &pieces {
            mass[t] += m;
            count[t + 1] += 1;
        }
        for t in 0..v {
            count[t + 1] += count[t];
        }
        let own_at = count.clone();
        let mut fill = count;
        let mut own = vec![(0usize, 0.0f64); pieces.len()];
        let mut before = vec![0.0f64; v];
        let mut r = vec![0.0f64; v];
        let mut g = 0.0f64;
        let frags: Vec<(usize, f64)> = pieces.iter().map(|&(_, t, m)| (t, m)).collect();
        for (k, &(t, m)) in frags.iter().enumerate() {
            own[fill[t]] = (k, before[t]);
            fill[t] += 1;
            before[t] += m;
            // This fragment's share of G: q(t)·m/mass(t); p_I gains G_end^n − G_start^n.
            let w = if mass[t] > 0.0 { q[t].to_f64() * iq * (m / mass[t]) } else { 0.0 };
            r[t] += pow_diff(g + w, g, w, n);
            g += w;
        }
        Layout { r, frags, own_at, own, mass }
    }

    /// F_w just before fragment k: the share of w's key law at fragments before k.
    fn cdf_before(&self, w: usize, k: usize) -> f64 {
        let mine = &self.own[self.own_at[w]..self.own_at[w + 1]];
        let i = mine.partition_point(|&(f, _)| f < k);
        if i == mine.len() {
            1.0
        } else {
            mine[i].1 / self.mass[w]
        }
    }

    /// P(draft j has the largest key | the drafted tokens).
    pub(crate) fn wins(&self, drafts: &[usize], j: usize) -> f64 {
        let v = drafts[j];
        let same = drafts.iter().enumerate().filter(|&(i, &x)| i != j && x == v).count();
        let lv = self.mass[v];
        let mut total = 0.0;
        for &(k, before) in &self.own[self.own_at[v]..self.own_at[v + 1]] {
            let mut others = 1.0;
            for (i, &w) in drafts.iter().enumerate() {
                if i != j && w != v {
                    others *= self.cdf_before(w, k);
                }
            }
            if others == 0.0 {
                continue;
            }
            // (1/L)∫_0^m ((b + τ)/L)^c dτ = [((b + m)/L)^(c+1) − (b/L)^(c+1)]/(c + 1)
            let m = self.frags[k].1;
            total += others * pow_diff((before + m) / lv, before / lv, m / lv, same + 1) / (same + 1) as f64;
        }
        total
    }

    /// Σ_v min(p(v), p_I(v)) (normalised p): α* of the i.i.d. scheme up to rounding. (P(output ∈
    /// drafts) also counts a residual token that equals another draft; at the optimum that adds
    /// nothing, since no lossless verifier exceeds α*. `verifier_acceptance` reports α* itself.)
    #[cfg(test)]
    pub(crate) fn overlap<T: Real>(&self, p: &[T], ip: f64) -> f64 {
        p.iter().zip(&self.r).map(|(x, &r)| (x.to_f64() * ip).min(r)).sum()
    }

    #[cfg(test)]
    pub(crate) fn fragments(&self) -> usize {
        self.frags.len()
    }
}

/// The left-curtain construction over one part: tokens in ascending target/q, each takes the
/// free window of mass q(v) whose value is its target (the window slides up as its value grows);
/// the last token takes what is left.
fn curtain(items: &[(usize, f64, f64)], targets: &[f64], mut free: Free, out: &mut Vec<(f64, usize, f64)>) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| (targets[a] / items[a].2).total_cmp(&(targets[b] / items[b].2)).then(a.cmp(&b)));
    for (pos, &i) in order.iter().enumerate() {
        let (t, _, m) = items[i];
        if free.frags.is_empty() || free.total() <= 0.0 {
            // Rounding has used up the part: the token still needs a key law of its own. Only
            // the order and the masses of fragments matter, so it goes last with its own mass.
            out.push((free.end, t, m));
            continue;
        }
        if pos + 1 == order.len() {
            out.extend(free.frags.iter().map(|&(s, l, _)| (s, t, l)));
            return;
        }
        let u = free.window(m, targets[i]);
        let at = free.position(u);
        let pieces = free.take(u, m);
        if pieces.iter().all(|&(_, l)| l <= 0.0) {
            out.push((at, t, m)); // a window rounded to nothing: the token keeps its own mass there
        } else {
            out.extend(pieces.into_iter().filter(|&(_, l)| l > 0.0).map(|(s, l)| (s, t, l)));
        }
    }
}

/// The verifier: select by the layout, then speculative sampling from p_I to p. The selection
/// and the acceptance test are folded into one coin per draft: draft j is emitted with
/// probability β_j·min(1, p/p_I)(x_j); otherwise the residual norm((p − p_I)₊) is sampled.
pub(crate) fn khisti<T: Real, S: Source>(cx: &Ctx<'_, T>, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let (ip, iq) = (1.0 / cx.sums.p, 1.0 / cx.sums.q);
    let n = cx.drafts.len();
    let law = Layout::new(p, q, n, ip, iq);
    // Per draft: (emitted, rejected) = β·a and β·(p_I − p)₊/p_I, sums of non-negative parts.
    let parts: Vec<(f64, f64)> = (0..n)
        .map(|j| {
            let (x, beta) = (cx.drafts[j], law.wins(cx.drafts, j));
            let (pj, rj) = (p[x].to_f64() * ip, law.r[x]);
            let a = ratio(pj, rj);
            let rej = if rj > 0.0 { (rj - pj).max(0.0) / rj } else { 0.0 };
            (beta * a, beta * rej)
        })
        .collect();
    let rejected: f64 = parts.iter().map(|x| x.1).sum();
    let mut left: f64 = parts.iter().map(|x| x.0).sum::<f64>() + rejected;
    for (j, &(emit, _)) in parts.iter().enumerate() {
        if emit > 0.0 && src.coin(emit / left) {
            return Outcome { token: cx.drafts[j], accepted: cx.label(cx.drafts[j]) };
        }
        left = parts[j + 1..].iter().map(|x| x.0).sum::<f64>() + rejected;
    }
    let resid: Vec<f64> = p.iter().zip(&law.r).map(|(x, &r)| (x.to_f64() * ip - r).max(0.0)).collect();
    let total: f64 = resid.iter().sum();
    let token = if total > 0.0 { src.pick(&resid, &resid, total, &[], |x, _| x) } else { src.pick(p, q, cx.sums.p, &[], |x, _| x) };
    Outcome { token, accepted: cx.label(token) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    /// A softmax row of Gaussian logits with spread `s`, and a draft row that perturbs them.
    fn rows(rng: &mut Rng, v: usize, s: f64, noise: f64) -> (Vec<f64>, Vec<f64>) {
        let mut gauss = || {
            let (u1, u2) = (rng.uniform().max(1e-300), rng.uniform());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let z: Vec<f64> = (0..v).map(|_| s * gauss()).collect();
        let zq: Vec<f64> = z.iter().map(|x| x + noise * gauss()).collect();
        let soft = |z: &[f64]| {
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|x| (x - m).exp()).collect();
            let t: f64 = e.iter().sum();
            e.iter().map(|x| x / t).collect::<Vec<f64>>()
        };
        (soft(&z), soft(&zq))
    }

    #[test]
    fn attains_alpha_star_at_large_vocabularies() {
        let mut rng = Rng::new(13);
        for &(v, s, noise) in &[(3000usize, 3.0, 1.0), (3000, 1.0, 0.5), (20_000, 2.5, 1.5), (152_064, 2.5, 1.0)] {
            let (p, q) = rows(&mut rng, v, s, noise);
            for n in [2usize, 3, 4, 8] {
                let law = Layout::new(&p, &q, n, 1.0, 1.0);
                let star = crate::bounds::iid::value(&p, &q, n, 1.0, 1.0);
                let got = law.overlap(&p, 1.0);
                assert!((got - star).abs() <= 1e-9, "V={v} n={n}: {got} vs α* {star}");
                let total: f64 = law.r.iter().sum();
                assert!((total - 1.0).abs() <= 1e-12, "V={v} n={n}: Σ p_I = {total}");
                // A few pieces per token: the layout's size stays O(V).
                assert!(law.fragments() <= 4 * v, "V={v} n={n}: {} fragments", law.fragments());
            }
        }
    }

    #[test]
    fn the_selection_probabilities_sum_to_one() {
        let mut rng = Rng::new(5);
        let (p, q) = rows(&mut rng, 400, 2.0, 1.0);
        let law = Layout::new(&p, &q, 3, 1.0, 1.0);
        for _ in 0..200 {
            let d: Vec<usize> = (0..3).map(|_| (rng.next_u64() % 400) as usize).collect();
            let s: f64 = (0..3).map(|j| law.wins(&d, j)).sum();
            assert!((s - 1.0).abs() <= 1e-12, "drafts {d:?}: Σ β = {s}");
        }
    }
}
