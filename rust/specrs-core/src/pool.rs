//! The one pool of reusable buffers of the crate, per thread: the draft rows a tree stores, the
//! aligned (p, q) rows of its node verification, and the max-flow solver's scratch arrays.
//!
//! Why: fresh allocations of large vectors come from the OS as zeroed pages, and the page faults
//! cost more than the work done in them. A 64-node tree at V = 49,152 stores ~11 MB of draft rows
//! per step (measured ~14 ms of faults against ~0.3 ms of copying in `benches/rust/tree.rs`), and
//! one max-flow solve on a k = 128, n = 2 law touches ~1 MB of scratch (a third of its time was in
//! the kernel). Buffers handed back are kept (at most [`MAX_POOLED_BYTES`] per thread) and reused
//! by the next request on the same thread. Contents never leak into results: a reused buffer is
//! emptied and refilled by the caller. Per thread, so there is no lock (and nothing a forked
//! child could find held); a buffer given back during thread teardown is simply freed.

use std::cell::RefCell;

/// Upper bound on the bytes kept per thread.
const MAX_POOLED_BYTES: usize = 64 << 20;

/// Upper bound on the buffers kept per element type and thread: `take` scans its list, so an
/// unbounded list of small buffers made every request O(#buffers) (a 3-token tree law took 22 s).
const MAX_POOLED_BUFFERS: usize = 64;

/// Buffers smaller than this are not kept: their allocation costs no page faults.
const MIN_POOLED_BYTES: usize = 4096;

#[derive(Default)]
pub(crate) struct Lists {
    f32s: Vec<Vec<f32>>,
    f64s: Vec<Vec<f64>>,
    u32s: Vec<Vec<u32>>,
    usizes: Vec<Vec<usize>>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Lists> = RefCell::new(Lists::default());
}

/// Element types with a free list.
pub(crate) trait Pooled: Copy + 'static {
    fn list(l: &mut Lists) -> &mut Vec<Vec<Self>>;
}

macro_rules! pooled {
    ($t:ty, $field:ident) => {
        impl Pooled for $t {
            fn list(l: &mut Lists) -> &mut Vec<Vec<$t>> {
                &mut l.$field
            }
        }
    };
}
pooled!(f32, f32s);
pooled!(f64, f64s);
pooled!(u32, u32s);
pooled!(usize, usizes);

/// An empty pooled vector: the one that fits `len` most tightly, else the largest (it grows in
/// place), else a new one.
fn take<T: Pooled>(len: usize) -> Vec<T> {
    POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let list = T::list(&mut p);
        let fits = list.iter().enumerate().filter(|(_, v)| v.capacity() >= len).min_by_key(|(_, v)| v.capacity());
        let idx = fits.or_else(|| list.iter().enumerate().max_by_key(|(_, v)| v.capacity())).map(|(i, _)| i);
        let mut v = idx.map(|i| list.swap_remove(i)).unwrap_or_default();
        p.bytes -= v.capacity() * std::mem::size_of::<T>();
        v.clear();
        v
    })
    .unwrap_or_default()
}

/// An empty vector with room for `cap` entries.
pub(crate) fn with_capacity<T: Pooled>(cap: usize) -> Vec<T> {
    let mut v = take(cap);
    v.reserve(cap);
    v
}

/// A vector of `len` copies of `value`.
pub(crate) fn filled<T: Pooled>(len: usize, value: T) -> Vec<T> {
    let mut v = take(len);
    v.resize(len, value);
    v
}

/// A vector holding a copy of `src`.
pub(crate) fn copy_of<T: Pooled>(src: &[T]) -> Vec<T> {
    let mut v = take(src.len());
    v.extend_from_slice(src);
    v
}

/// Hands a buffer back (or frees it when this thread's pool is full).
pub(crate) fn give<T: Pooled>(v: Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < MIN_POOLED_BYTES {
        return;
    }
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.bytes + bytes <= MAX_POOLED_BYTES && T::list(&mut p).len() < MAX_POOLED_BUFFERS {
            p.bytes += bytes;
            T::list(&mut p).push(v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_buffers_hold_exactly_the_new_contents() {
        let a: Vec<f32> = (0..5000).map(|i| i as f32).collect();
        let ptr = a.as_ptr();
        give(a);
        let b = copy_of(&[1.0f32; 4500]);
        assert_eq!(b.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(b.len(), 4500);
        assert!(b.iter().all(|&x| x == 1.0));
        assert_eq!(copy_of(&[2.0f32; 10]), vec![2.0; 10]);
        let c: Vec<u32> = filled(7, 3);
        assert_eq!(c, vec![3; 7]);
        give(c);
        let d: Vec<u32> = with_capacity(100);
        assert!(d.is_empty() && d.capacity() >= 100);
    }

    #[test]
    fn the_free_lists_stay_short() {
        for _ in 0..1000 {
            give(vec![0.0f64; 1024]);
            give(vec![0.0f64; 3]);
        }
        let kept = POOL.with(|p| p.borrow().f64s.len());
        assert!(kept <= MAX_POOLED_BUFFERS, "{kept} buffers kept");
        assert!(POOL.with(|p| p.borrow().f64s.iter().all(|v| v.capacity() >= 1024)));
    }
}
