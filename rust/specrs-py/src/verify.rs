//! Bindings for `specrs_core::{sample, verify, exact}`: draft samplers, verifiers (single and
//! batched over positions), the exact output law.

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use specrs_core::verify::{token_ids as core_ids, Outcome};
use specrs_core::verify as core_verify;
use specrs_core::{exact, sample, Rng, Scheme, Verifier};

use crate::arrays::{expect_ndim, prob_pair, probs, slice, token_ids};
use crate::error::{PyError, SpecrsResult};
use crate::rng::seed_from;
use crate::{with_pair, with_probs};

fn parse_scheme(scheme: Option<&str>) -> SpecrsResult<Option<Scheme>> {
    Ok(match scheme {
        Some(s) => Some(Scheme::parse("scheme", s)?),
        None => None,
    })
}

fn ids_2d<'py>(py: Python<'py>, a: Vec<usize>, rows: usize, n: usize) -> SpecrsResult<Bound<'py, PyAny>> {
    let v: Vec<i64> = a.into_iter().map(|x| x as i64).collect();
    Ok(PyArray1::from_vec(py, v).reshape([rows, n])?.into_any())
}

/// draft(q, n, *, scheme, rng=None)
/// --
///
/// Draws the n draft tokens of one position from the draft distribution q, **in draw order**.
///
/// Schemes: "iid" (n independent draws), "wor" (successive sampling without replacement: the
/// Gumbel-top-k law, Kool et al. 2019), "greedy" (top n−1 tokens of q, then one draw from the
/// rest; Hu et al. 2025), "spechub" (n = 2: x₁ ~ q paired with the hub argmax q; Sun et al. 2024),
/// "cp" (conditional Poisson: an n-subset with probability ∝ ∏ q(i), returned in ascending id
/// order). A 2-D q (positions × V) gives a (positions, n) array; row r uses the stream
/// `stream_seed(seed, r)`. Same seed → same drafts on every platform (xoshiro256++).
#[pyfunction]
#[pyo3(signature = (q, n, *, scheme, rng=None))]
fn draft<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    n: i64,
    scheme: &str,
    rng: Option<&Bound<'py, PyAny>>,
) -> SpecrsResult<Bound<'py, PyAny>> {
    let scheme = Scheme::parse("scheme", scheme)?;
    if n < 1 {
        return Err(PyError::invalid("n", format!("is {n}; must be at least 1")));
    }
    let n = n as usize;
    let qa = probs(py, q, "q")?;
    let shape = qa.shape();
    expect_ndim("q", &shape, &[1, 2])?;
    let seed = seed_from(py, rng)?;
    with_probs!(qa, "q", |qs| {
        if shape.len() == 1 {
            let d = py.detach(|| sample::draft(qs, n, scheme, &mut Rng::new(seed)))?;
            let v: Vec<i64> = d.into_iter().map(|x| x as i64).collect();
            Ok(PyArray1::from_vec(py, v).into_any())
        } else {
            let (rows, v) = (shape[0], shape[1]);
            let d = py.detach(|| sample::draft_batch(qs, v, n, scheme, seed))?;
            ids_2d(py, d, rows, n)
        }
    })
}

/// draft_explicit(drafts, probs, *, rng=None)
/// --
///
/// Draws one draft tuple from an explicit joint law: row r of the (rows, n) integer table
/// `drafts` with probability `probs[r]` (a distribution over rows). Returns that row (int64, n).
#[pyfunction]
#[pyo3(signature = (drafts, probs, *, rng=None))]
fn draft_explicit<'py>(
    py: Python<'py>,
    drafts: &Bound<'py, PyAny>,
    probs: &Bound<'py, PyAny>,
    rng: Option<&Bound<'py, PyAny>>,
) -> SpecrsResult<Bound<'py, PyArray1<i64>>> {
    let table = token_ids(py, drafts, "drafts")?;
    let shape = table.shape().to_vec();
    expect_ndim("drafts", &shape, &[2])?;
    let pr = crate::arrays::probs(py, probs, "probs")?;
    expect_ndim("probs", &pr.shape(), &[1])?;
    let pf: Vec<f64> = with_probs!(pr, "probs", |s| s.iter().map(|&x| x as f64).collect());
    sample::check_table(shape[0] * shape[1], shape[1], pf.len())?;
    let t = slice(&table, "drafts")?;
    if let Some(&x) = t.iter().find(|&&x| x < 0) {
        return Err(PyError::invalid("drafts", format!("token id {x} is negative")));
    }
    let seed = seed_from(py, rng)?;
    let r = sample::draft_explicit_row(&pf, &mut Rng::new(seed))?;
    let n = shape[1];
    Ok(PyArray1::from_slice(py, &t[r * n..(r + 1) * n]))
}

