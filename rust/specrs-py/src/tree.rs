//! Bindings for `specrs_core::tree`: the `DraftTree` class built level by level, `FlatTree`,
//! `TreeStep`, budgeted shapes and the exact-law test hooks.

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use specrs_core::tree::exact;
use specrs_core::tree::{shape, DistRef, DraftTree, TreeKind};

use crate::arrays::{probs, slice, token_ids, Probs};
use crate::error::{PyError, SpecrsResult};
use crate::rng::seed_from;

fn nonneg(arg: &str, x: i64) -> SpecrsResult<usize> {
    if x < 0 {
        return Err(PyError::invalid(arg, format!("is {x}; must be non-negative")));
    }
    Ok(x as usize)
}

fn arr1_i64<'py>(py: Python<'py>, v: Vec<i64>) -> Bound<'py, PyArray1<i64>> {
    PyArray1::from_vec(py, v)
}

fn arr2<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>, rows: usize, cols: usize) -> SpecrsResult<Bound<'py, PyAny>> {
    let a = PyArray1::from_vec(py, v);
    Ok(a.reshape([rows, cols])?.into_any())
}

/// Borrowed rows of a dense (rows, V) or sparse (rows, K) + ids array.
struct Rows<'py> {
    probs: Probs<'py>,
    ids: Option<numpy::PyReadonlyArrayDyn<'py, i64>>,
    rows: usize,
    cols: usize,
}

fn rows<'py>(py: Python<'py>, p: &Bound<'py, PyAny>, ids: Option<&Bound<'py, PyAny>>) -> SpecrsResult<Rows<'py>> {
    let pr = probs(py, p, "probs")?;
    let shape = pr.shape();
    let (r, c) = match shape.len() {
        1 => (1, shape[0]),
        2 => (shape[0], shape[1]),
        _ => return Err(PyError::invalid("probs", format!("must be 1-D or 2-D (rows, V), got shape {shape:?}"))),
    };
    let ids = match ids {
        None => None,
        Some(o) if o.is_none() => None,
        Some(o) => {
            let a = token_ids(py, o, "token_ids")?;
            let s = a.shape().to_vec();
            let want: Vec<usize> = if shape.len() == 1 { vec![c] } else { vec![r, c] };
            if s != want {
                return Err(PyError::invalid("token_ids", format!("has shape {s:?} but `probs` has shape {want:?}; they must match")));
            }
            Some(a)
        }
    };
    if c == 0 {
        return Err(PyError::invalid("probs", "has no columns"));
    }
    Ok(Rows { probs: pr, ids, rows: r, cols: c })
}

/// Calls `$body` with `$v: Vec<DistRef>` over the rows.
macro_rules! with_rows {
    ($rw:expr, |$v:ident| $body:expr) => {{
        let ids: Option<&[i64]> = match &$rw.ids {
            Some(a) => Some(slice(a, "token_ids")?),
            None => None,
        };
        let c = $rw.cols;
        match &$rw.probs {
            Probs::F32(a) => {
                let s = slice(a, "probs")?;
                let $v: Vec<DistRef<'_>> = match ids {
                    None => s.chunks(c).map(DistRef::D32).collect(),
                    Some(ids) => s.chunks(c).zip(ids.chunks(c)).map(|(p, i)| DistRef::S32(i, p)).collect(),
                };
                $body
            }
            Probs::F64(a) => {
                let s = slice(a, "probs")?;
                let $v: Vec<DistRef<'_>> = match ids {
                    None => s.chunks(c).map(DistRef::D64).collect(),
                    Some(ids) => s.chunks(c).zip(ids.chunks(c)).map(|(p, i)| DistRef::S64(i, p)).collect(),
                };
                $body
            }
        }
    }};
}

/// A draft tree built level by level (see the `.pyi` stub for the full contract).
#[pyclass(name = "DraftTree", module = "specrs._specrs")]
pub struct PyDraftTree {
    inner: DraftTree,
}

