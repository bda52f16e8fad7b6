//! Bindings for `specrs_core::tree`: the `DraftTree` class built level by level, `FlatTree`,
//! `TreeStep`, budgeted shapes and the exact-law test hooks.

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use specrs_core::tree::exact;
use specrs_core::tree::logits::Warp;
use specrs_core::tree::{shape, DistRef, DraftTree, TreeBatch};
use specrs_py_macros::boundary;

use crate::arrays::{probs, slice, token_ids, Probs};
use crate::convert;
use crate::error::{PyError, SpecrsResult};
use crate::rng::seed_from;

/// A non-negative index or count already extracted as i64 (the core's one integer rule).
fn nonneg(arg: &str, x: i64) -> SpecrsResult<usize> {
    Ok(specrs_core::validate::integer(arg, x as i128, 0)? as usize)
}

fn arr1_i64<'py>(py: Python<'py>, v: Vec<i64>) -> Bound<'py, PyArray1<i64>> {
    PyArray1::from_vec(py, v)
}

fn arr2<'py, T: numpy::Element>(py: Python<'py>, v: Vec<T>, rows: usize, cols: usize) -> SpecrsResult<Bound<'py, PyAny>> {
    let a = PyArray1::from_vec(py, v);
    Ok(a.reshape([rows, cols])?.into_any())
}

/// Borrowed rows of a dense (..., V) or sparse (..., K) + ids array: `lead` are the leading
/// dimensions (rows, or rows × slots for a batch), `cols` the last.
struct Rows<'py> {
    probs: Probs<'py>,
    ids: Option<numpy::PyReadonlyArrayDyn<'py, i64>>,
    lead: Vec<usize>,
    cols: usize,
}

impl Rows<'_> {
    fn count(&self) -> usize {
        self.lead.iter().product()
    }
}

/// Borrows `p` (and `ids`) with `ndims` allowed dimensions (e.g. 1 or 2 for one tree's rows).
fn rows<'py>(
    py: Python<'py>,
    p: &Bound<'py, PyAny>,
    ids: Option<&Bound<'py, PyAny>>,
    ndims: &[usize],
    what: &str,
) -> SpecrsResult<Rows<'py>> {
    let pr = probs(py, p, "probs")?;
    let shape = pr.shape();
    if !ndims.contains(&shape.len()) {
        return Err(PyError::invalid("probs", format!("must be {what}, got shape {shape:?}")));
    }
    let ids = match ids {
        None => None,
        Some(o) if o.is_none() => None,
        Some(o) => {
            let a = token_ids(py, o, "token_ids")?;
            let s = a.shape().to_vec();
            if s != shape {
                return Err(PyError::invalid("token_ids", format!("has shape {s:?} but `probs` has shape {shape:?}; they must match")));
            }
            Some(a)
        }
    };
    let cols = shape[shape.len() - 1];
    if cols == 0 {
        return Err(PyError::invalid("probs", "has no columns"));
    }
    Ok(Rows { probs: pr, ids, lead: shape[..shape.len() - 1].to_vec(), cols })
}

/// Calls `$body` with `$v: Vec<DistRef>` over the rows (flattened leading dimensions).
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

fn usize_list(v: impl IntoIterator<Item = usize>) -> Vec<i64> {
    v.into_iter().map(|x| x as i64).collect()
}

/// A draft tree built level by level (see the `.pyi` stub for the full contract).
#[pyclass(name = "DraftTree", module = "specrs._specrs")]
pub struct PyDraftTree {
    inner: DraftTree,
}

#[boundary]
#[pymethods]
impl PyDraftTree {
    #[new]
    #[pyo3(signature = (kind, *, branching=None, beam_width=None, depth=None, budget=None, acceptance=None, root_token=None, truncate=false, rng=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        kind: &Bound<'_, PyAny>,
        branching: Option<&Bound<'_, PyAny>>,
        beam_width: Option<&Bound<'_, PyAny>>,
        depth: Option<&Bound<'_, PyAny>>,
        budget: Option<&Bound<'_, PyAny>>,
        acceptance: Option<&Bound<'_, PyAny>>,
        root_token: Option<&Bound<'_, PyAny>>,
        truncate: bool,
        rng: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let kind = crate::names::tree_kind(py, kind)?;
        let spec = shape::ShapeSpec {
            branching: convert::opt_sizes(branching, "branching", 0)?,
            width: convert::opt_size(beam_width, "beam_width", 0)?,
            depth: convert::opt_size(depth, "depth", 0)?,
            budget: convert::opt_size(budget, "budget", 0)?,
            acceptance: convert::opt_floats(acceptance, "acceptance")?,
        };
        let shape = shape::for_tree(kind, &spec).map_err(PyError::from)?;
        let root_token = match root_token {
            Some(t) if !t.is_none() => Some(convert::int(t, "root_token", 0)?),
            _ => None,
        };
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

