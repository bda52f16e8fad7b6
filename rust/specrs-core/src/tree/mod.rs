//! Draft trees (RSD, Jeon et al. 2024, arXiv 2402.14160; docs/theory.md §6): an arena built level by level
//! (`arena`), the builders of each kind (`build`: RSD-C Gumbel-top-k, RSD-S stochastic beam
//! search, iid, greedy, top-k, SpecHub), flattening for tree attention (`flatten`), node-level
//! and tree-level verification (`node`, `walk`), budgeted shapes (`shape`) and exact laws on toy
//! Markov models for tests (`exact`).

pub mod arena;
pub mod batch;
pub mod build;
pub mod dist;
pub mod exact;
pub mod flatten;
pub mod kind;
pub mod logits;
pub mod node;
pub mod shape;
pub mod walk;

pub use arena::{DraftTree, Node};
pub use batch::{SlotInputs, TreeBatch};
pub use dist::{Dist, DistRef};
pub use flatten::Flat;
pub use kind::TreeKind;
pub use walk::{Step, Walk};
#[cfg(test)]
mod tests;