fn outcome_py(py: Python<'_>, o: Outcome) -> SpecrsResult<Bound<'_, PyAny>> {
    Ok((o.token as i64, o.accepted.map(|k| k as i64)).into_pyobject(py)?.into_any())
}

/// verify(p, q, drafts, *, verifier, scheme=None, rng=None)
/// --
///
/// Lossless verification of one position: returns `(token, accepted)`, where `accepted` is the
/// index of the draft the token accepts, or None when the token is not a draft (it came from the
/// residual). Averaged over drafts drawn from q by the scheme, `token` has law exactly p.
///
/// Verifiers and the schemes they are exact for: "sd" (one draft), "rrs" (iid; SpecInfer),
/// "rrs_wor" (wor; RSD), "kseq" (iid; SpecTr), "greedy" (greedy; Hu et al. 2025), "spechub"
/// (spechub; Sun et al. 2024), "match" (any: sample p, accept if it is a draft — the deterministic
/// top-k case). Use `OptimalVerifier` for "optimal". `scheme` defaults to the verifier's own and is
/// checked against it. 2-D p, q (positions × V) and drafts (positions × n) verify every row in
/// parallel with the GIL released and return `(tokens, accepted)` int64 arrays (−1 = None); row r
/// uses the stream `stream_seed(seed, r)`, so it equals `verify(p[r], q[r], drafts[r],
/// rng=stream_seed(seed, r))`.
#[pyfunction]
#[pyo3(signature = (p, q, drafts, *, verifier, scheme=None, rng=None))]
fn verify<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    drafts: &Bound<'py, PyAny>,
    verifier: &str,
    scheme: Option<&str>,
    rng: Option<&Bound<'py, PyAny>>,
) -> SpecrsResult<Bound<'py, PyAny>> {
    let verifier = Verifier::parse("verifier", verifier)?;
    let scheme = parse_scheme(scheme)?;
    if verifier == Verifier::Optimal {
        core_verify::resolve_scheme(verifier, scheme)?;
        return Err(PyError::invalid(
            "verifier",
            "use specrs.OptimalVerifier(p, q, n, scheme=...) (or an explicit law) for the optimal verifier: it precomputes the optimal plan once",
        ));
    }
    let (pa, qa) = prob_pair(py, p, q)?;
    let (ps, qs_) = (pa.shape(), qa.shape());
    expect_ndim("p", &ps, &[1, 2])?;
    if ps != qs_ {
        return Err(PyError::invalid("q", format!("has shape {qs_:?} but `p` has shape {ps:?}")));
    }
    let d = token_ids(py, drafts, "drafts")?;
    let ds = d.shape().to_vec();
    let v = *ps.last().unwrap_or(&0);
    let ids = core_ids("drafts", slice(&d, "drafts")?, v)?;
    let seed = seed_from(py, rng)?;
    with_pair!(pa, qa, |pv, qv| {
        if ps.len() == 1 {
            expect_ndim("drafts", &ds, &[1])?;
            let o = py.detach(|| core_verify::verify_scheme(verifier, scheme, pv, qv, &ids, &mut Rng::new(seed)))?;
            outcome_py(py, o)
        } else {
            expect_ndim("drafts", &ds, &[2])?;
            if ds[0] != ps[0] {
                return Err(PyError::invalid(
                    "drafts",
                    format!("has {} rows but `p` has {} positions", ds[0], ps[0]),
                ));
            }
            let n = ds[1];
            let out = py.detach(|| core_verify::verify_batch(verifier, scheme, pv, qv, &ids, v, n, seed))?;
            let tokens: Vec<i64> = out.iter().map(|o| o.token as i64).collect();
            let acc: Vec<i64> = out.iter().map(|o| o.accepted.map_or(-1, |k| k as i64)).collect();
            Ok((PyArray1::from_vec(py, tokens), PyArray1::from_vec(py, acc)).into_pyobject(py)?.into_any())
        }
    })
}

/// _output_distribution(p, q, n, verifier, scheme=None) -> (probs, acceptance)
#[pyfunction]
#[pyo3(signature = (p, q, n, verifier, scheme=None))]
fn _output_distribution<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    n: i64,
    verifier: &str,
    scheme: Option<&str>,
) -> SpecrsResult<(Bound<'py, PyArray1<f64>>, f64)> {
    let verifier = Verifier::parse("verifier", verifier)?;
    let scheme = parse_scheme(scheme)?;
    if n < 1 {
        return Err(PyError::invalid("n", format!("is {n}; must be at least 1")));
    }
    let (pa, qa) = prob_pair(py, p, q)?;
    expect_ndim("p", &pa.shape(), &[1])?;
    expect_ndim("q", &qa.shape(), &[1])?;
    let law = with_pair!(pa, qa, |pv, qv| py.detach(|| exact::output_distribution(pv, qv, n as usize, verifier, scheme))?);
    Ok((PyArray1::from_vec(py, law.probs), law.acceptance))
}

/// stream_seed(seed, row)
/// --
///
/// The seed of row `row` of a batched call seeded with the int `seed`: a batched `draft` or
/// `verify` computes row r exactly as the single call with `rng=stream_seed(seed, r)` would.
#[pyfunction]
fn stream_seed(seed: u64, row: u64) -> u64 {
    Rng::stream_seed(seed, row)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(draft, m)?)?;
    m.add_function(wrap_pyfunction!(draft_explicit, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(_output_distribution, m)?)?;
    m.add_function(wrap_pyfunction!(stream_seed, m)?)?;
    Ok(())
}
