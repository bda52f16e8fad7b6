//! One conversion from core errors to Python exceptions (cryptography's pattern).
//!
//! `SpecrsError` subclasses `ValueError`, so `except ValueError` keeps working;
//! `SizeLimitError` subclasses `SpecrsError` for problems above a documented size limit
//! (`specrs_core::limits`). It is deliberately *not* a `MemoryError`: it is raised before anything
//! is allocated, whatever memory is free, and freeing memory and retrying (what code catching
//! `MemoryError` does) cannot help. `InternalError` (a `SpecrsError`) reports a caught panic, i.e.
//! a bug in specrs; `Error::Interrupted` becomes the `KeyboardInterrupt` of the Ctrl-C.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;
use specrs_core::Error;

create_exception!(
    specrs,
    SpecrsError,
    PyValueError,
    "Invalid input to a specrs function. Subclasses ValueError; the message names the argument."
);
create_exception!(
    specrs,
    SizeLimitError,
    SpecrsError,
    "The problem is above a documented size limit (see specrs.LIMITS); raised before allocating."
);
create_exception!(specrs, InternalError, SpecrsError, "A bug in specrs (a Rust panic, caught at the boundary); please report it.");

/// Error type of every binding: a core error or an already-raised Python error.
#[derive(Debug)]
pub enum PyError {
    Core(Error),
    Py(PyErr),
}

pub type SpecrsResult<T> = Result<T, PyError>;

impl From<Error> for PyError {
    fn from(e: Error) -> Self {
        PyError::Core(e)
    }
}

impl From<PyErr> for PyError {
    fn from(e: PyErr) -> Self {
        PyError::Py(e)
    }
}

impl From<PyError> for PyErr {
    fn from(e: PyError) -> PyErr {
        match e {
            PyError::Core(e @ Error::InvalidArgument { .. }) => SpecrsError::new_err(e.to_string()),
            PyError::Core(e @ Error::TooLarge { .. }) => SizeLimitError::new_err(e.to_string()),
            PyError::Core(Error::Interrupted) => crate::boundary::interrupted(),
            PyError::Py(e) => e,
        }
    }
}

impl PyError {
    /// A validation error about argument `arg` raised on the Python side of the bindings
    /// (dtype, shape), with the same message format as the core's.
    pub fn invalid(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        PyError::Core(Error::invalid(arg, msg))
    }
}
