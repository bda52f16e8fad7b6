//! specrs-core: the pure-Rust engine behind `specrs`.
//!
//! No PyO3 here: everything is plain Rust over slices so that `cargo test`, proptest and criterion
//! guard the maths on their own. The bindings crate (`rust/specrs-py`) is a thin layer that borrows
//! numpy buffers, releases the GIL and maps [`Error`] to Python exceptions.
//!
//! Conventions used across modules: `p` is the target distribution, `q` the draft distribution,
//! `n` the number of drafts; inputs are `&[T]` with `T: Real` (f32 or f64), and every accumulation
//! is done in f64.

pub mod error;
pub mod real;
pub mod rng;
pub mod validate;

pub use error::{Error, Result};
pub use real::Real;
pub use rng::Rng;
