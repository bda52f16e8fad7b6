//! Bindings for `specrs_core::bounds`: α* per draft scheme and verifier acceptance, for one
//! position (1-D p, q) or a batch (2-D, rows = positions; rows run in parallel with the GIL
//! released). float32/float64 inputs are borrowed without a copy.

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use specrs_core::bounds::{self, Acceptance, MonteCarlo};
use specrs_core::{Scheme, Verifier};
use specrs_py_macros::boundary;

use crate::arrays::{expect_ndim, prob_pair, Probs};
use crate::convert;
use crate::error::{PyError, SpecrsResult};
use crate::with_pair;

/// Checks the shapes of a (p, q) pair: 1-D or 2-D, and equal. Returns the vocabulary size.
fn shapes(p: &Probs<'_>, q: &Probs<'_>) -> SpecrsResult<usize> {
    let (sp, sq) = (p.shape(), q.shape());
    expect_ndim("p", &sp, &[1, 2])?;
    if sp != sq {
        return Err(PyError::invalid("q", format!("has shape {sq:?} but `p` has shape {sp:?}; they must match")));
    }
    Ok(*sp.last().unwrap_or(&0))
}

/// α*(p, q, n) for `scheme`; a float for 1-D inputs, a float64 array (one per row) for 2-D.
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, q, n, scheme))]
fn _optimal_acceptance<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    scheme: &Bound<'py, PyAny>,
) -> SpecrsResult<Py<PyAny>> {
    let scheme = Scheme::parse("scheme", &convert::name(scheme, "scheme")?)?;
    let n = convert::size(n, "n", 1)?;
    let (pa, qa) = prob_pair(py, p, q)?;
    let vocab = shapes(&pa, &qa)?;
    let two_d = pa.ndim() == 2;
    with_pair!(pa, qa, |ps, qs| {
        if two_d {
            let out = py.detach(|| bounds::optimal_acceptance_rows(ps, qs, vocab, n, scheme))?;
            Ok(out.into_pyarray(py).into_any().unbind())
        } else {
            let v = py.detach(|| bounds::optimal_acceptance(ps, qs, n, scheme))?;
            Ok(pyo3::types::PyFloat::new(py, v).into_any().unbind())
        }
    })
}

fn acceptance_tuple<'py>(py: Python<'py>, a: &[Acceptance], two_d: bool) -> SpecrsResult<Bound<'py, PyTuple>> {
    if two_d {
        let v: Vec<f64> = a.iter().map(|x| x.value).collect();
        let s: Vec<f64> = a.iter().map(|x| x.stderr).collect();
        let e: Vec<bool> = a.iter().map(|x| x.exact).collect();
        let items: Vec<Bound<'py, PyAny>> =
            vec![PyArray1::from_vec(py, v).into_any(), PyArray1::from_vec(py, s).into_any(), PyArray1::from_vec(py, e).into_any()];
        Ok(PyTuple::new(py, items)?)
    } else {
        let x = a[0];
        Ok(PyTuple::new(
            py,
            [
                pyo3::types::PyFloat::new(py, x.value).into_any(),
                pyo3::types::PyFloat::new(py, x.stderr).into_any(),
                pyo3::types::PyBool::new(py, x.exact).to_owned().into_any(),
            ],
        )?)
    }
}

/// (value, stderr, exact) of `verifier` with `scheme` (None: the verifier's own scheme); arrays
/// for 2-D inputs. Monte-Carlo rows use the stream (seed, row).
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, q, n, verifier, scheme, samples, seed))]
#[allow(clippy::too_many_arguments)]
fn _verifier_acceptance<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    n: &Bound<'py, PyAny>,
    verifier: &Bound<'py, PyAny>,
    scheme: Option<&Bound<'py, PyAny>>,
    samples: &Bound<'py, PyAny>,
    seed: u64,
) -> SpecrsResult<Bound<'py, PyTuple>> {
    let verifier = Verifier::parse("verifier", &convert::name(verifier, "verifier")?)?;
    let scheme = convert::opt_name(scheme, "scheme")?.map(|s| Scheme::parse("scheme", &s)).transpose()?;
    let n = convert::size(n, "n", 1)?;
    let samples = convert::size(samples, "samples", 2)?;
    let mc = MonteCarlo { samples, seed, ..MonteCarlo::default() };
    let (pa, qa) = prob_pair(py, p, q)?;
    let vocab = shapes(&pa, &qa)?;
    let two_d = pa.ndim() == 2;
    with_pair!(pa, qa, |ps, qs| {
        let out = if two_d {
            py.detach(|| bounds::verifier_acceptance_rows(ps, qs, vocab, n, verifier, scheme, &mc))?
        } else {
            vec![py.detach(|| bounds::verifier_acceptance(ps, qs, n, verifier, scheme, &mc, 0))?]
        };
        acceptance_tuple(py, &out, two_d)
    })
}