#[allow(clippy::too_many_arguments)]
fn resolve_shape(
    kind: TreeKind,
    branching: Option<Vec<i64>>,
    beam_width: Option<i64>,
    depth: Option<i64>,
    budget: Option<i64>,
    acceptance: Option<Vec<f64>>,
) -> SpecrsResult<Vec<usize>> {
    let depth = depth.map(|d| nonneg("depth", d)).transpose()?;
    if depth == Some(0) {
        return Err(PyError::invalid("depth", "must be at least 1"));
    }
    if let Some(b) = budget {
        if branching.is_some() || beam_width.is_some() {
            return Err(PyError::invalid("budget", "give either `budget` or an explicit shape (`branching` / `beam_width`), not both"));
        }
        let b = nonneg("budget", b)?;
        return Ok(shape::best(kind, b, depth, acceptance.as_deref())?);
    }
    if kind == TreeKind::RsdS {
        if branching.is_some() {
            return Err(PyError::invalid("branching", "rsd-s takes `beam_width` and `depth`, not `branching`"));
        }
        let w = beam_width.ok_or_else(|| PyError::invalid("beam_width", "rsd-s needs `beam_width` (or `budget`)"))?;
        let w = nonneg("beam_width", w)?;
        if w == 0 {
            return Err(PyError::invalid("beam_width", "must be at least 1"));
        }
        let l = depth.ok_or_else(|| PyError::invalid("depth", "rsd-s needs `depth` (or `budget`)"))?;
        return Ok(vec![w; l]);
    }
    if beam_width.is_some() {
        return Err(PyError::invalid("beam_width", format!("only rsd-s takes `beam_width`; {} takes `branching`", kind.as_str())));
    }
    let b = branching.ok_or_else(|| PyError::invalid("branching", format!("{} needs `branching` (or `budget`)", kind.as_str())))?;
    let b: Vec<usize> = b.into_iter().map(|x| nonneg("branching", x)).collect::<SpecrsResult<_>>()?;
    if b.is_empty() {
        return Err(PyError::invalid("branching", "is empty; the tree needs depth ≥ 1"));
    }
    if let Some(d) = depth {
        if d != b.len() {
            return Err(PyError::invalid("depth", format!("is {d} but `branching` has {} levels", b.len())));
        }
    }
    Ok(b)
}

#[pymethods]
impl PyDraftTree {
    #[new]
    #[pyo3(signature = (kind, *, branching=None, beam_width=None, depth=None, budget=None, acceptance=None, root_token=None, truncate=false, rng=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        kind: &str,
        branching: Option<Vec<i64>>,
        beam_width: Option<i64>,
        depth: Option<i64>,
        budget: Option<i64>,
        acceptance: Option<Vec<f64>>,
        root_token: Option<i64>,
        truncate: bool,
        rng: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let kind = crate::names::tree_kind(py, kind)?;
        let shape = resolve_shape(kind, branching, beam_width, depth, budget, acceptance)?;
        let seed = seed_from(py, rng)?;
        let mut inner = DraftTree::new(kind, shape, root_token, seed).map_err(PyError::from)?;
        inner.truncate = truncate;
        Ok(PyDraftTree { inner })
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape.iter().copied())
    }

    #[getter]
    fn depth(&self) -> usize {
        self.inner.depth()
    }

    #[getter]
    fn n_nodes(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn done(&self) -> bool {
        self.inner.done()
    }

    fn frontier<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        arr1_i64(py, self.inner.frontier.iter().map(|&x| x as i64).collect())
    }

    fn tokens<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        arr1_i64(py, self.inner.nodes.iter().map(|n| n.token).collect())
    }

    fn parents<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        arr1_i64(py, self.inner.nodes.iter().map(|n| n.parent).collect())
    }

    /// Adds one level; returns the new node ids.
    #[pyo3(signature = (probs, token_ids=None))]
    fn expand<'py>(
        &mut self,
        py: Python<'py>,
        probs: &Bound<'py, PyAny>,
        token_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let rw = rows(py, probs, token_ids)?;
        let tree = &mut self.inner;
        let new: Vec<usize> = (|| -> SpecrsResult<Vec<usize>> {
            with_rows!(rw, |v| Ok(py.detach(|| tree.expand(&v))?))
        })()?;
        Ok(arr1_i64(py, new.into_iter().map(|x| x as i64).collect()))
    }

    fn flatten(&self, py: Python<'_>, prefix_len: i64) -> PyResult<PyFlatTree> {
        let pl = nonneg("prefix_len", prefix_len)?;
        let f = self.inner.flatten(pl).map_err(PyError::from)?;
        let n = f.n;
        let leaves = f.retrieve.len().checked_div(f.retrieve_cols).unwrap_or(0);
        Ok(PyFlatTree {
            n,
            tokens: arr1_i64(py, f.tokens).into_any().unbind(),
            positions: arr1_i64(py, f.positions).into_any().unbind(),
            depths: arr1_i64(py, f.depths).into_any().unbind(),
            parents: arr1_i64(py, f.parents).into_any().unbind(),
            mask: arr2(py, f.mask, n, n)?.unbind(),
            retrieve: arr2(py, f.retrieve, leaves, f.retrieve_cols)?.unbind(),
            expanded: PyArray1::from_vec(py, f.expanded).into_any().unbind(),
        })
    }

    /// One verification step with target distributions at every node.
    #[pyo3(signature = (probs, token_ids=None, rng=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        probs: &Bound<'py, PyAny>,
        token_ids: Option<&Bound<'py, PyAny>>,
        rng: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyTreeStep> {
        let rw = rows(py, probs, token_ids)?;
        let seed = seed_from(py, rng)?;
        let tree = &self.inner;
        let n = rw.rows;
        let step = (|| -> SpecrsResult<specrs_core::tree::Step> {
            with_rows!(rw, |v| Ok(py.detach(|| tree.verify(n, |i| v[i], seed))?))
        })()?;
        Ok(PyTreeStep { s: step })
    }

    fn __repr__(&self) -> String {
        format!(
            "DraftTree(kind={:?}, shape={:?}, n_nodes={}, level={}/{})",
            self.inner.kind.as_str(),
            self.inner.shape,
            self.inner.len(),
            self.inner.level,
            self.inner.depth()
        )
    }
}

