//! The `rng` argument, SciPy style: `None` (fresh OS entropy), an int seed, a
//! `numpy.random.Generator` or `numpy.random.RandomState`. It is reduced to one u64 seed for the
//! core's xoshiro256++ stream; a Generator is advanced by one 64-bit draw, so successive calls with
//! the same Generator give different, reproducible results.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};
use specrs_py_macros::boundary;

use crate::error::{PyError, SpecrsResult};

pub fn seed_from(py: Python<'_>, rng: Option<&Bound<'_, PyAny>>) -> SpecrsResult<u64> {
    let Some(obj) = rng else {
        let np = py.import("numpy")?;
        let seq = np.getattr("random")?.getattr("SeedSequence")?.call0()?;
        let state = seq.call_method1("generate_state", (1, np.getattr("uint64")?))?;
        return Ok(state.get_item(0)?.extract::<u64>()?);
    };
    if obj.is_none() {
        return seed_from(py, None);
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(PyError::invalid("rng", "must be None, an int seed or a numpy.random.Generator, not a bool"));
    }
    if obj.is_instance_of::<PyInt>() || obj.hasattr("__index__")? && !obj.hasattr("bit_generator")? {
        let seed: i128 = obj.call_method0("__index__")?.extract().map_err(|_| PyError::invalid("rng", "int seed must lie in 0..2**64"))?;
        if !(0..=u64::MAX as i128).contains(&seed) {
            return Err(PyError::invalid("rng", format!("int seed {seed} must lie in 0..2**64")));
        }
        return Ok(seed as u64);
    }
    if obj.hasattr("bit_generator")? {
        // numpy.random.Generator: one raw 64-bit draw from its bit generator.
        let raw = obj.getattr("bit_generator")?.call_method0("random_raw")?;
        return Ok(raw.extract::<u64>()?);
    }
    if obj.hasattr("randint")? && obj.hasattr("get_state")? {
        // Legacy numpy.random.RandomState: two 32-bit draws.
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("dtype", py.import("numpy")?.getattr("uint64")?)?;
        let hi = obj.call_method("randint", (0u64, 1u64 << 32), Some(&kwargs))?;
        let lo = obj.call_method("randint", (0u64, 1u64 << 32), Some(&kwargs))?;
        return Ok((hi.extract::<u64>()? << 32) | lo.extract::<u64>()?);
    }
    Err(PyError::invalid("rng", format!("must be None, an int seed or a numpy.random.Generator, got {}", obj.get_type().name()?)))
}

/// The u64 seed that a function given `rng` would use (exposed for tests and for Python-side
/// code that must derive seeds the same way as the Rust functions).
#[boundary]
#[pyfunction]
#[pyo3(signature = (rng=None))]
pub fn _resolve_seed(py: Python<'_>, rng: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    Ok(seed_from(py, rng)?)
}
