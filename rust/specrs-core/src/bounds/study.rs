//! Every bound and verifier acceptance of one (p, q) row for several n at once: the acceptance
//! study (docs/results.md, "Acceptance study") needs α* of the iid, wor, cp, greedy and spechub
//! laws and the acceptance of RRS, K-SEQ and RRS-wor for n ∈ {2, 3, 4, 6, 8} on thousands of
//! V = 49,152 rows. Calling the single-n functions would sort each row and run each scan once per
//! (scheme, n); here one q/p sort serves every scheme and n, and each scheme runs one pass for all
//! n ([`super::iid::values_sorted`], [`super::wor::values`], [`super::cp::values`],
//! [`super::greedy::values`]). RRS and K-SEQ run the verifiers' own recurrence and root rule
//! ([`rrs::acceptances`], [`kseq::root`]) with N(a) = Σ(p − a q)_+ and K-SEQ's masses evaluated
//! on the prefix sums of [`rrs_wor::Curve`] in O(log V) instead of O(V).
//!
//! Every value is the same quantity as the single-n call (tests compare them); cells that are not
//! defined for the row (n > |supp q| for the distinct-draft laws, spechub with n ≠ 2) are NaN.

use super::prep::{self, Sorted};
use super::verifiers::rrs_wor_acceptances;
use super::{cp, greedy, iid, rrs_wor, wor, MonteCarlo};
use crate::verify::{kseq, rrs};
use crate::{validate, Error, Real, Result};

/// The columns of a study row, in order (α* of a draft law, or a verifier's exact acceptance).
pub const STUDY_COLUMNS: [&str; 8] = ["alpha_iid", "alpha_wor", "alpha_cp", "alpha_greedy", "alpha_spechub", "rrs", "kseq", "rrs_wor"];
/// Number of columns per n.
pub const COLUMNS: usize = STUDY_COLUMNS.len();
const RRS_WOR: usize = 7;

/// The study of one row: `values[i * COLUMNS + c]` is column c of `ns[i]`; RRS-wor's standard
/// error (0 when exact) and exactness per n.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyRow {
    pub values: Vec<f64>,
    pub rrs_wor_stderr: Vec<f64>,
    pub rrs_wor_exact: Vec<bool>,
}

/// The study of one row (p, q) for every n in `ns` (each ≥ 1). RRS-wor is exact when its
/// enumeration fits `mc.exact_nodes`, else estimated from the stream (mc.seed, row).
pub fn study_row<T: Real>(p: &[T], q: &[T], ns: &[usize], mc: &MonteCarlo, row: u64) -> Result<StudyRow> {
    let (ps, qs) = validate::pair(p, q)?;
    for &n in ns {
        validate::positive_n("ns", n)?;
    }
    let (sp, sq) = (1.0 / ps.sum, 1.0 / qs.sum);
    let support = qs.positive;
    let pf: Vec<f64> = p.iter().map(|x| x.to_f64() * sp).collect();
    let qf: Vec<f64> = q.iter().map(|x| x.to_f64() * sq).collect();
    let curve = rrs_wor::Curve::new(&pf, &qf);
    // One sort serves every scheme: the curve's p/q order is the prefix scan's.
    let sorted: Sorted = curve.scan_order().unwrap_or_else(|| prep::sorted(&pf, &qf, 1.0, 1.0));
    let overlap = prep::overlap(&pf, &qf, 1.0, 1.0);

    // The distinct-draft laws (wor, cp, greedy) need n ≤ |supp q|.
    let fits: Vec<usize> = ns.iter().copied().filter(|&n| n <= support).collect();
    let scatter = |vals: Vec<f64>| -> Vec<f64> {
        let mut it = vals.into_iter();
        ns.iter().map(|&n| if n <= support { it.next().unwrap_or(f64::NAN) } else { f64::NAN }).collect()
    };
    let a_iid = iid::values_sorted(&sorted, ns);
    let a_wor = scatter(wor::values(&sorted, &fits, overlap));
    let a_cp = scatter(if fits.is_empty() { Vec::new() } else { cp::values(&sorted, &fits) });
    let a_greedy = scatter(greedy::values(&pf, &qf, &fits, 1.0, 1.0));
    let a_rrs = rrs::acceptances(ns, 1.0, 1.0, |c| curve.residual_mass(c.value()));
    // RRS-wor for every n ≤ |supp q| at once (the deterministic method's tables are shared).
    let mut a_rrs_wor = rrs_wor_acceptances(&curve, &fits, mc, row).into_iter();

    let mut out = StudyRow {
        values: vec![f64::NAN; ns.len() * COLUMNS],
        rrs_wor_stderr: vec![f64::NAN; ns.len()],
        rrs_wor_exact: vec![false; ns.len()],
    };
    for (i, &n) in ns.iter().enumerate() {
        let v = &mut out.values[i * COLUMNS..(i + 1) * COLUMNS];
        // n = 1: every law draws one token from q, and every verifier is speculative sampling.
        let one = n == 1;
        v[0] = if one { overlap } else { a_iid[i] };
        v[1] = a_wor[i];
        v[2] = if one && n <= support { overlap } else { a_cp[i] };
        v[3] = if one && n <= support { overlap } else { a_greedy[i] };
        // SpecHub's law is defined for n = 2; its α* is Theorem 7 with one fixed token (greedy).
        v[4] = if n == 2 { a_greedy[i] } else { f64::NAN };
        v[5] = a_rrs[i];
        let (_, _, beta) = kseq::root(n, &mut &curve);
        v[6] = kseq::p_accept(beta, n as f64);
        if let Some(acc) = (n <= support).then(|| a_rrs_wor.next()).flatten() {
            v[RRS_WOR] = acc.value;
            out.rrs_wor_stderr[i] = acc.stderr;
            out.rrs_wor_exact[i] = acc.exact;
        }
    }
    Ok(out)
}

/// [`study_row`] for every row of row-major `p`, `q` of shape (len / vocab, vocab), in parallel;
/// row r draws its Monte-Carlo stream from (mc.seed, r). Errors name the first bad row.
pub fn study_rows<T: Real>(p: &[T], q: &[T], vocab: usize, ns: &[usize], mc: &MonteCarlo) -> Result<Vec<StudyRow>> {
    if p.len() != q.len() {
        return Err(Error::invalid("q", format!("has {} entries but `p` has {}", q.len(), p.len())));
    }
    if vocab == 0 {
        return Err(Error::invalid("p", "has an empty vocabulary axis"));
    }
    if ns.is_empty() {
        return Err(Error::invalid("ns", "is empty; give at least one draft count"));
    }
    crate::limits::check_count("samples", mc.samples, crate::limits::MAX_SAMPLES, "the number of Monte-Carlo samples")?;
    let m = p.len() / vocab;
    let out: Vec<Result<StudyRow>> = crate::parallel::map(m, |r| {
        let s = r * vocab..(r + 1) * vocab;
        study_row(&p[s.clone()], &q[s], ns, mc, r as u64)
    })?;
    out.into_iter().enumerate().map(|(i, r)| r.map_err(|e| e.in_row(i))).collect()
}
