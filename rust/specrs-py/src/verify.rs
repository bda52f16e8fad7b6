//! Bindings for `specrs_core::{sample, verify, exact}`: draft samplers, verifiers (single and
//! batched over positions), the exact output law.

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use specrs_core::verify as core_verify;
use specrs_core::verify::{token_ids as core_ids, OptimalVerifier as CoreOptimal, Outcome};
use specrs_core::{exact, sample, Rng, Scheme, Verifier};
use specrs_py_macros::boundary;

use crate::arrays::{expect_ndim, prob_pair, probs, slice, token_ids};
use crate::convert;
use crate::error::{PyError, SpecrsResult};
use crate::rng::seed_from;
use crate::{with_pair, with_probs};

fn parse_scheme(scheme: Option<&Bound<'_, PyAny>>) -> SpecrsResult<Option<Scheme>> {
    Ok(match convert::opt_name(scheme, "scheme")? {
        Some(s) => Some(Scheme::parse("scheme", &s)?),
        None => None,
    })
}

fn parse_verifier(verifier: &Bound<'_, PyAny>) -> SpecrsResult<Verifier> {
    Ok(Verifier::parse("verifier", &convert::name(verifier, "verifier")?)?)
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
/// `SizeLimitError` above `LIMITS["max_drafts"]` drafts or a 2 GiB buffer (`cp`'s (V+1)×(n+1)
/// table, the (positions, n) output).
#[boundary]
#[pyfunction]
#[pyo3(signature = (q, n, *, scheme, rng=None))]
fn draft<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    scheme: &Bound<'py, PyAny>,
    rng: Option<&Bound<'py, PyAny>>,
) -> SpecrsResult<Bound<'py, PyAny>> {
    let scheme = Scheme::parse("scheme", &convert::name(scheme, "scheme")?)?;
    let n = convert::size(n, "n", 1)?;
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
#[boundary]
#[pyfunction]
#[pyo3(signature = (drafts, probs, *, rng=None))]
fn draft_explicit<'py>(
    py: Python<'py>,
    drafts: &Bound<'py, PyAny>,
    probs: &Bound<'py, PyAny>,
    rng: Option<&Bound<'py, PyAny>>,
) -> SpecrsResult<Bound<'py, PyArray1<i64>>> {
    let (table, n, pr) = crate::arrays::explicit_law(py, drafts, probs)?;
    #[allow(clippy::unnecessary_cast)] // f32 or f64, one macro arm each
    let pf: Vec<f64> = with_probs!(pr, "probs", |s| s.iter().map(|&x| x as f64).collect());
    sample::check_table(pf.len() * n, n, pf.len())?;
    let t = slice(&table, "drafts")?;
    if let Some(&x) = t.iter().find(|&&x| x < 0) {
        return Err(PyError::invalid("drafts", format!("token id {x} is negative")));
    }
    let seed = seed_from(py, rng)?;
    let r = sample::draft_explicit_row(&pf, &mut Rng::new(seed))?;
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
/// top-k case), "optimal" (any named scheme: builds the scheme's explicit law and its optimal plan
/// on every call, small V only — build an `OptimalVerifier` once instead). `scheme` defaults to the verifier's own and is
/// checked against it. 2-D p, q (positions × V) and drafts (positions × n) verify every row in
/// parallel with the GIL released and return `(tokens, accepted)` int64 arrays (−1 = None); row r
/// uses the stream `stream_seed(seed, r)`, so it equals `verify(p[r], q[r], drafts[r],
/// rng=stream_seed(seed, r))`.
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, q, drafts, *, verifier, scheme=None, rng=None))]
fn verify<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    drafts: &Bound<'py, PyAny>,
    verifier: &Bound<'py, PyAny>,
    scheme: Option<&Bound<'py, PyAny>>,
    rng: Option<&Bound<'py, PyAny>>,
) -> SpecrsResult<Bound<'py, PyAny>> {
    let verifier = parse_verifier(verifier)?;
    let scheme = parse_scheme(scheme)?;
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
                return Err(PyError::invalid("drafts", format!("has {} rows but `p` has {} positions", ds[0], ps[0])));
            }
            let n = ds[1];
            let out = py.detach(|| core_verify::verify_batch(verifier, scheme, pv, qv, &ids, v, n, seed))?;
            let tokens: Vec<i64> = out.iter().map(|o| o.token as i64).collect();
            let acc: Vec<i64> = out.iter().map(|o| o.accepted.map_or(-1, |k| k as i64)).collect();
            Ok((PyArray1::from_vec(py, tokens), PyArray1::from_vec(py, acc)).into_pyobject(py)?.into_any())
        }
    })
}