    /// Adds one level; returns the new node ids (a contiguous range).
    #[pyo3(signature = (probs, token_ids=None))]
    fn expand<'py>(
        &mut self,
        py: Python<'py>,
        probs: &Bound<'py, PyAny>,
        token_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rw = rows(py, probs, token_ids, &[1, 2], "1-D or 2-D (rows, V)")?;
        let tree = &mut self.inner;
        let new: Vec<usize> = (|| -> SpecrsResult<Vec<usize>> { with_rows!(rw, |v| Ok(py.detach(|| tree.expand(&v))?)) })()?;
        let (a, b) = (new.first().copied().unwrap_or(0), new.last().map_or(0, |x| x + 1));
        py.import("builtins")?.getattr("range")?.call1((a, b))
    }

    fn flatten(&self, py: Python<'_>, prefix_len: &Bound<'_, PyAny>) -> PyResult<PyFlatTree> {
        let pl = convert::size(prefix_len, "prefix_len", 0)?;
        let f = self.inner.flatten(pl).map_err(PyError::from)?;
        PyFlatTree::new(py, f)
    }

    /// Ancestor-or-self mask rows `start..stop` over node columns `0..cols` (default: all nodes).
    #[pyo3(signature = (start, stop, cols=None))]
    fn mask_rows<'py>(&self, py: Python<'py>, start: i64, stop: i64, cols: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        let (a, b) = (nonneg("start", start)?, nonneg("stop", stop)?);
        let c = cols.map(|c| nonneg("cols", c)).transpose()?.unwrap_or(self.inner.len());
        let m = self.inner.mask_rows(a..b.max(a), c).map_err(PyError::from)?;
        Ok(arr2(py, m, b.max(a) - a, c)?)
    }

    /// One verification step with target distributions at every node.
    #[pyo3(signature = (probs, token_ids=None, *, rng=None))]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        probs: &Bound<'py, PyAny>,
        token_ids: Option<&Bound<'py, PyAny>>,
        rng: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<PyTreeStep> {
        let rw = rows(py, probs, token_ids, &[1, 2], "1-D or 2-D (rows, V)")?;
        let seed = seed_from(py, rng)?;
        let tree = &self.inner;
        let n = rw.count();
        let step =
            (|| -> SpecrsResult<specrs_core::tree::Step> { with_rows!(rw, |v| Ok(py.detach(|| tree.verify(n, |i| v[i], seed))?)) })()?;
        let slots = step.keep.clone();
        Ok(PyTreeStep { s: step, slots })
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(crate::convert::not_picklable(
            "DraftTree",
            "a tree holds one decoding step's state; rebuild it with DraftTree(kind, ..., rng=seed), which reproduces it",
        ))
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

/// One flattened tree (arrays are created once; the dense mask only on first access).
#[pyclass(name = "FlatTree", module = "specrs._specrs")]
pub struct PyFlatTree {
    flat: specrs_core::tree::Flat,
    tokens: Py<PyAny>,
    positions: Py<PyAny>,
    depths: Py<PyAny>,
    parents: Py<PyAny>,
    retrieve: Py<PyAny>,
    expanded: Py<PyAny>,
    mask: std::sync::OnceLock<Py<PyAny>>,
}

impl PyFlatTree {
    fn new(py: Python<'_>, f: specrs_core::tree::Flat) -> PyResult<Self> {
        let leaves = f.retrieve.len().checked_div(f.retrieve_cols).unwrap_or(0);
        Ok(PyFlatTree {
            tokens: arr1_i64(py, f.tokens.clone()).into_any().unbind(),
            positions: arr1_i64(py, f.positions.clone()).into_any().unbind(),
            depths: arr1_i64(py, f.depths.clone()).into_any().unbind(),
            parents: arr1_i64(py, f.parents.clone()).into_any().unbind(),
            retrieve: arr2(py, f.retrieve.clone(), leaves, f.retrieve_cols)?.unbind(),
            expanded: PyArray1::from_vec(py, f.expanded.clone()).into_any().unbind(),
            flat: f,
            mask: std::sync::OnceLock::new(),
        })
    }

    /// Rows `rows` of the (T, cache_len + T) mask; a size-limit error blames `arg`.
    fn rows_mask(&self, arg: &str, rows: std::ops::Range<usize>, cache_len: usize) -> SpecrsResult<(Vec<bool>, usize)> {
        let n = self.flat.n;
        let r = rows.len();
        specrs_core::tree::flatten::check_mask_size(arg, r, cache_len.saturating_add(n))?;
        let m = self.flat.mask_rows(rows, n)?;
        if cache_len == 0 {
            return Ok((m, n));
        }
        let w = cache_len + n;
        let mut out = vec![true; r * w];
        for i in 0..r {
            out[i * w + cache_len..(i + 1) * w].copy_from_slice(&m[i * n..(i + 1) * n]);
        }
        Ok((out, w))
    }
}

#[boundary]
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
    fn mask(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(m) = self.mask.get() {
            return Ok(m.clone_ref(py));
        }
        let n = self.flat.n;
        let (m, _) = self.rows_mask("tree", 0..n, 0)?;
        let a = arr2(py, m, n, n)?.unbind();
        Ok(self.mask.get_or_init(|| a).clone_ref(py))
    }
    #[getter]
    fn retrieve(&self, py: Python<'_>) -> Py<PyAny> {
        self.retrieve.clone_ref(py)
    }
    #[getter]
    fn expanded(&self, py: Python<'_>) -> Py<PyAny> {
        self.expanded.clone_ref(py)
    }

    /// Rows `start..stop` of `full_mask(cache_len)`, without building the others.
    #[pyo3(signature = (start, stop, cache_len=0))]
    fn mask_rows<'py>(&self, py: Python<'py>, start: i64, stop: i64, cache_len: i64) -> PyResult<Bound<'py, PyAny>> {
        let (a, b, c) = (nonneg("start", start)?, nonneg("stop", stop)?, nonneg("cache_len", cache_len)?);
        let (m, w) = self.rows_mask("stop", a..b.max(a), c)?;
        Ok(arr2(py, m, b.max(a) - a, w)?)
    }

    /// (T, cache_len + T) boolean mask: True over the cached prefix, then the ancestor mask.
    fn full_mask<'py>(&self, py: Python<'py>, cache_len: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let c = convert::size(cache_len, "cache_len", 0)?;
        let (m, w) = self.rows_mask("cache_len", 0..self.flat.n, c)?;
        Ok(arr2(py, m, self.flat.n, w)?)
    }

    fn __len__(&self) -> usize {
        self.flat.n
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(crate::convert::not_picklable("FlatTree", "pickle its arrays (tokens, positions, mask, …) instead"))
    }
}

