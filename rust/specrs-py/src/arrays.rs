//! Borrowing numpy inputs. Probability arrays may be float32 or float64 (borrowed without a copy
//! when C-contiguous and in native byte order; otherwise one copy; the core accumulates in f64).
//! Other dtypes (integer, bool, complex, float16, longdouble) are rejected with an error naming the
//! argument. Python sequences are converted with `numpy.asarray` first.
//!
//! **Mixed precision rule:** when `p` and `q` have different float dtypes, the float32 one is
//! promoted to float64 (one copy) and the call runs in float64 with the float64 tolerance.

use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::error::{PyError, SpecrsResult};

/// A borrowed float array of either precision.
pub enum Probs<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
}

impl<'py> Probs<'py> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Probs::F32(a) => a.shape().to_vec(),
            Probs::F64(a) => a.shape().to_vec(),
        }
    }

    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    pub fn is_f32(&self) -> bool {
        matches!(self, Probs::F32(_))
    }

    /// Copies into a new f64 array (used to promote a float32 partner).
    fn promoted(&self, py: Python<'py>) -> SpecrsResult<Probs<'py>> {
        match self {
            Probs::F64(a) => Ok(Probs::F64(a.clone())),
            Probs::F32(a) => {
                let arr = a.as_array().mapv(|x| x as f64);
                let obj = numpy::PyArray::from_owned_array(py, arr);
                Ok(Probs::F64(obj.readonly()))
            }
        }
    }
}

fn as_contiguous<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> SpecrsResult<Bound<'py, PyAny>> {
    let np = py.import("numpy")?;
    Ok(np.call_method1("ascontiguousarray", (obj,))?)
}

/// Borrows `obj` as a float32/float64 array, naming `arg` in any error.
pub fn probs<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>, arg: &str) -> SpecrsResult<Probs<'py>> {
    let np = py.import("numpy")?;
    let arr = if obj.is_instance(&np.getattr("ndarray")?)? {
        obj.clone()
    } else {
        np.call_method1("asarray", (obj,)).map_err(|e| PyError::invalid(arg, format!("cannot be converted to an array: {e}")))?
    };
    let dtype = arr.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    let itemsize: usize = dtype.getattr("itemsize")?.extract()?;
    if kind != "f" || (itemsize != 4 && itemsize != 8) {
        let name: String = dtype.getattr("name")?.extract()?;
        return Err(PyError::invalid(arg, format!("has dtype {name}; pass a float32 or float64 array")));
    }
    // Big-endian (non-native) arrays are converted to native order (one copy).
    let arr = if !dtype.getattr("isnative")?.extract::<bool>()? {
        arr.call_method1("astype", (dtype.call_method1("newbyteorder", ("=",))?,))?
    } else {
        arr
    };
    let arr = if arr.getattr("flags")?.getattr("c_contiguous")?.extract::<bool>()? { arr } else { as_contiguous(py, &arr)? };
    if let Ok(a) = arr.cast::<PyArrayDyn<f64>>() {
        return Ok(Probs::F64(a.readonly()));
    }
    if let Ok(a) = arr.cast::<PyArrayDyn<f32>>() {
        return Ok(Probs::F32(a.readonly()));
    }
    let name: String = arr.getattr("dtype")?.getattr("name")?.extract()?;
    Err(PyError::invalid(arg, format!("has dtype {name}; pass a float32 or float64 array")))
}

/// Borrows a (p, q) pair with one common dtype, promoting a float32 partner of a float64 array.
pub fn prob_pair<'py>(py: Python<'py>, p: &Bound<'py, PyAny>, q: &Bound<'py, PyAny>) -> SpecrsResult<(Probs<'py>, Probs<'py>)> {
    let p = probs(py, p, "p")?;
    let q = probs(py, q, "q")?;
    if p.is_f32() != q.is_f32() {
        return Ok((p.promoted(py)?, q.promoted(py)?));
    }
    Ok((p, q))
}

