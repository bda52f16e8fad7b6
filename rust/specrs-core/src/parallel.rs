//! The crate's one door to rayon: a fork-safe pool and a cancellable parallel map.
//!
//! **Fork safety.** A forked child inherits a copy of the parent's memory but none of its threads:
//! a rayon pool built in the parent looks alive in the child and its first job waits forever
//! (`multiprocessing` with the fork start method, PyTorch DataLoader workers). So the crate never
//! uses rayon's global pool: [`map`] runs on a pool owned here and tagged with the process id that
//! built it; a different pid means this is a forked child, and a fresh pool is built (the
//! inherited one is leaked: dropping it would touch locks copied in whatever state the fork left
//! them). The pid check is one `getpid` per parallel call, and catches every kind of fork.
//!
//! **Cancellation.** [`map`] carries the current [`cancel`] call to the workers, skips the items
//! left once it is cancelled, and when called on the thread that opened the call it waits in a
//! loop that polls the cancellation hook, so Ctrl-C is noticed while the workers run.
//!
//! Thread count: `RAYON_NUM_THREADS` if set, else the number of CPUs (rayon's default).

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::cancel;
use crate::{Error, Result};

struct Owned {
    pid: u32,
    pool: rayon::ThreadPool,
}

static POOL: AtomicPtr<Owned> = AtomicPtr::new(std::ptr::null_mut());

/// This process's pool (None if its threads cannot be started: then callers run serially).
fn pool() -> Option<&'static rayon::ThreadPool> {
    let pid = std::process::id();
    let cur = POOL.load(Ordering::Acquire);
    // SAFETY: entries are leaked, never freed once published.
    if let Some(owned) = unsafe { cur.as_ref() } {
        if owned.pid == pid {
            return Some(&owned.pool);
        }
    }
    let pool = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("specrs-{i}")).build().ok()?;
    let fresh = Box::into_raw(Box::new(Owned { pid, pool }));
    match POOL.compare_exchange(cur, fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `fresh` was just published and is never freed.
        Ok(_) => Some(unsafe { &(*fresh).pool }),
        Err(now) => {
            // Another thread published first: use its pool (same pid) and drop ours.
            // SAFETY: `fresh` was never shared; `now` is a published (leaked) entry.
            drop(unsafe { Box::from_raw(fresh) });
            let owned = unsafe { now.as_ref() }?;
            if owned.pid == pid {
                Some(&owned.pool)
            } else {
                None
            }
        }
    }
}

/// Number of threads [`map`] uses.
pub fn threads() -> usize {
    pool().map_or(1, |p| p.current_num_threads())
}

/// `f(0), …, f(len − 1)` in parallel, in order. `Err(Error::Interrupted)` when the current call
/// was cancelled (the remaining items are skipped). Per-item errors are the caller's business
/// (return a `Result` from `f`). The only place the crate calls rayon.
pub fn map<T, F>(len: usize, f: F) -> Result<Vec<T>>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let call = cancel::current();
    if len <= 1 {
        let out: Vec<T> = (0..len).map(&f).collect();
        return cancel::status().map(|_| out);
    }
    let body = || -> Option<Vec<T>> {
        (0..len)
            .into_par_iter()
            .map(|i| match call {
                Some(c) if c.is_cancelled() => None,
                _ => Some(cancel::with_call(call, || f(i))),
            })
            .collect()
    };
    let out = match pool() {
        None => (0..len).map(&f).map(Some).collect(),
        // Already on a worker (nested parallelism): stay on this pool.
        Some(_) if rayon::current_thread_index().is_some() => body(),
        Some(pool) if call.is_some() && cancel::is_opener() && cancel::has_hook() => drive(pool, body),
        Some(pool) => pool.install(body),
    };
    match out {
        Some(v) => cancel::status().map(|_| v),
        None => Err(Error::Interrupted),
    }
}

/// Runs `body` on the pool while this (the opening) thread polls the cancellation hook.
fn drive<R: Send>(pool: &rayon::ThreadPool, body: impl FnOnce() -> Option<R> + Send) -> Option<R> {
    let result: Mutex<Option<Option<R>>> = Mutex::new(None);
    let done = AtomicBool::new(false);
    let waiter = std::thread::current();
    let call = cancel::current();
    pool.in_place_scope(|s| {
        s.spawn(|_| {
            // Set `done` even if `body` panics (the scope then re-raises the panic here).
            struct Done<'a>(&'a AtomicBool, &'a std::thread::Thread);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Release);
                    self.1.unpark();
                }
            }
            let _done = Done(&done, &waiter);
            let r = cancel::with_call(call, body);
            *result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        });
        while !done.load(Ordering::Acquire) {
            std::thread::park_timeout(cancel::POLL);
            if !done.load(Ordering::Acquire) && cancel::poll_hook() {
                if let Some(c) = call {
                    c.cancel();
                }
            }
        }
    });
    result.into_inner().unwrap_or_else(|e| e.into_inner()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_order_and_nests() {
        let v = map(1000, |i| i * 2).unwrap();
        assert_eq!(v, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        let nested = map(8, |i| map(4, move |j| i * 4 + j).unwrap()).unwrap();
        assert_eq!(nested.concat(), (0..32).collect::<Vec<_>>());
        assert!(map(0, |i| i).unwrap().is_empty());
        assert!(threads() >= 1);
    }

    #[test]
    fn a_cancelled_call_stops_its_map_and_workers_see_the_flag() {
        let _scope = cancel::enter();
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let r = map(10_000, |i| {
            if i == 0 {
                cancel::current().unwrap().cancel();
            }
            seen.fetch_add(1, Ordering::Relaxed);
            cancel::check(cancel::SLICE as usize)
        });
        assert_eq!(r.unwrap_err(), Error::Interrupted);
        assert!(seen.load(Ordering::Relaxed) < 10_000);
    }

    /// Every use of rayon goes through this module (fork safety and cancellation depend on it).
    #[test]
    fn no_other_module_calls_rayon() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root];
        let mut offenders = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("parallel.rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let uses = ["rayon::", "use rayon", "par_iter", "par_chunks", "par_bridge", "par_extend"];
                    if uses.iter().any(|w| text.contains(w)) {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "use crate::parallel::map instead of rayon in {offenders:?}");
    }
}
