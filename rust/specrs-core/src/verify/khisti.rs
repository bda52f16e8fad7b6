//! Khisti et al.'s two-step verifier (ICLR 2025, "Multi-Draft Speculative Sampling: Canonical
//! Decomposition and Theoretical Limits"; docs/theory.md §13) for n = 2 i.i.d. drafts, with the
//! "largest p/q" importance-sampling selection.
//!
//! 1. **Select** one of the two drafts: the one with the larger r = p/q (the first draft on a
//!    tie, in particular when x₁ = x₂). Its law is, with M_<(r) and M_≤(r) the q-mass of the
//!    tokens with ratio below / at most r (normalised q),
//!
//!    ```text
//!    p_I(v) = P(max-ratio draft = v) = q(v)·(M_<(r(v)) + M_≤(r(v))),
//!    ```
//!
//!    because the selected token is v when one draft is v and the other has a smaller ratio
//!    (2·q(v)·M_<), or both have ratio r(v) and the first is v (q(v)·(M_≤ − M_<), the tie rule).
//! 2. **Speculative sampling** from p_I to p: accept the selected token with min(1, p/p_I), else
//!    sample norm((p − p_I)₊). Lossless for any selection rule whose p_I is exact (it is SD).
//!
//! Acceptance (P(output ∈ drafts), as for every verifier): Σ_v min(p(v), p_I(v)) plus the
//! probability that the residual token is the other draft ([`acceptance`]). It is optimal (= α* of
//! two i.i.d. drafts) on many rows but not all; the optimal selection needs a transport plan (the
//! `optimal` verifier attains α* for the iid scheme). For n ≥ 3 the largest-ratio selection is
//! still lossless with p_I(v) = q(v)·Σ_{j<n} M_<^j M_≤^{n−1−j}, but its acceptance falls below a
//! single draft's at large n (docs/theory.md §13), so the registry offers n = 2 only.
//!
//! The ratio is p/q of the inputs as given (∞ for q = 0), so the selection and p_I use the very
//! same order; M_< and M_≤ are sums of non-negative terms (the acceptance test: one pass; the
//! residual: a sort of the ratios and prefix sums, O(V log V)).

use super::source::Source;
use super::{kernel, ratio, Ctx, Outcome};
use crate::Real;

/// The ordering key of a token: p/q, ∞ where q = 0 (never drafted; its p_I is 0).
#[inline(always)]
fn key(x: f64, y: f64) -> f64 {
    if y > 0.0 {
        x / y
    } else {
        f64::INFINITY
    }
}

/// The selection law p_I as a function of a token's (p, q) values: the ratios sorted ascending
/// with the prefix sums of q (raw, as given).
pub(crate) struct SelectionLaw {
    keys: Vec<f64>,
    /// cum[i] = Σ q over the i smallest keys (sums of non-negative terms).
    cum: Vec<f64>,
    /// 1/Σq.
    iq: f64,
}

impl SelectionLaw {
    pub(crate) fn new<T: Real>(p: &[T], q: &[T], iq: f64) -> Self {
        let mut kq: Vec<(f64, f64)> =
            p.iter().zip(q).filter(|(_, y)| y.to_f64() > 0.0).map(|(x, y)| (key(x.to_f64(), y.to_f64()), y.to_f64())).collect();
        kq.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut cum = Vec::with_capacity(kq.len() + 1);
        let mut s = 0.0;
        cum.push(0.0);
        for &(_, y) in &kq {
            s += y;
            cum.push(s);
        }
        SelectionLaw { keys: kq.into_iter().map(|(k, _)| k).collect(), cum, iq }
    }

    /// p_I of a token with raw values (x, y), normalised.
    #[inline]
    pub(crate) fn of(&self, x: f64, y: f64) -> f64 {
        if y <= 0.0 || y.is_nan() {
            return 0.0;
        }
        let k = key(x, y);
        let below = self.cum[self.keys.partition_point(|&v| v < k)];
        let upto = self.cum[self.keys.partition_point(|&v| v <= k)];
        (y * self.iq) * ((below + upto) * self.iq)
    }
}