/// Result of one verification step (plain Python values).
#[pyclass(name = "TreeStep", module = "specrs._specrs")]
pub struct PyTreeStep {
    s: specrs_core::tree::Step,
    /// `keep` as positions of the forward that scored the tree (slots of a `TreeBatch`; for a
    /// single tree, the node ids themselves).
    slots: Vec<usize>,
}

#[boundary]
#[pymethods]
impl PyTreeStep {
    #[getter]
    fn tokens(&self) -> Vec<i64> {
        self.s.tokens.clone()
    }
    #[getter]
    fn path(&self) -> Vec<i64> {
        usize_list(self.s.path.iter().copied())
    }
    #[getter]
    fn keep(&self) -> Vec<i64> {
        usize_list(self.s.keep.iter().copied())
    }
    #[getter]
    fn keep_slots(&self) -> Vec<i64> {
        usize_list(self.slots.iter().copied())
    }
    /// Accepted draft tokens (the accepted path's length; vLLM num_accepted_tokens).
    #[getter]
    fn accepted_tokens(&self) -> usize {
        self.s.path.len()
    }
    /// Tokens emitted by this step (the path plus the residual/bonus token).
    #[getter]
    fn emitted_tokens(&self) -> usize {
        self.s.tokens.len()
    }
    /// Draft tokens the target scored (tree nodes, root excluded; vLLM num_draft_tokens).
    #[getter]
    fn drafted_tokens(&self) -> usize {
        self.s.n_nodes
    }
    /// Deprecated: `accepted_tokens` (`accepted` is a draft index elsewhere).
    #[getter]
    fn accepted(&self, py: Python<'_>) -> PyResult<usize> {
        crate::names::deprecated(py, "TreeStep.accepted is deprecated; use accepted_tokens")?;
        Ok(self.s.path.len())
    }
    /// Deprecated: `emitted_tokens`.
    #[getter]
    fn emitted(&self, py: Python<'_>) -> PyResult<usize> {
        crate::names::deprecated(py, "TreeStep.emitted is deprecated; use emitted_tokens")?;
        Ok(self.s.tokens.len())
    }
    #[getter]
    fn bonus(&self) -> bool {
        self.s.bonus
    }
    #[getter]
    fn depth_accepted(&self) -> Vec<bool> {
        self.s.depth_accepted.clone()
    }
    #[getter]
    fn depth_tried(&self) -> Vec<bool> {
        self.s.depth_tried.clone()
    }
    /// Deprecated: `drafted_tokens` (`n_nodes` counts the root everywhere else).
    #[getter]
    fn n_nodes(&self, py: Python<'_>) -> PyResult<usize> {
        crate::names::deprecated(py, "TreeStep.n_nodes is deprecated; use drafted_tokens (root excluded)")?;
        Ok(self.s.n_nodes)
    }
    fn __repr__(&self) -> String {
        format!("TreeStep(tokens={:?}, accepted_tokens={}, keep={:?})", self.s.tokens, self.s.path.len(), self.s.keep)
    }
    fn __reduce__(&self) -> PyResult<()> {
        Err(crate::convert::not_picklable("TreeStep", "read its fields (tokens, path, keep, …) instead"))
    }
}

