//! Cooperative cancellation: how a long call notices Ctrl-C.
//!
//! A *call* is one entry from the outside (one Python call, opened by [`enter`] in the bindings).
//! Long loops call [`check`]`(ops)` every so often, passing roughly how many elementary steps they
//! did since the last check; it is a thread-local counter decrement on the fast path. Once per
//! [`SLICE`] steps it looks at the call's cancellation flag, and on the thread that opened the
//! call it also asks the *poll hook* (installed once by the bindings: "has Ctrl-C been pressed?",
//! i.e. `PyErr_CheckSignals`) at most every [`POLL`]. A cancelled call returns
//! [`Error::Interrupted`] from `check`; loops that return no `Result` may simply stop (`if
//! check(n).is_err() { break }`): the bindings discard the result of a cancelled call and raise
//! the interrupt instead.
//!
//! Work on the rayon pool goes through [`crate::parallel::map`], which carries the call to the
//! worker threads (so their `check`s see its flag) and, while the opening thread waits, polls the
//! hook from that thread. Without a hook (plain Rust use) `check` never fails.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Steps between two looks at the cancellation flag (≈ 0.05–0.5 ms of work).
pub const SLICE: i64 = 1 << 16;
/// Least time between two calls of the poll hook.
pub const POLL: Duration = Duration::from_millis(20);

/// The shared state of one call: set once when it is cancelled.
#[derive(Debug, Default)]
pub struct Call {
    cancelled: AtomicBool,
}

impl Call {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

static HOOK: OnceLock<fn() -> bool> = OnceLock::new();

/// Installs the poll hook (once per process; later calls are ignored). It is called only on the
/// thread that opened a call, at most every [`POLL`], and returns true to cancel the call.
pub fn set_poll_hook(hook: fn() -> bool) {
    let _ = HOOK.set(hook);
}

thread_local! {
    /// The call this thread works for (opened here, or carried to a pool worker).
    static CURRENT: Cell<Option<&'static Call>> = const { Cell::new(None) };
    /// Nesting depth of [`enter`] on this thread (> 0: this thread opened the current call).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static BUDGET: Cell<i64> = const { Cell::new(SLICE) };
    static LAST_POLL: Cell<Option<Instant>> = const { Cell::new(None) };
    /// This thread's call state, allocated once and reused by every call it opens.
    static OWN: Cell<Option<&'static Call>> = const { Cell::new(None) };
}

/// Marks the current call on this thread until dropped (see [`enter`]).
pub struct Scope {
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Opens a call on this thread (nested calls join the outer one). The bindings do this at every
/// entry point; core code never needs to.
pub fn enter() -> Scope {
    let depth = DEPTH.with(|d| d.get());
    if depth == 0 {
        let own = OWN.with(|o| match o.get() {
            Some(c) => c,
            None => {
                // One small state per OS thread that ever opens a call, kept for its lifetime.
                let c: &'static Call = Box::leak(Box::default());
                o.set(Some(c));
                c
            }
        });
        own.cancelled.store(false, Ordering::Relaxed);
        CURRENT.with(|c| c.set(Some(own)));
        LAST_POLL.with(|t| t.set(None));
        BUDGET.with(|b| b.set(SLICE));
    }
    DEPTH.with(|d| d.set(depth + 1));
    Scope { _not_send: std::marker::PhantomData }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| d.get()) - 1;
        DEPTH.with(|d| d.set(depth));
        if depth == 0 {
            CURRENT.with(|c| c.set(None));
        }
    }
}

/// The call this thread works for, if any.
pub fn current() -> Option<&'static Call> {
    CURRENT.with(|c| c.get())
}

/// Whether this thread opened the current call (so it may poll the hook).
pub fn is_opener() -> bool {
    DEPTH.with(|d| d.get()) > 0
}

/// Runs `f` on this thread as part of `call` (used by [`crate::parallel`] on pool workers).
pub fn with_call<R>(call: Option<&'static Call>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<&'static Call>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(call)));
    f()
}

/// Records `ops` steps of work; `Err(Error::Interrupted)` once the current call is cancelled.
/// Cheap enough for every iteration of a loop whose body costs ≳ 20 ns; pass the body's size for
/// bigger bodies (e.g. `check(v)` after a pass over a row of length v).
#[inline]
pub fn check(ops: usize) -> Result<()> {
    let left = BUDGET.with(|b| {
        let left = b.get().saturating_sub(ops.min(i64::MAX as usize) as i64);
        b.set(left);
        left
    });
    if left > 0 {
        return Ok(());
    }
    slow_check()
}

#[cold]
fn slow_check() -> Result<()> {
    BUDGET.with(|b| b.set(SLICE));
    let Some(call) = current() else { return Ok(()) };
    if call.is_cancelled() || (is_opener() && poll_hook()) {
        call.cancel();
        return Err(Error::Interrupted);
    }
    Ok(())
}

/// Whether a poll hook is installed.
pub fn has_hook() -> bool {
    HOOK.get().is_some()
}

/// Asks the hook (at most every [`POLL`]) whether to cancel; only on the opening thread.
pub(crate) fn poll_hook() -> bool {
    let Some(hook) = HOOK.get() else { return false };
    let now = Instant::now();
    let due = LAST_POLL.with(|t| match t.get() {
        None => {
            t.set(Some(now));
            false
        }
        Some(last) if now.duration_since(last) >= POLL => {
            t.set(Some(now));
            true
        }
        Some(_) => false,
    });
    due && hook()
}

/// `Err(Error::Interrupted)` if the current call was cancelled (no polling).
pub fn status() -> Result<()> {
    match current() {
        Some(c) if c.is_cancelled() => Err(Error::Interrupted),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_pass_without_a_call_and_fail_once_cancelled() {
        for _ in 0..10 {
            check(SLICE as usize).unwrap();
        }
        let scope = enter();
        check(1).unwrap();
        current().unwrap().cancel();
        // The fast path does not look; the next slice does, and so does `status`.
        assert_eq!(status(), Err(Error::Interrupted));
        assert_eq!(check(SLICE as usize), Err(Error::Interrupted));
        {
            // A nested entry joins the call, it does not reset it.
            let _inner = enter();
            assert_eq!(status(), Err(Error::Interrupted));
        }
        drop(scope);
        assert!(current().is_none());
        // A new call starts clean.
        let _scope = enter();
        assert_eq!(status(), Ok(()));
        check(SLICE as usize).unwrap();
    }

    #[test]
    fn with_call_carries_and_restores() {
        let c: &'static Call = Box::leak(Box::default());
        c.cancel();
        assert!(current().is_none());
        let r = std::thread::spawn(move || with_call(Some(c), || check(SLICE as usize))).join().unwrap();
        assert_eq!(r, Err(Error::Interrupted));
        with_call(Some(c), || assert!(current().is_some()));
        assert!(current().is_none());
    }
}