pub(crate) fn khisti<T: Real, S: Source>(cx: &Ctx<'_, T>, src: &mut S) -> Outcome {
    let (p, q) = (cx.p, cx.q);
    let (ip, iq) = (1.0 / cx.sums.p, 1.0 / cx.sums.q);
    let (x1, x2) = (cx.drafts[0], cx.drafts[1]);
    let k = |i: usize| key(p[i].to_f64(), q[i].to_f64());
    let (j, y0) = if k(x2) > k(x1) { (1, x2) } else { (0, x1) };
    let r0 = k(y0);
    // M_< and M_≤ at the selected ratio in one pass (sums of what they hold, no difference).
    let [below, upto] = kernel::sums2(p, q, |x, y| {
        let kk = key(x, y);
        [if kk < r0 { y } else { 0.0 }, if kk <= r0 { y } else { 0.0 }]
    });
    let p_sel = (q[y0].to_f64() * iq) * ((below + upto) * iq);
    if src.coin(ratio(p[y0].to_f64() * ip, p_sel)) {
        return Outcome { token: y0, accepted: Some(j) };
    }
    let law = SelectionLaw::new(p, q, iq);
    let w = |x: f64, y: f64| (x * ip - law.of(x, y)).max(0.0);
    let total = kernel::sum2(p, q, w);
    cx.residual(src, total, &[], w)
}

/// Acceptance P(output ∈ drafts) on validated inputs (`sp`, `sq` = 1/Σp, 1/Σq): the selected
/// draft accepted, Σ_v min(p(v), p_I(v)), plus the residual token being the other draft. With
/// R = (p − p_I)₊/Z the residual law and rej(y) = (p_I(y) − p(y))₊/p_I(y), the other draft z of a
/// selected y has r(z) < r(y) (both orders: 2q(y)q(z)) or r(z) = r(y) (one order), so the second
/// part is Σ_y q(y)·rej(y)·(G(r_y) + H(r_y)) with G, H = Σ q·R over the ratios below / at most r_y
/// (y's own term vanishes: rej(y) > 0 ⇒ R(y) = 0).
pub(crate) fn acceptance<T: Real>(p: &[T], q: &[T], sp: f64, sq: f64) -> f64 {
    let law = SelectionLaw::new(p, q, sq);
    let accepted = kernel::sum2(p, q, |x, y| (x * sp).min(law.of(x, y)));
    let z = kernel::sum2(p, q, |x, y| (x * sp - law.of(x, y)).max(0.0));
    let mut extra = 0.0;
    if z > 0.0 {
        // (key, q, p_I, p) of the tokens that can be drafted, in key order.
        let mut rows: Vec<(f64, f64, f64, f64)> = p
            .iter()
            .zip(q)
            .filter(|(_, y)| y.to_f64() > 0.0)
            .map(|(x, y)| {
                let (x, y) = (x.to_f64(), y.to_f64());
                (key(x, y), y * sq, law.of(x, y), x * sp)
            })
            .collect();
        rows.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut below = 0.0; // G: Σ q·R over the earlier ratio groups
        let mut i = 0;
        while i < rows.len() {
            let j = i + rows[i..].partition_point(|r| r.0 == rows[i].0);
            let group: f64 = rows[i..j].iter().map(|&(_, qn, pi, pn)| qn * ((pn - pi).max(0.0) / z)).sum();
            let upto = below + group; // H
            for &(_, qn, pi, pn) in &rows[i..j] {
                if pi > pn {
                    extra += qn * ((pi - pn) / pi) * (below + upto);
                }
            }
            below = upto;
            i = j;
        }
    }
    (accepted + extra).clamp(0.0, 1.0)
}