/// (tokens, positions, real, mask) arrays of `TreeBatch.inputs`.
type SlotArrays<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

/// Draft trees of a batch of sequences in shared slots (see the stub and `tree::batch`).
#[pyclass(name = "TreeBatch", module = "specrs._specrs")]
pub struct PyTreeBatch {
    inner: TreeBatch,
}

fn index_list(arg: &str, v: Vec<i64>) -> SpecrsResult<Vec<usize>> {
    v.into_iter().map(|x| nonneg(arg, x)).collect()
}

#[boundary]
#[pymethods]
impl PyTreeBatch {
    #[new]
    #[pyo3(signature = (kind, shape, seeds, *, truncate=false))]
    fn new(
        py: Python<'_>,
        kind: &Bound<'_, PyAny>,
        shape: &Bound<'_, PyAny>,
        seeds: Vec<Bound<'_, PyAny>>,
        truncate: bool,
    ) -> PyResult<Self> {
        let kind = crate::names::tree_kind(py, kind)?;
        let shape = convert::sizes(shape, "shape", 0)?;
        let seeds: Vec<u64> = seeds.iter().map(|s| seed_from(py, Some(s))).collect::<SpecrsResult<_>>()?;
        Ok(PyTreeBatch { inner: TreeBatch::new(kind, shape, &seeds, truncate).map_err(PyError::from)? })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
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
    fn done(&self) -> bool {
        self.inner.done()
    }

    #[getter]
    fn levels(&self) -> usize {
        self.inner.levels()
    }

    #[getter]
    fn slots(&self) -> usize {
        self.inner.slots()
    }

    fn level_slots(&self, level: i64) -> PyResult<(usize, usize)> {
        let l = nonneg("level", level)?;
        if l >= self.inner.levels() {
            return Err(PyError::invalid("level", format!("is {l} but {} levels are built", self.inner.levels())).into());
        }
        let r = self.inner.level_slots(l);
        Ok((r.start, r.end))
    }

    fn frontier_sizes(&self) -> Vec<usize> {
        self.inner.frontier_sizes()
    }

    fn select(&mut self, rows: Vec<i64>) -> PyResult<()> {
        let rows = index_list("rows", rows)?;
        Ok(self.inner.select(&rows).map_err(PyError::from)?)
    }

    fn begin(&mut self, roots: Vec<i64>, prefix_lens: Vec<i64>, depths: Vec<i64>) -> PyResult<()> {
        let pl = index_list("prefix_lens", prefix_lens)?;
        let d = index_list("depths", depths)?;
        Ok(self.inner.begin(&roots, &pl, &d).map_err(PyError::from)?)
    }

    /// Expands one level: `probs[r, i]` is q at row r's i-th frontier node (r < rows, i <
    /// frontier size; extra columns of i are ignored).
    #[pyo3(signature = (probs, token_ids=None))]
    fn expand<'py>(&mut self, py: Python<'py>, probs: &Bound<'py, PyAny>, token_ids: Option<&Bound<'py, PyAny>>) -> PyResult<()> {
        let rw = rows(py, probs, token_ids, &[3], "3-D (rows, frontier, V)")?;
        let (b, f) = (rw.lead[0], rw.lead[1]);
        check_batch_rows(b, self.inner.len())?;
        self.inner.check_frontier_columns("probs", f).map_err(PyError::from)?;
        let tb = &mut self.inner;
        (|| -> SpecrsResult<()> { with_rows!(rw, |v| Ok(py.detach(|| tb.expand(|r, i| v[r * f + i]))?)) })()?;
        Ok(())
    }