/// The exact law of a verifier's output token: `probs[x]` = P(output = x) and `acceptance` =
/// P(output ∈ drafts). Unpacks like a pair: `probs, acceptance = law`.
#[pyclass(name = "OutputLaw", module = "specrs", frozen)]
pub struct PyOutputLaw {
    probs: Py<PyAny>,
    acceptance: f64,
}

#[boundary]
#[pymethods]
impl PyOutputLaw {
    #[new]
    #[pyo3(signature = (probs, acceptance))]
    fn new(probs: Py<PyAny>, acceptance: f64) -> Self {
        PyOutputLaw { probs, acceptance }
    }

    /// (V,) float64: P(output = x).
    #[getter]
    fn probs(&self, py: Python<'_>) -> Py<PyAny> {
        self.probs.clone_ref(py)
    }

    /// P(output ∈ drafts), the acceptance rate of Hu et al. (ICLR 2025).
    #[getter]
    fn acceptance(&self) -> f64 {
        self.acceptance
    }

    fn __len__(&self) -> usize {
        2
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyAny>> {
        match index {
            0 | -2 => Ok(self.probs.bind(py).clone()),
            1 | -1 => Ok(pyo3::types::PyFloat::new(py, self.acceptance).into_any()),
            _ => Err(pyo3::exceptions::PyIndexError::new_err("OutputLaw index out of range (it is a pair)")),
        }
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pair = (self.probs.clone_ref(py), self.acceptance).into_pyobject(py)?;
        Ok(pair.try_iter()?.into_any())
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let args = (self.probs.clone_ref(py), self.acceptance);
        Ok((py.get_type::<PyOutputLaw>(), args).into_pyobject(py)?.into_any())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("OutputLaw(probs={}, acceptance={})", self.probs.bind(py).repr()?, self.acceptance))
    }
}

/// _output_distribution(p, q, n, verifier, scheme=None) -> OutputLaw
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, q, n, verifier, scheme=None))]
fn _output_distribution<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    verifier: &Bound<'py, PyAny>,
    scheme: Option<&Bound<'py, PyAny>>,
) -> SpecrsResult<PyOutputLaw> {
    let verifier = parse_verifier(verifier)?;
    let scheme = parse_scheme(scheme)?;
    let n = convert::size(n, "n", 1)?;
    let (pa, qa) = prob_pair(py, p, q)?;
    expect_ndim("p", &pa.shape(), &[1])?;
    expect_ndim("q", &qa.shape(), &[1])?;
    let law = with_pair!(pa, qa, |pv, qv| py.detach(|| exact::output_distribution(pv, qv, n, verifier, scheme))?);
    Ok(PyOutputLaw { probs: PyArray1::from_vec(py, law.probs).into_any().unbind(), acceptance: law.acceptance })
}

/// stream_seed(seed, row)
/// --
///
/// The seed of row `row` of a batched call seeded with the int `seed`: a batched `draft` or
/// `verify` computes row r exactly as the single call with `rng=stream_seed(seed, r)` would.
#[boundary]
#[pyfunction]
fn stream_seed(seed: &Bound<'_, PyAny>, row: &Bound<'_, PyAny>) -> SpecrsResult<u64> {
    Ok(Rng::stream_seed(convert::u64(seed, "seed")?, convert::u64(row, "row")?))
}