/// One flattened tree (arrays are created once; see the stub).
#[pyclass(name = "FlatTree", module = "specrs._specrs")]
pub struct PyFlatTree {
    n: usize,
    tokens: Py<PyAny>,
    positions: Py<PyAny>,
    depths: Py<PyAny>,
    parents: Py<PyAny>,
    mask: Py<PyAny>,
    retrieve: Py<PyAny>,
    expanded: Py<PyAny>,
}

#[pymethods]
impl PyFlatTree {
    #[getter]
    fn tokens(&self, py: Python<'_>) -> Py<PyAny> {
        self.tokens.clone_ref(py)
    }
    #[getter]
    fn positions(&self, py: Python<'_>) -> Py<PyAny> {
        self.positions.clone_ref(py)
    }
    #[getter]
    fn depths(&self, py: Python<'_>) -> Py<PyAny> {
        self.depths.clone_ref(py)
    }
    #[getter]
    fn parents(&self, py: Python<'_>) -> Py<PyAny> {
        self.parents.clone_ref(py)
    }
    #[getter]
    fn mask(&self, py: Python<'_>) -> Py<PyAny> {
        self.mask.clone_ref(py)
    }
    #[getter]
    fn retrieve(&self, py: Python<'_>) -> Py<PyAny> {
        self.retrieve.clone_ref(py)
    }
    #[getter]
    fn expanded(&self, py: Python<'_>) -> Py<PyAny> {
        self.expanded.clone_ref(py)
    }

    /// (T, cache_len + T) boolean mask: True over the cached prefix, then the ancestor mask.
    fn full_mask<'py>(&self, py: Python<'py>, cache_len: i64) -> PyResult<Bound<'py, PyAny>> {
        let c = nonneg("cache_len", cache_len)?;
        let n = self.n;
        let m = self.mask.bind(py).cast::<numpy::PyArrayDyn<bool>>().map_err(PyErr::from)?.readonly();
        let ms = m.as_slice().map_err(|_| PyError::invalid("mask", "must be C-contiguous"))?;
        let mut out = vec![true; n * (c + n)];
        for i in 0..n {
            out[i * (c + n) + c..(i + 1) * (c + n)].copy_from_slice(&ms[i * n..(i + 1) * n]);
        }
        Ok(arr2(py, out, n, c + n)?)
    }

    fn __len__(&self) -> usize {
        self.n
    }
}

/// Result of one verification step.
#[pyclass(name = "TreeStep", module = "specrs._specrs")]
pub struct PyTreeStep {
    s: specrs_core::tree::Step,
}

#[pymethods]
impl PyTreeStep {
    #[getter]
    fn tokens<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        arr1_i64(py, self.s.tokens.clone())
    }
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        arr1_i64(py, self.s.path.iter().map(|&x| x as i64).collect())
    }
    #[getter]
    fn keep<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        arr1_i64(py, self.s.keep.iter().map(|&x| x as i64).collect())
    }
    #[getter]
    fn accepted(&self) -> usize {
        self.s.path.len()
    }
    #[getter]
    fn emitted(&self) -> usize {
        self.s.tokens.len()
    }
    #[getter]
    fn bonus(&self) -> bool {
        self.s.bonus
    }
    #[getter]
    fn depth_accepted<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        PyArray1::from_vec(py, self.s.depth_accepted.clone())
    }
    #[getter]
    fn depth_tried<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        PyArray1::from_vec(py, self.s.depth_tried.clone())
    }
    #[getter]
    fn n_nodes(&self) -> usize {
        self.s.n_nodes
    }
    fn __repr__(&self) -> String {
        format!("TreeStep(tokens={:?}, accepted={}, keep={:?})", self.s.tokens, self.s.path.len(), self.s.keep)
    }
}

#[pyfunction]
#[pyo3(signature = (kind, budget, *, depth=None))]
fn tree_shapes<'py>(py: Python<'py>, kind: &str, budget: i64, depth: Option<i64>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    let kind = crate::names::tree_kind(py, kind)?;
    let b = nonneg("budget", budget)?;
    let d = depth.map(|d| nonneg("depth", d)).transpose()?;
    let all = shape::shapes(kind, b, d).map_err(PyError::from)?;
    all.into_iter().map(|s| PyTuple::new(py, s)).collect()
}

