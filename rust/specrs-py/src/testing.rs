//! Hidden test hooks (`specrs._specrs._panic_for_test`, `_spin_for_test`): they exercise the
//! boundary's panic and Ctrl-C handling on purpose, and the table of size limits.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use specrs_core::{cancel, limits, parallel};
use specrs_py_macros::boundary;

use crate::error::{PyError, SpecrsResult};

/// Panics on purpose: `"gil"` with the GIL held, `"detached"` with it released, `"worker"` on a
/// rayon worker thread.
#[boundary]
#[pyfunction]
fn _panic_for_test(py: Python<'_>, place: &str) -> SpecrsResult<()> {
    match place {
        "gil" => panic!("test panic with the GIL held"),
        "detached" => py.detach(|| panic!("test panic with the GIL released")),
        "worker" => {
            py.detach(|| {
                parallel::map(64, |i| {
                    if i == 63 {
                        panic!("test panic on a worker thread")
                    }
                })
            })?;
            Ok(())
        }
        _ => Err(PyError::invalid("place", "must be \"gil\", \"detached\" or \"worker\"")),
    }
}

/// Busy work for `seconds` with the GIL released (on `parallel` rayon workers, else on the
/// calling thread), checking for cancellation like every long loop. Returns the seconds spent.
#[boundary]
#[pyfunction]
#[pyo3(signature = (seconds, parallel=false))]
fn _spin_for_test(py: Python<'_>, seconds: f64, parallel: bool) -> SpecrsResult<f64> {
    let start = std::time::Instant::now();
    let spin = || -> specrs_core::Result<()> {
        let mut x = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            for i in 0..1000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            cancel::check(1000)?;
        }
        Ok(())
    };
    py.detach(|| -> specrs_core::Result<()> {
        if parallel {
            parallel::map(4 * parallel::threads(), |_| spin())?.into_iter().collect()
        } else {
            spin()
        }
    })?;
    Ok(start.elapsed().as_secs_f64())
}

/// The size limits of `specrs_core::limits` by name (`specrs.LIMITS`).
#[boundary]
#[pyfunction]
fn _limits<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in limits::ALL {
        d.set_item(*name, *value)?;
    }
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_spin_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_limits, m)?)?;
    Ok(())
}