/// OptimalVerifier(p, drafts, probs)
/// --
///
/// The optimal lossless verifier for an explicit joint draft law (Hu et al., ICLR 2025, eq. 7):
/// `drafts` is a (rows, n) table of draft tuples with row probabilities `probs`. The b-matching
/// max-flow is solved once (`specrs_core::flow`); `verify` then draws the output token from the
/// optimal transport plan π(· | drafts), so its acceptance is α* of the law and its output law is
/// exactly p. Tuples are matched as multisets (draft order does not matter to the plan).
/// Use `OptimalVerifier.from_scheme(p, q, n, scheme=...)` for a named scheme (small V).
#[pyclass(name = "OptimalVerifier", module = "specrs", frozen)]
pub struct PyOptimalVerifier {
    inner: CoreOptimal,
    /// The target as given (as f64), so that the verifier can be pickled (rebuilt from p and
    /// its law).
    p: Vec<f64>,
}

#[boundary]
#[pymethods]
impl PyOptimalVerifier {
    #[new]
    #[pyo3(signature = (p, drafts, probs))]
    fn new(py: Python<'_>, p: &Bound<'_, PyAny>, drafts: &Bound<'_, PyAny>, probs: &Bound<'_, PyAny>) -> SpecrsResult<Self> {
        let pa = crate::arrays::probs(py, p, "p")?;
        expect_ndim("p", &pa.shape(), &[1])?;
        let (table, n, pr) = crate::arrays::explicit_law(py, drafts, probs)?;
        #[allow(clippy::unnecessary_cast)] // f32 or f64, one macro arm each
        let pf: Vec<f64> = with_probs!(pr, "probs", |s| s.iter().map(|&x| x as f64).collect());
        let t = slice(&table, "drafts")?;
        let inner = with_probs!(pa, "p", |ps| py.detach(|| CoreOptimal::from_table(ps, t, n, &pf))?);
        #[allow(clippy::unnecessary_cast)] // f32 or f64, one macro arm each
        let p64: Vec<f64> = with_probs!(pa, "p", |s| s.iter().map(|&x| x as f64).collect());
        Ok(PyOptimalVerifier { inner, p: p64 })
    }

    /// from_scheme(p, q, n, *, scheme)
    /// --
    ///
    /// The optimal verifier for n drafts from q by `scheme` (its explicit law by enumeration).
    #[staticmethod]
    #[pyo3(signature = (p, q, n, *, scheme))]
    fn from_scheme(
        py: Python<'_>,
        p: &Bound<'_, PyAny>,
        q: &Bound<'_, PyAny>,
        n: &Bound<'_, PyAny>,
        scheme: &Bound<'_, PyAny>,
    ) -> SpecrsResult<Self> {
        let scheme = Scheme::parse("scheme", &convert::name(scheme, "scheme")?)?;
        let n = convert::size(n, "n", 1)?;
        let (pa, qa) = prob_pair(py, p, q)?;
        expect_ndim("p", &pa.shape(), &[1])?;
        expect_ndim("q", &qa.shape(), &[1])?;
        with_pair!(pa, qa, |pv, qv| {
            let law = py.detach(|| specrs_core::scheme_law(qv, n, scheme))?;
            let inner = py.detach(|| CoreOptimal::from_law(pv, &law))?;
            #[allow(clippy::unnecessary_cast)] // f32 or f64, one macro arm each
            let p64: Vec<f64> = pv.iter().map(|&x| x as f64).collect();
            Ok(PyOptimalVerifier { inner, p: p64 })
        })
    }

    /// α* of the draft law: the probability that the emitted token is a draft.
    #[getter]
    fn acceptance(&self) -> f64 {
        self.inner.acceptance()
    }

