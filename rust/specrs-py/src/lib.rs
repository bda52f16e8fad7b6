//! `specrs._specrs`: thin PyO3 bindings over `specrs-core`.
//!
//! Each submodule wraps one area of the core and registers its functions here. Bindings only
//! convert arguments (borrowing numpy buffers), release the GIL around core work and map
//! `specrs_core::Error` to `SpecrsError` (a `ValueError` subclass). Every exported function or
//! `#[pymethods]` block carries `#[boundary]` (see `boundary.rs`): panics become
//! `specrs.InternalError`, Ctrl-C interrupts long calls.

use pyo3::prelude::*;

mod arrays;
mod boundary;
mod bounds;
mod chain;
mod convert;
mod error;
mod flow;
mod names;
mod rng;
mod testing;
mod tree;
mod verify;

pub use error::{PyError, SpecrsResult};

#[pymodule]
fn _specrs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SpecrsError", py.get_type::<error::SpecrsError>())?;
    m.add("SizeLimitError", py.get_type::<error::SizeLimitError>())?;
    m.add("InternalError", py.get_type::<error::InternalError>())?;
    boundary::install(py)?;
    testing::register(m)?;
    m.add_function(wrap_pyfunction!(rng::_resolve_seed, m)?)?;
    m.add_function(wrap_pyfunction!(names::_registry, m)?)?;
    m.add_function(wrap_pyfunction!(convert::_integer, m)?)?;
    bounds::register(m)?;
    flow::register(m)?;
    verify::register(m)?;
    tree::register(m)?;
    chain::register(m)?;
    Ok(())
}