/// Borrows an integer array (token ids) as int64, converting other integer dtypes (one copy).
pub fn token_ids<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>, arg: &str) -> SpecrsResult<PyReadonlyArrayDyn<'py, i64>> {
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (obj,)).map_err(|e| PyError::invalid(arg, format!("cannot be converted to an array: {e}")))?;
    let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
    if kind != "i" && kind != "u" {
        let name: String = arr.getattr("dtype")?.getattr("name")?.extract()?;
        return Err(PyError::invalid(arg, format!("has dtype {name}; pass an integer array of token ids")));
    }
    // uint64 ids above 2**63 - 1 would wrap to negatives as int64: report them as they are.
    if kind == "u" && arr.getattr("dtype")?.getattr("itemsize")?.extract::<usize>()? == 8 && arr.getattr("size")?.extract::<usize>()? > 0 {
        let max: u64 = arr.call_method0("max")?.extract()?;
        if max > i64::MAX as u64 {
            return Err(PyError::invalid(arg, format!("token id {max} is outside the vocabulary")));
        }
    }
    let arr = np.call_method1("ascontiguousarray", (arr, np.getattr("int64")?))?;
    let a = arr.cast::<PyArrayDyn<i64>>().map_err(|_| PyError::invalid(arg, "could not be read as int64"))?;
    Ok(a.readonly())
}

/// Shape check helper: `ndim` must be one of `allowed`.
pub fn expect_ndim(arg: &str, shape: &[usize], allowed: &[usize]) -> SpecrsResult<()> {
    if !allowed.contains(&shape.len()) {
        let want = allowed.iter().map(|d| format!("{d}-D")).collect::<Vec<_>>().join(" or ");
        return Err(PyError::invalid(arg, format!("must be {want}, got shape {shape:?}")));
    }
    Ok(())
}

/// Contiguous slice of a borrowed array (contiguity was ensured when it was borrowed).
pub fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArrayDyn<'_, T>, arg: &str) -> SpecrsResult<&'a [T]> {
    a.as_slice().map_err(|_| PyError::invalid(arg, "must be C-contiguous"))
}

/// Runs `$body` with `$ps`, `$qs` bound to the contiguous slices of a same-dtype `(Probs, Probs)`
/// pair, monomorphised for f32 and f64.
#[macro_export]
macro_rules! with_pair {
    ($p:expr, $q:expr, |$ps:ident, $qs:ident| $body:expr) => {
        match (&$p, &$q) {
            ($crate::arrays::Probs::F64(a), $crate::arrays::Probs::F64(b)) => {
                let $ps: &[f64] = $crate::arrays::slice(a, "p")?;
                let $qs: &[f64] = $crate::arrays::slice(b, "q")?;
                $body
            }
            ($crate::arrays::Probs::F32(a), $crate::arrays::Probs::F32(b)) => {
                let $ps: &[f32] = $crate::arrays::slice(a, "p")?;
                let $qs: &[f32] = $crate::arrays::slice(b, "q")?;
                $body
            }
            _ => Err($crate::error::PyError::invalid("q", "must have the same dtype as `p`"))?,
        }
    };
}

/// Runs `$body` with `$s` bound to the contiguous slice of one `Probs`, for f32 and f64.
#[macro_export]
macro_rules! with_probs {
    ($a:expr, $arg:expr, |$s:ident| $body:expr) => {
        match &$a {
            $crate::arrays::Probs::F64(a) => {
                let $s: &[f64] = $crate::arrays::slice(a, $arg)?;
                $body
            }
            $crate::arrays::Probs::F32(a) => {
                let $s: &[f32] = $crate::arrays::slice(a, $arg)?;
                $body
            }
        }
    };
}

/// An explicit joint draft law given from Python: `drafts` (m, n) token ids and `probs` (m,)
/// float32/float64, shape-checked. Returns the borrowed table, n and the borrowed probabilities.
pub fn explicit_law<'py>(
    py: Python<'py>,
    drafts: &Bound<'py, PyAny>,
    probs_obj: &Bound<'py, PyAny>,
) -> SpecrsResult<(PyReadonlyArrayDyn<'py, i64>, usize, Probs<'py>)> {
    let table = token_ids(py, drafts, "drafts")?;
    expect_ndim("drafts", table.shape(), &[2])?;
    let pr = probs(py, probs_obj, "probs")?;
    expect_ndim("probs", &pr.shape(), &[1])?;
    let (rows, n) = (table.shape()[0], table.shape()[1]);
    if pr.shape()[0] != rows {
        return Err(PyError::invalid("probs", format!("has {} entries but `drafts` has {rows} rows", pr.shape()[0])));
    }
    Ok((table, n, pr))
}
