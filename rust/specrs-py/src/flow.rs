//! Bindings for `specrs_core::flow`: `optimal_acceptance_explicit` returning `ExplicitBound`,
//! and `_scheme_law` (the explicit law of a draft scheme, for tests and other modules).

use numpy::ndarray::Array2;
use numpy::{PyArray1, PyArray2};
use pyo3::prelude::*;
use specrs_core::flow::{optimal_plan, ExplicitPlan};
use specrs_core::{scheme_law, Rng, Scheme};
use specrs_py_macros::boundary;

use crate::arrays::{expect_ndim, probs, slice};
use crate::error::{PyError, SpecrsResult};
use crate::rng::seed_from;
use crate::with_probs;

/// Optimal acceptance α* of an explicit joint draft law, with a minimising token set H and an
/// optimal transport plan π(y | row) = accept part + reject_prob[row] · residual (Hu et al.,
/// ICLR 2025, eq. 7–9, solved as a maximum flow on the multiset graph).
#[pyclass(name = "ExplicitBound", module = "specrs._specrs", frozen)]
pub struct ExplicitBound {
    plan: ExplicitPlan,
}

impl ExplicitBound {
    fn check_row(&self, row: &Bound<'_, PyAny>) -> SpecrsResult<usize> {
        let m = self.plan.rows();
        let row = crate::convert::size(row, "row", 0)?;
        if row >= m {
            return Err(PyError::invalid("row", format!("{row} is outside the rows 0..{m}")));
        }
        Ok(row)
    }
}

/// (rows, tokens, probs) coordinate arrays.
type Coo<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>);
/// (drafts (m, n), probs (m,)) of an explicit law.
type LawArrays<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray1<f64>>);

fn usize_array<'py>(py: Python<'py>, v: impl Iterator<Item = usize>) -> Bound<'py, PyArray1<i64>> {
    PyArray1::from_vec(py, v.map(|x| x as i64).collect())
}

#[boundary]
#[pymethods]
impl ExplicitBound {
    /// α*: the maximum-flow value.
    #[getter]
    fn value(&self) -> f64 {
        self.plan.value()
    }

    /// 1 + p(H) − Q(H) for the returned cut (value ≤ α* ≤ cut_value).
    #[getter]
    fn cut_value(&self) -> f64 {
        self.plan.cut_value()
    }

    /// cut_value − value: a certificate of the solve's accuracy (a few ulps).
    #[getter]
    fn gap(&self) -> f64 {
        self.plan.cut_value() - self.plan.value()
    }

    /// The token set H attaining the subset-selection minimum, ascending (int64).
    #[getter]
    fn cut<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        usize_array(py, self.plan.cut().iter().copied())
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.plan.vocab()
    }

    #[getter]
    fn n(&self) -> usize {
        self.plan.n()
    }

    #[getter]
    fn n_rows(&self) -> usize {
        self.plan.rows()
    }

    /// Number of distinct token sets (nodes of the multiset graph).
    #[getter]
    fn n_groups(&self) -> usize {
        self.plan.groups()
    }

    /// Group (distinct token set) of each row, (m,) int64.
    #[getter]
    fn groups<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        usize_array(py, (0..self.plan.rows()).map(|r| self.plan.group_of(r)))
    }

    /// Rejection probability ρ(row) of each row, (m,) float64.
    #[getter]
    fn reject_prob<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_vec(py, (0..self.plan.rows()).map(|r| self.plan.reject_prob(r)).collect())
    }

    /// Residual distribution r over the vocabulary, (V,) float64.
    #[getter]
    fn residual<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.plan.residual())
    }

    /// Accept part in coordinate form `(rows, tokens, probs)`: π(tokens[k] | rows[k]) includes
    /// probs[k] of acceptance mass (token = one of the row's drafts).
    #[getter]
    fn accept<'py>(&self, py: Python<'py>) -> Coo<'py> {
        let (mut rows, mut toks, mut probs) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..self.plan.rows() {
            let (t, a) = self.plan.accept(r);
            rows.extend(std::iter::repeat(r as i64).take(t.len()));
            toks.extend(t.iter().map(|&x| x as i64));
            probs.extend_from_slice(a);
        }
        (PyArray1::from_vec(py, rows), PyArray1::from_vec(py, toks), PyArray1::from_vec(py, probs))
    }

    /// π(· | row) as a dense (V,) float64 vector.
    fn conditional<'py>(&self, py: Python<'py>, row: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let r = self.check_row(row)?;
        Ok(PyArray1::from_vec(py, self.plan.conditional(r)))
    }

    /// Draws y ~ π(· | row); returns (token, position of the accepted draft or None).
    #[pyo3(signature = (row, *, rng=None))]
    fn sample(&self, py: Python<'_>, row: &Bound<'_, PyAny>, rng: Option<&Bound<'_, PyAny>>) -> PyResult<(usize, Option<usize>)> {
        let r = self.check_row(row)?;
        let mut g = Rng::new(seed_from(py, rng)?);
        Ok(self.plan.sample(r, &mut g))
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(crate::convert::not_picklable(
            "ExplicitBound",
            "recompute it with optimal_acceptance_explicit(p, drafts, probs), or pickle OptimalVerifier(p, drafts, probs)",
        ))
    }

    fn __repr__(&self) -> String {
        let cut = self.plan.cut();
        let shown: Vec<String> = cut.iter().take(8).map(|x| x.to_string()).collect();
        let more = if cut.len() > 8 { format!(", … ({} tokens)", cut.len()) } else { String::new() };
        format!(
            "ExplicitBound(value={:.12}, cut=[{}{}], rows={}, groups={}, n={}, vocab_size={})",
            self.plan.value(),
            shown.join(", "),
            more,
            self.plan.rows(),
            self.plan.groups(),
            self.plan.n(),
            self.plan.vocab()
        )
    }
}

