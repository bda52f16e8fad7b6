//! Bindings for `specrs_core::chain`: the batched rejection step over draft chains of different
//! lengths (a serving engine's layout: rows back to back, cumulative counts, one seed per chain).

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use specrs_core::{chain, Rng, Verifier};
use specrs_py_macros::boundary;

use crate::arrays::{expect_ndim, prob_pair, slice, token_ids};
use crate::error::{PyError, SpecrsResult};
use crate::rng::seed_from;
use crate::with_pair;

/// One u64 seed per chain from an integer array (negative entries are an error).
fn seed_array(py: Python<'_>, obj: &Bound<'_, PyAny>, chains: usize) -> SpecrsResult<Vec<u64>> {
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (obj,)).map_err(|e| PyError::invalid("seeds", format!("cannot be converted to an array: {e}")))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    if kind != "i" && kind != "u" {
        let name: String = arr.getattr("dtype")?.getattr("name")?.extract()?;
        return Err(PyError::invalid("seeds", format!("has dtype {name}; pass one integer seed per chain")));
    }
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    if shape != [chains] {
        return Err(PyError::invalid("seeds", format!("has shape {shape:?} but there are {chains} chains")));
    }
    if kind == "i" && arr.call_method0("min")?.extract::<i64>().unwrap_or(0) < 0 && chains > 0 {
        return Err(PyError::invalid("seeds", "has a negative entry; seeds lie in 0..2**64"));
    }
    let arr = np.call_method1("ascontiguousarray", (arr, np.getattr("uint64")?))?;
    let a = arr.cast::<PyArrayDyn<u64>>().map_err(|_| PyError::invalid("seeds", "could not be read as uint64"))?;
    Ok(a.readonly().as_slice().map_err(|_| PyError::invalid("seeds", "must be contiguous"))?.to_vec())
}

/// (accepted, tokens) per chain.
type ChainArrays<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// verify_chains(p, q, drafts, cu_num_drafts, *, verifier="sd", seeds=None, rng=None)
/// --
///
/// The rejection step of a batch of draft chains with different lengths, stored back to back:
/// chain b owns rows `cu_num_drafts[b-1]:cu_num_drafts[b]` of `p`, `q` (rows × V, the target and
/// draft distributions at each drafted position) and of `drafts` (rows,). A negative draft id
/// (a placeholder) ends its chain. Returns `(accepted, tokens)`, int64 arrays of one entry per
/// chain: the number of drafts accepted (a prefix) and the token emitted after them, or −1 when
/// the whole chain was accepted and the caller's bonus token (a sample of the target after the
/// last draft) follows. Lossless: (accepted drafts, token) has exactly the target's law.
///
/// Verifier: "sd" (token-wise speculative sampling, Leviathan et al. 2023) or "block" (block
/// verification, Sun et al. ICLR 2025: the longest prefix by the cumulative ratio
/// ρ_i = min(ρ_{i−1} p_i(x_i)/q_i(x_i), 1), the last passing position, then one residual token
/// from norm((ρ_τ p − q)₊); at least as many accepted drafts as "sd" in expectation) or "traversal" (on a
/// chain it is block verification and runs the same rule). Randomness: chain b
/// uses its own stream, `seeds[b]` (one integer per chain, e.g. drawn from each request's own
/// generator), or `stream_seed(seed, b)` with `seed` from `rng` when `seeds` is None. Chains run
/// in parallel with the GIL released.
#[boundary]
#[pyfunction]
#[pyo3(signature = (p, q, drafts, cu_num_drafts, *, verifier="sd", seeds=None, rng=None))]
#[allow(clippy::too_many_arguments)]
fn verify_chains<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    drafts: &Bound<'py, PyAny>,
    cu_num_drafts: &Bound<'py, PyAny>,
    verifier: &str,
    seeds: Option<&Bound<'py, PyAny>>,
    rng: Option<&Bound<'py, PyAny>>,
) -> SpecrsResult<ChainArrays<'py>> {
    let verifier = Verifier::parse("verifier", verifier)?;
    let (pa, qa) = prob_pair(py, p, q)?;
    let (ps, qs) = (pa.shape(), qa.shape());
    expect_ndim("p", &ps, &[2])?;
    if ps != qs {
        return Err(PyError::invalid("q", format!("has shape {qs:?} but `p` has shape {ps:?}")));
    }
    let d = token_ids(py, drafts, "drafts")?;
    expect_ndim("drafts", d.shape(), &[1])?;
    if d.shape()[0] != ps[0] {
        return Err(PyError::invalid("drafts", format!("has {} entries but `p` has {} rows", d.shape()[0], ps[0])));
    }
    let cu = token_ids(py, cu_num_drafts, "cu_num_drafts")?;
    expect_ndim("cu_num_drafts", cu.shape(), &[1])?;
    let ends: Vec<usize> = slice(&cu, "cu_num_drafts")?
        .iter()
        .map(|&e| usize::try_from(e).map_err(|_| PyError::invalid("cu_num_drafts", format!("entry {e} is negative"))))
        .collect::<SpecrsResult<_>>()?;
    let chains = ends.len();
    let seeds = match seeds {
        Some(s) if !s.is_none() => {
            if rng.is_some_and(|r| !r.is_none()) {
                return Err(PyError::invalid("seeds", "give `seeds` (one per chain) or `rng`, not both"));
            }
            seed_array(py, s, chains)?
        }
        _ => {
            let seed = seed_from(py, rng)?;
            (0..chains as u64).map(|b| Rng::stream_seed(seed, b)).collect()
        }
    };
    let ds = slice(&d, "drafts")?;
    let v = ps[1];
    let out = with_pair!(pa, qa, |pv, qv| py.detach(|| chain::verify_chains(verifier, pv, qv, ds, &ends, v, &seeds))?);
    let accepted: Vec<i64> = out.iter().map(|o| o.accepted as i64).collect();
    let tokens: Vec<i64> = out.iter().map(|o| o.token.map_or(-1, |t| t as i64)).collect();
    Ok((PyArray1::from_vec(py, accepted), PyArray1::from_vec(py, tokens)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(verify_chains, m)?)?;
    Ok(())
}
