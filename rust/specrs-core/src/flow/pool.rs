//! Per-thread reuse of the solver's scratch buffers.
//!
//! One solve on a k = 128, n = 2 law touches ~1 MB of fresh scratch memory; allocating it anew
//! on every call costs more in page faults than the max-flow itself (measured with perf: a third
//! of the time in the kernel). Buffers are handed back here after a solve and reused by the next
//! solve on the same thread; an [`super::ExplicitPlan`] hands its arrays back when dropped. At most [`MAX_POOLED_BYTES`] are kept, so a huge solve does not pin
//! its memory.

use std::cell::RefCell;

/// Upper bound on the bytes kept per thread.
const MAX_POOLED_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Pool {
    u32s: Vec<Vec<u32>>,
    f64s: Vec<Vec<f64>>,
    usizes: Vec<Vec<usize>>,
}

impl Pool {
    fn bytes(&self) -> usize {
        self.u32s.iter().map(|v| v.capacity() * 4).sum::<usize>()
            + self.f64s.iter().map(|v| v.capacity() * 8).sum::<usize>()
            + self.usizes.iter().map(|v| v.capacity() * std::mem::size_of::<usize>()).sum::<usize>()
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// The pooled vector that fits `len` most tightly (or the largest one), emptied.
fn pick<T>(list: &mut Vec<Vec<T>>, len: usize) -> Vec<T> {
    let fits = list.iter().enumerate().filter(|(_, v)| v.capacity() >= len).min_by_key(|(_, v)| v.capacity());
    let idx = match fits {
        Some((i, _)) => Some(i),
        None => list.iter().enumerate().max_by_key(|(_, v)| v.capacity()).map(|(i, _)| i),
    };
    let mut v = idx.map(|i| list.swap_remove(i)).unwrap_or_default();
    v.clear();
    v
}

/// A `Vec<u32>` of `len` copies of `value`, reusing pooled memory.
pub(crate) fn u32s(len: usize, value: u32) -> Vec<u32> {
    let mut v = POOL.with(|p| pick(&mut p.borrow_mut().u32s, len));
    v.resize(len, value);
    v
}

/// A `Vec<f64>` of `len` copies of `value`, reusing pooled memory.
pub(crate) fn f64s(len: usize, value: f64) -> Vec<f64> {
    let mut v = POOL.with(|p| pick(&mut p.borrow_mut().f64s, len));
    v.resize(len, value);
    v
}

/// An empty `Vec<u32>` with room for `cap` entries.
pub(crate) fn u32s_with_capacity(cap: usize) -> Vec<u32> {
    let mut v = POOL.with(|p| pick(&mut p.borrow_mut().u32s, cap));
    v.reserve(cap);
    v
}

/// An empty `Vec<f64>` with room for `cap` entries.
pub(crate) fn f64s_with_capacity(cap: usize) -> Vec<f64> {
    let mut v = POOL.with(|p| pick(&mut p.borrow_mut().f64s, cap));
    v.reserve(cap);
    v
}

pub(crate) fn give_u32(v: Vec<u32>) {
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if v.capacity() > 0 && p.bytes() + v.capacity() * 4 <= MAX_POOLED_BYTES {
            p.u32s.push(v);
        }
    });
}

pub(crate) fn give_f64(v: Vec<f64>) {
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if v.capacity() > 0 && p.bytes() + v.capacity() * 8 <= MAX_POOLED_BYTES {
            p.f64s.push(v);
        }
    });
}

/// An empty `Vec<usize>` with room for `cap` entries.
pub(crate) fn usizes_with_capacity(cap: usize) -> Vec<usize> {
    let mut v = POOL.with(|p| pick(&mut p.borrow_mut().usizes, cap));
    v.reserve(cap);
    v
}

pub(crate) fn give_usize(v: Vec<usize>) {
    // `try_with`: a plan dropped during thread teardown simply frees its memory.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if v.capacity() > 0 && p.bytes() + v.capacity() * std::mem::size_of::<usize>() <= MAX_POOLED_BYTES {
            p.usizes.push(v);
        }
    });
}