/// Optimal acceptance α* of an explicit joint draft law, with its minimum cut and an optimal
/// transport plan (Hu et al., "Towards Optimal Multi-draft Speculative Decoding", ICLR 2025,
/// eq. 7–9).
///
/// `drafts` is an int array (m, n): row r is an ordered draft tuple ī with probability
/// `probs[r]`; `p` (V,) is the target (float32 or float64; both distributions must sum to 1
/// within 1e-6, 1e-4 for float32, and are then renormalised). Rows with the same token set are
/// merged (only the set matters) and the max-flow source → set (cap P) → token (cap ∞) → sink
/// (cap p) is solved exactly in f64, without the GIL. Its value is
/// α* = 1 + min_H (p(H) − P(ī ⊆ H)) (subset-selection theorem, eq. 8).
///
/// Returns an `ExplicitBound`: `.value`, `.cut` (H), `.gap` (duality certificate), the plan
/// `.conditional(row)` / `.accept` / `.reject_prob` / `.residual`, and `.sample(row, rng)`.
/// Raises `SpecrsError` naming the argument on bad input, `SizeLimitError` above m·n = 2^24
/// entries or V = 2^26.
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, drafts, probs))]
fn optimal_acceptance_explicit(
    py: Python<'_>,
    p: &Bound<'_, PyAny>,
    drafts: &Bound<'_, PyAny>,
    probs: &Bound<'_, PyAny>,
) -> PyResult<ExplicitBound> {
    Ok(explicit(py, p, drafts, probs)?)
}

fn explicit(py: Python<'_>, p: &Bound<'_, PyAny>, drafts: &Bound<'_, PyAny>, probs_obj: &Bound<'_, PyAny>) -> SpecrsResult<ExplicitBound> {
    let pa = probs(py, p, "p")?;
    expect_ndim("p", &pa.shape(), &[1])?;
    let (da, n, qa) = crate::arrays::explicit_law(py, drafts, probs_obj)?;
    let ids: &[i64] = slice(&da, "drafts")?;
    let plan = with_probs!(pa, "p", |ps| with_probs!(qa, "probs", |qs| py.detach(|| optimal_plan(ps, ids, n, qs))?));
    Ok(ExplicitBound { plan })
}

/// The explicit joint law of the n ordered drafts of `scheme` over q: (drafts (m, n) int64,
/// probs (m,) float64). For tests and small vocabularies (limited by the core's tuple count).
#[boundary]
#[pyfunction]
#[pyo3(signature = (q, n, scheme))]
fn _scheme_law<'py>(py: Python<'py>, q: &Bound<'py, PyAny>, n: &Bound<'py, PyAny>, scheme: &Bound<'py, PyAny>) -> PyResult<LawArrays<'py>> {
    Ok(scheme_law_impl(py, q, n, scheme)?)
}

fn scheme_law_impl<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    scheme: &Bound<'py, PyAny>,
) -> SpecrsResult<LawArrays<'py>> {
    let scheme = Scheme::parse("scheme", &crate::convert::name(scheme, "scheme")?)?;
    let n = crate::convert::size(n, "n", 1)?;
    let qa = probs(py, q, "q")?;
    expect_ndim("q", &qa.shape(), &[1])?;
    let law = with_probs!(qa, "q", |qs| py.detach(|| scheme_law(qs, n, scheme))?);
    let m = law.len();
    let tuples: Vec<i64> = law.tuples.iter().map(|&x| x as i64).collect();
    let arr = Array2::from_shape_vec((m, law.n), tuples).map_err(|e| PyError::invalid("n", format!("internal shape error: {e}")))?;
    Ok((PyArray2::from_owned_array(py, arr), PyArray1::from_vec(py, law.probs)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ExplicitBound>()?;
    m.add_function(wrap_pyfunction!(optimal_acceptance_explicit, m)?)?;
    m.add_function(wrap_pyfunction!(_scheme_law, m)?)?;
    Ok(())
}
