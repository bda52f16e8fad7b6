//! The registry (`specrs_core::names`) as plain Python data: `_registry()` returns one list of
//! tuples per table; `specrs.names` turns them into read-only mappings of frozen records.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use specrs_core::names::{Method, Scheme, TreeKind, Verifier};
use specrs_py_macros::boundary;

fn names<T: Copy>(list: Vec<T>, f: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    list.into_iter().map(f).collect()
}

/// `_registry() -> dict`: {"schemes": [...], "verifiers": [...], "tree_kinds": [...],
/// "methods": [...]}, each a list of tuples in registry order (fields in the order of the
/// records in `specrs.names`).
#[boundary]
#[pyfunction]
pub fn _registry(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let schemes: Vec<_> = Scheme::ALL
        .iter()
        .map(|&s| {
            let r = s.row();
            (r.name, r.description, r.paper, r.distinct, r.deterministic, r.n, r.aliases.to_vec(), names(s.verifiers(), Verifier::as_str))
        })
        .collect();
    d.set_item("schemes", schemes)?;
    let verifiers: Vec<_> = Verifier::ALL
        .iter()
        .map(|&v| {
            let r = v.row();
            (
                r.name,
                r.description,
                r.paper,
                names(v.schemes(), Scheme::as_str),
                r.default_scheme.map(Scheme::as_str),
                r.n,
                names(r.optimal_for.list(), Scheme::as_str),
            )
        })
        .collect();
    d.set_item("verifiers", verifiers)?;
    let kinds: Vec<_> = TreeKind::ALL
        .iter()
        .map(|&k| {
            let r = k.row();
            (r.name, r.description, r.paper, r.verifier.as_str(), r.scheme.as_str(), r.max_branching, r.deprecated.to_vec())
        })
        .collect();
    d.set_item("tree_kinds", kinds)?;
    let methods: Vec<_> = Method::ALL
        .iter()
        .map(|&m| {
            let r = m.row();
            (
                r.name,
                r.description,
                r.paper,
                r.tree_kind.map(TreeKind::as_str),
                r.shape.as_str(),
                r.default_depth,
                r.default_width,
                r.default_shape(),
            )
        })
        .collect();
    d.set_item("methods", methods)?;
    Ok(d)
}

/// Parses a tree kind, warning (DeprecationWarning) on an old spelling such as `rsd_s`.
pub fn tree_kind(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<TreeKind> {
    let s = crate::convert::name(obj, "kind")?;
    let (kind, deprecated) = TreeKind::parse_name("kind", &s).map_err(crate::PyError::from)?;
    if deprecated {
        self::deprecated(py, &format!("tree kind {s:?} is deprecated; use {:?}", kind.as_str()))?;
    }
    Ok(kind)
}

/// Emits a DeprecationWarning with `msg` (for renamed attributes and spellings).
pub fn deprecated(py: Python<'_>, msg: &str) -> PyResult<()> {
    let msg = std::ffi::CString::new(msg)?;
    PyErr::warn(py, &py.get_type::<pyo3::exceptions::PyDeprecationWarning>(), &msg, 1)
}