    /// Expands one level from the draft's float32 logits `logits[r, i]` (rows × F × V), warped
    /// in Rust (temperature, optional top-k, softmax) in one pass per row.
    #[pyo3(signature = (logits, *, temperature, top_k=None))]
    fn expand_logits<'py>(
        &mut self,
        py: Python<'py>,
        logits: &Bound<'py, PyAny>,
        temperature: &Bound<'py, PyAny>,
        top_k: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let w = warp_of(temperature, top_k)?;
        let (a, shape) = logits_f32(py, logits, 3, "3-D (rows, frontier, V)")?;
        let (b, f, v) = (shape[0], shape[1], shape[2]);
        check_batch_rows(b, self.inner.len())?;
        self.inner.check_frontier_columns("logits", f).map_err(PyError::from)?;
        let x = slice(&a, "logits")?;
        let tb = &mut self.inner;
        py.detach(|| tb.expand_logits(|r, i| &x[(r * f + i) * v..(r * f + i + 1) * v], &w)).map_err(PyError::from)?;
        Ok(())
    }

    /// `walk_feed` from the target's float32 logits (rows × V) of the slots the walks need,
    /// warped by the kernel of `expand_logits` (only these rows are ever warped).
    #[pyo3(signature = (logits, *, temperature, top_k=None))]
    fn walk_feed_logits<'py>(
        &mut self,
        py: Python<'py>,
        logits: &Bound<'py, PyAny>,
        temperature: &Bound<'py, PyAny>,
        top_k: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Option<usize>>> {
        let w = warp_of(temperature, top_k)?;
        let (a, shape) = logits_f32(py, logits, 2, "2-D (rows, V)")?;
        check_batch_rows(shape[0], self.inner.len())?;
        let v = shape[1];
        let x = slice(&a, "logits")?;
        let needs = self.inner.walk_needs();
        let tb = &mut self.inner;
        py.detach(|| -> specrs_core::Result<()> {
            for (r, need) in needs.iter().enumerate() {
                if need.is_some() {
                    tb.walk_row_logits(r, &x[r * v..(r + 1) * v], &w)?;
                }
            }
            Ok(())
        })
        .map_err(PyError::from)?;
        Ok(self.inner.walk_needs())
    }

    /// (tokens, positions, real, mask) of a forward over levels `start..stop` (default: to the
    /// last level built): (rows, W) int64, (rows, W) int64, (rows, W) bool, (rows, W, P + C)
    /// bool, where `prefix` (rows, P) bool (default P = 0) gives each row's leading mask columns.
    #[pyo3(signature = (start, stop=None, *, frontier_only=false, pad_token=0, prefix=None))]
    fn inputs<'py>(
        &self,
        py: Python<'py>,
        start: i64,
        stop: Option<i64>,
        frontier_only: bool,
        pad_token: i64,
        prefix: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<SlotArrays<'py>> {
        let a = nonneg("start", start)?;
        let b = stop.map(|s| nonneg("stop", s)).transpose()?.unwrap_or(self.inner.levels());
        let (flags, p) = match prefix {
            None => (Vec::new(), 0),
            Some(obj) => prefix_flags(obj, self.inner.len())?,
        };
        let x = self.inner.inputs_after(a..b, frontier_only, pad_token, &flags, p).map_err(PyError::from)?;
        let (r, w, c) = (x.rows, x.width, x.cols);
        let mask = PyArray1::from_vec(py, x.mask).reshape([r, w, c])?.into_any();
        Ok((arr2(py, x.tokens, r, w)?, arr2(py, x.positions, r, w)?, arr2(py, x.real, r, w)?, mask))
    }

    /// Verifies every row with target rows `probs[r, s]` (rows × slots × V, or sparse) and
    /// returns one `TreeStep` per row.
    #[pyo3(signature = (probs, token_ids=None))]
    fn verify<'py>(
        &mut self,
        py: Python<'py>,
        probs: &Bound<'py, PyAny>,
        token_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<PyTreeStep>> {
        let rw = rows(py, probs, token_ids, &[3], "3-D (rows, slots, V)")?;
        let (b, s) = (rw.lead[0], rw.lead[1]);
        check_batch_rows(b, self.inner.len())?;
        if s < self.inner.slots() {
            return Err(PyError::invalid("probs", format!("has {s} slot columns but the trees use {}", self.inner.slots())).into());
        }
        let tb = &mut self.inner;
        (|| -> SpecrsResult<()> { with_rows!(rw, |v| Ok(py.detach(|| tb.verify(|r, j| v[r * s + j]))?)) })()?;
        self.steps()
    }

    /// Starts the verification walks; returns the slot each row needs (None: done).
    fn walk_begin(&mut self) -> PyResult<Vec<Option<usize>>> {
        self.inner.walk_begin().map_err(PyError::from)?;
        Ok(self.inner.walk_needs())
    }

    /// Feeds each row that needs one its target row `probs[r]` (rows × V, or sparse); returns
    /// the slots needed next.
    #[pyo3(signature = (probs, token_ids=None))]
    fn walk_feed<'py>(
        &mut self,
        py: Python<'py>,
        probs: &Bound<'py, PyAny>,
        token_ids: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Option<usize>>> {
        let rw = rows(py, probs, token_ids, &[2], "2-D (rows, V)")?;
        check_batch_rows(rw.lead[0], self.inner.len())?;
        let needs = self.inner.walk_needs();
        let tb = &mut self.inner;
        (|| -> SpecrsResult<()> {
            with_rows!(rw, |v| Ok(py.detach(|| -> specrs_core::Result<()> {
                for (r, need) in needs.iter().enumerate() {
                    if need.is_some() {
                        tb.walk_row(r, v[r])?;
                    }
                }
                Ok(())
            })?))
        })()?;
        Ok(self.inner.walk_needs())
    }

    /// One `TreeStep` per row (every walk must be complete).
    fn steps(&self) -> PyResult<Vec<PyTreeStep>> {
        (0..self.inner.len())
            .map(|r| {
                let (s, slots) = self.inner.step(r).map_err(PyError::from)?;
                Ok(PyTreeStep { s, slots })
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "TreeBatch(kind={:?}, shape={:?}, rows={}, levels={})",
            self.inner.kind.as_str(),
            self.inner.shape,
            self.inner.len(),
            self.inner.levels()
        )
    }
}

