//! A small free-list of row buffers for the stored draft distributions.
//!
//! Why: a 64-node tree at V = 49,152 stores ~11 MB of draft rows per step. Fresh allocations of
//! that size come from the OS with zeroed pages, and the page faults cost several times the copy
//! itself (measured ~14 ms vs ~0.3 ms per step in `benches/rust/tree.rs`). Rows of dropped trees
//! are kept here (up to `MAX_BYTES`) and reused by the next tree. Contents never leak into
//! results: a reused buffer is cleared and refilled from the caller's row.

use std::sync::Mutex;

/// Largest total size kept in each free-list.
const MAX_BYTES: usize = 64 << 20;
/// Rows smaller than this are not pooled (the allocator handles them well).
const MIN_LEN: usize = 4096;

pub(crate) struct Pool<T> {
    free: Mutex<(Vec<Vec<T>>, usize)>,
}

impl<T: Copy> Pool<T> {
    pub(crate) const fn new() -> Self {
        Pool { free: Mutex::new((Vec::new(), 0)) }
    }

    /// A vector holding a copy of `src`, reusing a pooled buffer when one is large enough.
    pub(crate) fn copy_of(&self, src: &[T]) -> Vec<T> {
        if src.len() >= MIN_LEN {
            if let Ok(mut g) = self.free.lock() {
                if let Some(pos) = g.0.iter().rposition(|b| b.capacity() >= src.len()) {
                    let mut b = g.0.swap_remove(pos);
                    g.1 -= b.capacity() * std::mem::size_of::<T>();
                    drop(g);
                    b.clear();
                    b.extend_from_slice(src);
                    return b;
                }
            }
        }
        src.to_vec()
    }

    /// A vector of `len` copies of `fill`, reusing a pooled buffer when one is large enough.
    pub(crate) fn filled(&self, len: usize, fill: T) -> Vec<T> {
        if len >= MIN_LEN {
            if let Ok(mut g) = self.free.lock() {
                if let Some(pos) = g.0.iter().rposition(|b| b.capacity() >= len) {
                    let mut b = g.0.swap_remove(pos);
                    g.1 -= b.capacity() * std::mem::size_of::<T>();
                    drop(g);
                    b.clear();
                    b.resize(len, fill);
                    return b;
                }
            }
        }
        vec![fill; len]
    }

    /// Returns a buffer to the pool (or frees it when the pool is full).
    pub(crate) fn give(&self, b: Vec<T>) {
        let bytes = b.capacity() * std::mem::size_of::<T>();
        if b.capacity() < MIN_LEN {
            return;
        }
        if let Ok(mut g) = self.free.lock() {
            if g.1 + bytes <= MAX_BYTES {
                g.1 += bytes;
                g.0.push(b);
            }
        }
    }
}

pub(crate) static POOL32: Pool<f32> = Pool::new();
pub(crate) static POOL64: Pool<f64> = Pool::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_buffers_hold_exactly_the_new_row() {
        let p: Pool<f32> = Pool::new();
        let a: Vec<f32> = (0..5000).map(|i| i as f32).collect();
        let ptr = a.as_ptr();
        p.give(a);
        let b = p.copy_of(&[1.0; 4500]);
        assert_eq!(b.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(b.len(), 4500);
        assert!(b.iter().all(|&x| x == 1.0));
        assert_eq!(p.copy_of(&[2.0; 10]), vec![2.0; 10]);
    }
}
