//! The Python boundary. Every exported function and method runs through [`call`], which the
//! `#[boundary]` attribute (crate `specrs-py-macros`) wraps around its body:
//!
//! * **No panic reaches Python.** A panic (a bug in specrs) is caught and raised as
//!   `specrs.InternalError`, a `SpecrsError`, instead of PyO3's `PanicException` (a
//!   `BaseException` that `except Exception` misses).
//! * **Ctrl-C.** The call is a `specrs_core::cancel` call: long loops poll [`poll_signals`] from
//!   the calling thread (also while rayon workers run with the GIL released), and a pending
//!   signal's exception (`KeyboardInterrupt`) replaces the result.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::thread::ThreadId;

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use specrs_core::cancel;

use crate::error::InternalError;

thread_local! {
    /// The exception a signal handler raised during the current call on this thread.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// The interpreter's main thread, the only one Python runs signal handlers on.
static MAIN: OnceLock<ThreadId> = OnceLock::new();

/// Runs one exported function body (see the module docs).
pub fn call<T, E: From<PyErr>>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let scope = cancel::enter();
    let out = catch_unwind(AssertUnwindSafe(f));
    let cancelled = cancel::status().is_err();
    drop(scope);
    if let Some(e) = take_pending() {
        return Err(e.into());
    }
    match out {
        Ok(_) if cancelled => Err(PyKeyboardInterrupt::new_err(()).into()),
        Ok(r) => r,
        Err(payload) => Err(internal_error(payload.as_ref()).into()),
    }
}

/// The exception for a cancelled core call: the one the signal handler raised, if any.
pub fn interrupted() -> PyErr {
    take_pending().unwrap_or_else(|| PyKeyboardInterrupt::new_err(()))
}

fn take_pending() -> Option<PyErr> {
    PENDING.with(|p| p.borrow_mut().take())
}

fn internal_error(payload: &(dyn std::any::Any + Send)) -> PyErr {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    InternalError::new_err(format!(
        "internal error in specrs {}: {msg}. This is a bug in specrs, not in your input; please report it with the call that raised it.",
        env!("CARGO_PKG_VERSION")
    ))
}

/// The cancellation hook: runs Python's pending signal handlers (`PyErr_CheckSignals`) on the
/// main thread, keeping the exception they raise for [`call`] to raise.
fn poll_signals() -> bool {
    if MAIN.get().is_some_and(|main| *main != std::thread::current().id()) {
        return false; // Python runs signal handlers on the main thread only
    }
    Python::attach(|py| match py.check_signals() {
        Ok(()) => false,
        Err(e) => {
            PENDING.with(|p| *p.borrow_mut() = Some(e));
            true
        }
    })
}

/// Installs the hook; called once at module import.
pub fn install(py: Python<'_>) -> PyResult<()> {
    let threading = py.import("threading")?;
    let on_main = threading.call_method0("current_thread")?.is(&threading.call_method0("main_thread")?);
    if on_main {
        let _ = MAIN.set(std::thread::current().id());
    }
    cancel::set_poll_hook(poll_signals);
    Ok(())
}
