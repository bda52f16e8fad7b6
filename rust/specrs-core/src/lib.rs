//! specrs-core: the pure-Rust engine behind `specrs`.
//!
//! No PyO3 here: everything is plain Rust over slices so that `cargo test`, proptest and criterion
//! guard the maths on their own. The bindings crate (`rust/specrs-py`) is a thin layer that borrows
//! numpy buffers, releases the GIL and maps [`Error`] to Python exceptions.
//!
//! Conventions used across modules: `p` is the target distribution, `q` the draft distribution,
//! `n` the number of drafts; inputs are `&[T]` with `T: Real` (f32 or f64), and every accumulation
//! is done in f64.

pub mod cancel;
pub mod error;
pub mod law;
pub mod limits;
pub mod names;
pub mod parallel;
mod pool; // the one per-thread pool of reusable buffers (tree rows, flow scratch)
pub mod real;
pub mod rng;
pub mod validate;

// Areas (one module each; see the README's layout table).
pub mod bounds; // optimal acceptance α* per draft scheme, verifier acceptance rates
pub mod chain; // batched verification of draft chains drafted elsewhere (a serving engine's rejection step)
pub mod exact; // exact output law of a verifier by enumeration
pub mod flow; // explicit joint draft law: max-flow, min cut, optimal transport plan
pub mod sample; // draft samplers
pub mod tree; // draft trees: arena, builders, flattening, tree verification
pub mod verify; // lossless verifiers at one node

#[cfg(test)]
mod test_rows; // proptest strategies for probability rows, shared by the exactness tests

pub use error::{Error, Result};
pub use law::{scheme_law, Law};
pub use names::{resolve_scheme, Method, Scheme, TreeKind, Verifier};
pub use real::Real;
pub use rng::Rng;