    /// Number of drafts per tuple.
    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    /// Vocabulary size V.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab()
    }

    /// Deprecated spelling of `vocab_size`.
    #[getter]
    fn vocab(&self, py: Python<'_>) -> PyResult<usize> {
        crate::names::deprecated(py, "OptimalVerifier.vocab is deprecated; use vocab_size")?;
        Ok(self.inner.vocab())
    }

    /// Pickles as (p, drafts, probs): unpickling solves the same flow again.
    fn __reduce__<'py>(&self, py: Python<'py>) -> SpecrsResult<Bound<'py, PyAny>> {
        let (drafts, probs) = self.law(py)?;
        let args = (PyArray1::from_slice(py, &self.p), drafts, probs);
        Ok((py.get_type::<PyOptimalVerifier>(), args).into_pyobject(py)?.into_any())
    }

    /// The law's draft tuples (rows, n) and their probabilities (rows,).
    #[getter]
    fn law<'py>(&self, py: Python<'py>) -> SpecrsResult<(Bound<'py, PyAny>, Bound<'py, PyArray1<f64>>)> {
        let plan = self.inner.plan();
        let rows = plan.rows();
        let t: Vec<usize> = (0..rows).flat_map(|r| plan.row(r).to_vec()).collect();
        Ok((ids_2d(py, t, rows, plan.n())?, PyArray1::from_slice(py, self.inner.law_probs())))
    }

    /// draft(*, rng=None)
    /// --
    ///
    /// One draft tuple drawn from the law (int64, n).
    #[pyo3(signature = (*, rng=None))]
    fn draft<'py>(&self, py: Python<'py>, rng: Option<&Bound<'py, PyAny>>) -> SpecrsResult<Bound<'py, PyArray1<i64>>> {
        let seed = seed_from(py, rng)?;
        let r = self.inner.draft_row(&mut Rng::new(seed));
        let v: Vec<i64> = self.inner.plan().row(r).iter().map(|&x| x as i64).collect();
        Ok(PyArray1::from_vec(py, v))
    }

    /// verify(drafts, *, rng=None)
    /// --
    ///
    /// `(token, accepted)` drawn from the optimal plan given the drafts (1-D, n ids). A 2-D
    /// (rows, n) table verifies every row in parallel (row r with `stream_seed(seed, r)`) and
    /// returns `(tokens, accepted)` int64 arrays (−1 = None).
    #[pyo3(signature = (drafts, *, rng=None))]
    fn verify<'py>(&self, py: Python<'py>, drafts: &Bound<'py, PyAny>, rng: Option<&Bound<'py, PyAny>>) -> SpecrsResult<Bound<'py, PyAny>> {
        let d = token_ids(py, drafts, "drafts")?;
        let ds = d.shape().to_vec();
        expect_ndim("drafts", &ds, &[1, 2])?;
        let ids = core_ids("drafts", slice(&d, "drafts")?, self.inner.vocab())?;
        let seed = seed_from(py, rng)?;
        if ds.len() == 1 {
            let o = self.inner.verify(&ids, &mut Rng::new(seed))?;
            outcome_py(py, o)
        } else {
            let out = py.detach(|| self.inner.verify_batch(&ids, seed))?;
            let tokens: Vec<i64> = out.iter().map(|o| o.token as i64).collect();
            let acc: Vec<i64> = out.iter().map(|o| o.accepted.map_or(-1, |k| k as i64)).collect();
            Ok((PyArray1::from_vec(py, tokens), PyArray1::from_vec(py, acc)).into_pyobject(py)?.into_any())
        }
    }

    /// output_distribution()
    /// --
    ///
    /// The exact output law Σ_ī P(ī) π(· | ī) and acceptance, as `OutputLaw(probs, acceptance)`.
    fn output_distribution(&self, py: Python<'_>) -> PyOutputLaw {
        let law = self.inner.output_distribution();
        PyOutputLaw { probs: PyArray1::from_vec(py, law.probs).into_any().unbind(), acceptance: law.acceptance }
    }

    fn __repr__(&self) -> String {
        format!(
            "OptimalVerifier(vocab_size={}, n={}, rows={}, acceptance={:.6})",
            self.inner.vocab(),
            self.inner.n(),
            self.inner.plan().rows(),
            self.inner.acceptance()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOptimalVerifier>()?;
    m.add_class::<PyOutputLaw>()?;
    m.add_function(wrap_pyfunction!(draft, m)?)?;
    m.add_function(wrap_pyfunction!(draft_explicit, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(_output_distribution, m)?)?;
    m.add_function(wrap_pyfunction!(stream_seed, m)?)?;
    Ok(())
}