/// K-SEQ's ρ* ∈ [1, n] (SpecTr), the root of 1 − (1 − β(ρ))^n = ρ β(ρ), β(ρ) = Σ min(p/ρ, q).
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, q, n))]
fn _kseq_rho<'py>(py: Python<'py>, p: &Bound<'py, PyAny>, q: &Bound<'py, PyAny>, n: &Bound<'py, PyAny>) -> SpecrsResult<f64> {
    let n = convert::size(n, "n", 1)?;
    let (pa, qa) = prob_pair(py, p, q)?;
    shapes(&pa, &qa)?;
    expect_ndim("p", &pa.shape(), &[1])?;
    with_pair!(pa, qa, |ps, qs| Ok(py.detach(|| bounds::kseq_rho(ps, qs, n))?))
}

/// The acceptance study of 2-D rows (p, q) for every n in `ns`: flat float64 arrays
/// (rows·len(ns)·len(STUDY_COLUMNS) values, rows·len(ns) RRS-wor standard errors) and bools
/// (RRS-wor exact), row-major; the Python wrapper reshapes them. Rows run in parallel.
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, q, ns, samples, seed))]
fn _acceptance_study<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    ns: &Bound<'py, PyAny>,
    samples: &Bound<'py, PyAny>,
    seed: u64,
) -> SpecrsResult<Bound<'py, PyTuple>> {
    let ns = convert::sizes(ns, "ns", 1)?;
    let samples = convert::size(samples, "samples", 2)?;
    let mc = MonteCarlo { samples, seed, ..MonteCarlo::default() };
    let (pa, qa) = prob_pair(py, p, q)?;
    let vocab = shapes(&pa, &qa)?;
    expect_ndim("p", &pa.shape(), &[2])?;
    with_pair!(pa, qa, |ps, qs| {
        let rows = py.detach(|| bounds::study_rows(ps, qs, vocab, &ns, &mc))?;
        let values: Vec<f64> = rows.iter().flat_map(|r| r.values.iter().copied()).collect();
        let stderr: Vec<f64> = rows.iter().flat_map(|r| r.rrs_wor_stderr.iter().copied()).collect();
        let exact: Vec<bool> = rows.iter().flat_map(|r| r.rrs_wor_exact.iter().copied()).collect();
        let items: Vec<Bound<'py, PyAny>> = vec![
            PyArray1::from_vec(py, values).into_any(),
            PyArray1::from_vec(py, stderr).into_any(),
            PyArray1::from_vec(py, exact).into_any(),
        ];
        Ok(PyTuple::new(py, items)?)
    })
}

/// (depth, sd, block, optimum): E[accepted] of one draft chain of an explicit model (rows × V,
/// one row per prefix, breadth first; `specrs.chain_optima`).
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, q))]
fn _chain_optima<'py>(py: Python<'py>, p: &Bound<'py, PyAny>, q: &Bound<'py, PyAny>) -> SpecrsResult<(usize, f64, f64, f64)> {
    let (pa, qa) = prob_pair(py, p, q)?;
    let v = shapes(&pa, &qa)?;
    expect_ndim("p", &pa.shape(), &[2])?;
    let o = with_pair!(pa, qa, |ps, qs| py.detach(|| bounds::chain_optima(ps, qs, v))?);
    Ok((o.depth, o.sd, o.block, o.optimum))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_chain_optima, m)?)?;
    m.add_function(wrap_pyfunction!(_acceptance_study, m)?)?;
    m.add("STUDY_COLUMNS", bounds::STUDY_COLUMNS.to_vec())?;
    m.add_function(wrap_pyfunction!(_optimal_acceptance, m)?)?;
    m.add_function(wrap_pyfunction!(_verifier_acceptance, m)?)?;
    m.add_function(wrap_pyfunction!(_kseq_rho, m)?)?;
    Ok(())
}