/// The warping settings of `expand_logits` / `walk_feed_logits` (a real number, an optional
/// integer ≥ 1; wrong types are named like bad values).
fn warp_of(temperature: &Bound<'_, PyAny>, top_k: Option<&Bound<'_, PyAny>>) -> SpecrsResult<Warp> {
    let bad = || PyError::invalid("temperature", "must be a real number");
    if temperature.is_instance_of::<pyo3::types::PyBool>() {
        return Err(bad());
    }
    let t: f64 = temperature.extract().map_err(|_| bad())?;
    let k = convert::opt_size(top_k, "top_k", 1)?;
    Ok(Warp::new(t, k)?)
}

/// Borrows float32 logits with `ndim` dimensions and a non-empty last one (other dtypes are
/// refused: the kernel reads float32, as the models' heads write it).
fn logits_f32<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    ndim: usize,
    what: &str,
) -> SpecrsResult<(numpy::PyReadonlyArrayDyn<'py, f32>, Vec<usize>)> {
    let a = match probs(py, obj, "logits")? {
        Probs::F32(a) => a,
        Probs::F64(_) => return Err(PyError::invalid("logits", "has dtype float64; pass float32 logits")),
    };
    let shape = a.shape().to_vec();
    if shape.len() != ndim || shape[ndim - 1] == 0 {
        return Err(PyError::invalid("logits", format!("must be {what} with V ≥ 1, got shape {shape:?}")));
    }
    Ok((a, shape))
}

