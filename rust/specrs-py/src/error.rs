//! One conversion from core errors to Python exceptions (cryptography's pattern).
//!
//! `SpecrsError` subclasses `ValueError`, so `except ValueError` keeps working;
//! `SizeLimitError` subclasses `SpecrsError` for problems above an exact method's size limit.

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
create_exception!(specrs, SizeLimitError, SpecrsError, "The problem is above the size limit of the exact method requested.");

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
