//! Tree kinds live in the registry (`crate::names`): each kind's node verifier, the law of a
//! node's children and its branching limit are rows of that table.

pub use crate::names::TreeKind;