/// The (rows, P) flags of `TreeBatch.inputs(prefix=...)`: a 2-D numpy bool array with one row
/// per batch row.
fn prefix_flags(obj: &Bound<'_, PyAny>, rows: usize) -> SpecrsResult<(Vec<bool>, usize)> {
    let a =
        obj.cast::<numpy::PyArray2<bool>>().map_err(|_| PyError::invalid("prefix", "must be a 2-D numpy bool array (rows, P)"))?.readonly();
    let shape = a.shape();
    if shape[0] != rows {
        return Err(PyError::invalid("prefix", format!("has {} rows but the batch has {rows}", shape[0])));
    }
    Ok((a.as_array().iter().copied().collect(), shape[1]))
}

fn check_batch_rows(got: usize, want: usize) -> SpecrsResult<()> {
    if got != want {
        return Err(PyError::invalid("probs", format!("has {got} rows but the batch has {want}")));
    }
    Ok(())
}

#[boundary]
#[pyfunction]
#[pyo3(signature = (kind, budget, *, depth=None))]
fn tree_shapes<'py>(
    py: Python<'py>,
    kind: &Bound<'py, PyAny>,
    budget: &Bound<'py, PyAny>,
    depth: Option<&Bound<'py, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    let kind = crate::names::tree_kind(py, kind)?;
    let b = convert::size(budget, "budget", 0)?;
    let d = convert::opt_size(depth, "depth", 0)?;
    let all = shape::shapes(kind, b, d).map_err(PyError::from)?;
    all.into_iter().map(|s| PyTuple::new(py, s)).collect()
}

#[boundary]
#[pyfunction]
#[pyo3(signature = (kind, budget, *, depth=None, acceptance=None))]
fn best_shape<'py>(
    py: Python<'py>,
    kind: &Bound<'py, PyAny>,
    budget: &Bound<'py, PyAny>,
    depth: Option<&Bound<'py, PyAny>>,
    acceptance: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let kind = crate::names::tree_kind(py, kind)?;
    let b = convert::size(budget, "budget", 0)?;
    let d = convert::opt_size(depth, "depth", 0)?;
    let acceptance = convert::opt_floats(acceptance, "acceptance")?;
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

/// Test hook: exact law of one step's emitted tokens on Markov toy models.
#[boundary]
#[pyfunction]
#[pyo3(signature = (kind, shape, p_table, q_table, root_token, *, truncate=false))]
fn tree_exact_law<'py>(
    py: Python<'py>,
    kind: &Bound<'py, PyAny>,
    shape: &Bound<'py, PyAny>,
    p_table: &Bound<'py, PyAny>,
    q_table: &Bound<'py, PyAny>,
    root_token: &Bound<'py, PyAny>,
    truncate: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let kind = crate::names::tree_kind(py, kind)?;
    let shape = convert::sizes(shape, "shape", 0)?;
    let root_token = convert::int(root_token, "root_token", 0)?;
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

/// E[accepted] of a kind's walk and of traversal on its trees, the per-depth optima α*_i, their
/// sum and the full-information optimum, on Markov toy tables (`specrs.tree_optima`;
/// docs/theory.md §14.5).
#[boundary]
#[pyfunction]
#[pyo3(signature = (kind, shape, p_table, q_table, root_token))]
#[allow(clippy::type_complexity)]
fn _tree_optima<'py>(
    py: Python<'py>,
    kind: &Bound<'py, PyAny>,
    shape: &Bound<'py, PyAny>,
    p_table: &Bound<'py, PyAny>,
    q_table: &Bound<'py, PyAny>,
    root_token: &Bound<'py, PyAny>,
) -> PyResult<(usize, f64, f64, Vec<f64>, f64, f64)> {
    let kind = crate::names::tree_kind(py, kind)?;
    let shape = convert::sizes(shape, "shape", 0)?;
    let root_token = convert::int(root_token, "root_token", 0)?;
    let (p, v) = table(py, p_table, "p_table")?;
    let (q, vq) = table(py, q_table, "q_table")?;
    if v != vq {
        return Err(PyError::invalid("q_table", format!("is {vq}×{vq} but `p_table` is {v}×{v}")).into());
    }
    let root = specrs_core::validate::token_id("root_token", root_token, v).map_err(PyError::from)?;
    let o = py.detach(|| specrs_core::bounds::tree_optima(kind, &shape, &p, &q, v, root)).map_err(PyError::from)?;
    Ok((o.depth, o.top_down, o.traversal, o.per_depth, o.bound, o.optimum))
}

/// A tree as (parent id, token) per non-root node.
type TreeKeyPy = Vec<(i64, i64)>;

