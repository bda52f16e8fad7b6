//! The one conversion layer for Python-typed scalar arguments (integers, names), shared by every
//! binding. Each refuses the wrong Python type with a `SpecrsError` naming the argument (never a
//! bare `TypeError`/`OverflowError`), and applies the core's one integer rule
//! (`specrs_core::validate::integer`).
//!
//! Integers: Python `int` and numpy integer scalars (anything with `__index__`); `bool` is refused
//! everywhere (it is an `int` subclass, but `n=True` is a bug, not a count); floats are refused
//! even when integral. Values must fit in a signed 64-bit integer.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyString};
use specrs_core::validate;
use specrs_py_macros::boundary;

use crate::error::{PyError, SpecrsResult};

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into())
}

/// An integer argument ≥ `min` (Python int or numpy integer; not bool, float, str, bytes, None).
pub fn int(obj: &Bound<'_, PyAny>, arg: &str, min: i64) -> SpecrsResult<i64> {
    let name = type_name(obj);
    // numpy.bool_ is named "bool" too; neither is a count.
    if obj.is_instance_of::<PyBool>() || name == "bool" {
        return Err(PyError::invalid(arg, "must be an integer, got a bool"));
    }
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyString>() || obj.is_none() || !obj.hasattr("__index__")? {
        return Err(PyError::invalid(arg, format!("must be an integer, got {name}")));
    }
    let value: i128 = match obj.extract::<i128>() {
        Ok(v) => v,
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            let sign = obj.call_method1("__lt__", (0,))?.is_truthy()?;
            if sign {
                i128::MIN
            } else {
                i128::MAX
            }
        }
        Err(_) => return Err(PyError::invalid(arg, format!("must be an integer, got {name}"))),
    };
    Ok(validate::integer(arg, value, min)?)
}

/// [`int`] as a size or count (`min` ≥ 0).
pub fn size(obj: &Bound<'_, PyAny>, arg: &str, min: i64) -> SpecrsResult<usize> {
    debug_assert!(min >= 0);
    Ok(int(obj, arg, min)? as usize)
}

/// An optional [`size`]: None (or an absent argument) stays None.
pub fn opt_size(obj: Option<&Bound<'_, PyAny>>, arg: &str, min: i64) -> SpecrsResult<Option<usize>> {
    match obj {
        Some(o) if !o.is_none() => size(o, arg, min).map(Some),
        _ => Ok(None),
    }
}

/// A u64 argument (seeds): an integer in 0..2**64.
pub fn u64(obj: &Bound<'_, PyAny>, arg: &str) -> SpecrsResult<u64> {
    if obj.is_instance_of::<PyBool>() || type_name(obj) == "bool" {
        return Err(PyError::invalid(arg, "must be an integer, got a bool"));
    }
    if !obj.hasattr("__index__")? || obj.is_instance_of::<PyFloat>() {
        return Err(PyError::invalid(arg, format!("must be an integer, got {}", type_name(obj))));
    }
    obj.extract::<u64>()
        .map_err(|_| PyError::invalid(arg, format!("is {}; must lie in 0..2**64", obj.repr().map(|r| r.to_string()).unwrap_or_default())))
}

/// A sequence of sizes, each ≥ `min`; an element's error names `arg[i]`.
pub fn sizes(obj: &Bound<'_, PyAny>, arg: &str, min: i64) -> SpecrsResult<Vec<usize>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() || !obj.hasattr("__iter__")? {
        return Err(PyError::invalid(arg, format!("must be a sequence of integers, got {}", type_name(obj))));
    }
    let mut out = Vec::new();
    for (i, x) in obj.try_iter()?.enumerate() {
        out.push(size(&x?, &format!("{arg}[{i}]"), min)?);
    }
    Ok(out)
}

/// An optional [`sizes`].
pub fn opt_sizes(obj: Option<&Bound<'_, PyAny>>, arg: &str, min: i64) -> SpecrsResult<Option<Vec<usize>>> {
    match obj {
        Some(o) if !o.is_none() => sizes(o, arg, min).map(Some),
        _ => Ok(None),
    }
}

/// A sequence of floats (Python or numpy numbers, not str/bytes/None/bool).
pub fn opt_floats(obj: Option<&Bound<'_, PyAny>>, arg: &str) -> SpecrsResult<Option<Vec<f64>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else { return Ok(None) };
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() || !obj.hasattr("__iter__")? {
        return Err(PyError::invalid(arg, format!("must be a sequence of numbers, got {}", type_name(obj))));
    }
    let mut out = Vec::new();
    for (i, x) in obj.try_iter()?.enumerate() {
        let x = x?;
        let bad = x.is_instance_of::<PyBool>() || x.is_instance_of::<PyString>() || x.is_none();
        match x.extract::<f64>() {
            Ok(v) if !bad => out.push(v),
            _ => return Err(PyError::invalid(format!("{arg}[{i}]"), format!("must be a number, got {}", type_name(&x)))),
        }
    }
    Ok(Some(out))
}

/// A name argument (scheme, verifier, kind): a `str`.
pub fn name(obj: &Bound<'_, PyAny>, arg: &str) -> SpecrsResult<String> {
    obj.cast::<PyString>()
        .map_err(|_| PyError::invalid(arg, format!("must be a string, got {}", type_name(obj))))?
        .to_str()
        .map(|s| s.to_owned())
        .map_err(|_| PyError::invalid(arg, "must be a valid UTF-8 string"))
}

/// An optional [`name`]: None stays None.
pub fn opt_name(obj: Option<&Bound<'_, PyAny>>, arg: &str) -> SpecrsResult<Option<String>> {
    match obj {
        Some(o) if !o.is_none() => name(o, arg).map(Some),
        _ => Ok(None),
    }
}

/// `_integer(value, arg, minimum)`: the same integer rule for Python-side validators
/// (`specrs._validate.integer`), so that a Python argument and a Rust-bound one are judged alike.
#[boundary]
#[pyfunction]
pub fn _integer(value: &Bound<'_, PyAny>, arg: &str, minimum: i64) -> PyResult<i64> {
    Ok(int(value, arg, minimum)?)
}

/// The error `pickle` (and `copy`) raise for a binding object that cannot be rebuilt from plain
/// data: a `TypeError` saying what to do instead.
pub fn not_picklable(what: &str, instead: &str) -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(format!("{what} objects cannot be pickled: {instead}"))
}