#[pyfunction]
#[pyo3(signature = (kind, budget, *, depth=None, acceptance=None))]
fn best_shape<'py>(
    py: Python<'py>,
    kind: &str,
    budget: i64,
    depth: Option<i64>,
    acceptance: Option<Vec<f64>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let kind = crate::names::tree_kind(py, kind)?;
    let b = nonneg("budget", budget)?;
    let d = depth.map(|d| nonneg("depth", d)).transpose()?;
    let s = shape::best(kind, b, d, acceptance.as_deref()).map_err(PyError::from)?;
    PyTuple::new(py, s)
}

fn table(py: Python<'_>, obj: &Bound<'_, PyAny>, arg: &str) -> SpecrsResult<(Vec<f64>, usize)> {
    let a = probs(py, obj, arg)?;
    let s = a.shape();
    if s.len() != 2 || s[0] != s[1] {
        return Err(PyError::invalid(arg, format!("must be a square (V, V) table, got shape {s:?}")));
    }
    let v: Vec<f64> = match &a {
        Probs::F32(x) => slice(x, arg)?.iter().map(|&y| y as f64).collect(),
        Probs::F64(x) => slice(x, arg)?.to_vec(),
    };
    Ok((v, s[0]))
}

fn shape_vec(shape: Vec<i64>) -> SpecrsResult<Vec<usize>> {
    shape.into_iter().map(|x| nonneg("shape", x)).collect()
}

/// Test hook: exact law of one step's emitted tokens on Markov toy models.
#[pyfunction]
#[pyo3(signature = (kind, shape, p_table, q_table, root_token, *, truncate=false))]
fn tree_exact_law<'py>(
    py: Python<'py>,
    kind: &str,
    shape: Vec<i64>,
    p_table: &Bound<'py, PyAny>,
    q_table: &Bound<'py, PyAny>,
    root_token: i64,
    truncate: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let kind = crate::names::tree_kind(py, kind)?;
    let shape = shape_vec(shape)?;
    let (p, v) = table(py, p_table, "p_table")?;
    let (q, vq) = table(py, q_table, "q_table")?;
    if v != vq {
        return Err(PyError::invalid("q_table", format!("is {vq}×{vq} but `p_table` is {v}×{v}")).into());
    }
    let root = specrs_core::validate::token_id("root_token", root_token, v).map_err(PyError::from)?;
    let law = py.detach(|| exact::emitted_law(kind, &shape, &p, &q, v, root, truncate)).map_err(PyError::from)?;
    let cols = shape.len() + 1;
    let mut seqs = vec![-1i64; law.len() * cols];
    for (r, (s, _)) in law.iter().enumerate() {
        seqs[r * cols..r * cols + s.len()].copy_from_slice(s);
    }
    let probs: Vec<f64> = law.iter().map(|x| x.1).collect();
    let n = law.len();
    Ok((arr2(py, seqs, n, cols)?, PyArray1::from_vec(py, probs).into_any()))
}

/// A tree as (parent id, token) per non-root node.
type TreeKeyPy = Vec<(i64, i64)>;

/// Test hook: exact law of the tree built.
#[pyfunction]
#[pyo3(signature = (kind, shape, q_table, root_token, *, truncate=false))]
fn tree_exact_trees<'py>(
    py: Python<'py>,
    kind: &str,
    shape: Vec<i64>,
    q_table: &Bound<'py, PyAny>,
    root_token: i64,
    truncate: bool,
) -> PyResult<(Vec<TreeKeyPy>, Bound<'py, PyAny>)> {
    let kind = crate::names::tree_kind(py, kind)?;
    let shape = shape_vec(shape)?;
    let (q, v) = table(py, q_table, "q_table")?;
    let root = specrs_core::validate::token_id("root_token", root_token, v).map_err(PyError::from)?;
    let trees = py.detach(|| exact::tree_law(kind, &shape, &q, v, root, truncate)).map_err(PyError::from)?;
    let keys = trees.iter().map(|(t, _)| exact::key(t)).collect();
    let probs: Vec<f64> = trees.iter().map(|x| x.1).collect();
    Ok((keys, PyArray1::from_vec(py, probs).into_any()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDraftTree>()?;
    m.add_class::<PyFlatTree>()?;
    m.add_class::<PyTreeStep>()?;
    m.add_function(wrap_pyfunction!(tree_shapes, m)?)?;
    m.add_function(wrap_pyfunction!(best_shape, m)?)?;
    m.add_function(wrap_pyfunction!(tree_exact_law, m)?)?;
    m.add_function(wrap_pyfunction!(tree_exact_trees, m)?)?;
    Ok(())
}