/// Test hook: exact law of the tree built.
#[boundary]
#[pyfunction]
#[pyo3(signature = (kind, shape, q_table, root_token, *, truncate=false))]
fn tree_exact_trees<'py>(
    py: Python<'py>,
    kind: &Bound<'py, PyAny>,
    shape: &Bound<'py, PyAny>,
    q_table: &Bound<'py, PyAny>,
    root_token: &Bound<'py, PyAny>,
    truncate: bool,
) -> PyResult<(Vec<TreeKeyPy>, Bound<'py, PyAny>)> {
    let kind = crate::names::tree_kind(py, kind)?;
    let shape = convert::sizes(shape, "shape", 0)?;
    let root_token = convert::int(root_token, "root_token", 0)?;
    let (q, v) = table(py, q_table, "q_table")?;
    let root = specrs_core::validate::token_id("root_token", root_token, v).map_err(PyError::from)?;
    let trees = py.detach(|| exact::tree_law(kind, &shape, &q, v, root, truncate)).map_err(PyError::from)?;
    let keys = trees.iter().map(|(t, _)| exact::key(t)).collect();
    let probs: Vec<f64> = trees.iter().map(|x| x.1).collect();
    Ok((keys, PyArray1::from_vec(py, probs).into_any()))
}

/// The draft-tree shape of a generation method and its size (tree tokens the target scores per
/// call): `(branching, tree_size)`; `()` and 0 for a method without a draft.
#[boundary]
#[pyfunction]
#[pyo3(signature = (method, *, depth=None, width=None, branching=None, budget=None))]
fn method_shape<'py>(
    py: Python<'py>,
    method: &str,
    depth: Option<&Bound<'py, PyAny>>,
    width: Option<&Bound<'py, PyAny>>,
    branching: Option<&Bound<'py, PyAny>>,
    budget: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyTuple>, usize)> {
    let m = specrs_core::names::Method::parse("method", method).map_err(PyError::from)?;
    let spec = shape::ShapeSpec {
        branching: convert::opt_sizes(branching, "branching", 0)?,
        width: convert::opt_size(width, "width", 0)?,
        depth: convert::opt_size(depth, "depth", 0)?,
        budget: convert::opt_size(budget, "budget", 0)?,
        acceptance: None,
    };
    let s = shape::for_method(m, &spec).map_err(PyError::from)?;
    let size = m.row().tree_kind.map_or(0, |k| shape::tree_size(k, &s));
    Ok((PyTuple::new(py, s)?, size))
}

/// The `k` largest entries of each row of a float32 (rows, V) array: (values, ids), largest
/// first, ties to the lower id (the generation loop's top-k candidates on a CPU).
#[boundary]
#[pyfunction]
fn _top_k_rows<'py>(py: Python<'py>, logits: &Bound<'py, PyAny>, k: i64) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let a = probs(py, logits, "logits")?;
    let shape = a.shape();
    if shape.len() != 2 {
        return Err(PyError::invalid("logits", format!("must be 2-D (rows, V), got shape {shape:?}")).into());
    }
    let k = nonneg("k", k)?;
    let (r, v) = (shape[0], shape[1]);
    match &a {
        Probs::F32(x) => {
            let s = slice(x, "logits")?;
            let (vals, ids) = py.detach(|| specrs_core::tree::dist::top_k_rows(s, v, k)).map_err(PyError::from)?;
            Ok((arr2(py, vals, r, k)?, arr2(py, ids, r, k)?))
        }
        Probs::F64(x) => {
            let s = slice(x, "logits")?;
            let (vals, ids) = py.detach(|| specrs_core::tree::dist::top_k_rows(s, v, k)).map_err(PyError::from)?;
            Ok((arr2(py, vals, r, k)?, arr2(py, ids, r, k)?))
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_top_k_rows, m)?)?;
    m.add_function(wrap_pyfunction!(method_shape, m)?)?;
    m.add_class::<PyDraftTree>()?;
    m.add_class::<PyFlatTree>()?;
    m.add_class::<PyTreeStep>()?;
    m.add_class::<PyTreeBatch>()?;
    m.add_function(wrap_pyfunction!(tree_shapes, m)?)?;
    m.add_function(wrap_pyfunction!(best_shape, m)?)?;
    m.add_function(wrap_pyfunction!(tree_exact_law, m)?)?;
    m.add_function(wrap_pyfunction!(tree_exact_trees, m)?)?;
    m.add_function(wrap_pyfunction!(_tree_optima, m)?)?;
    Ok(())
}
