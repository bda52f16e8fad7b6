//! Size limits: the one place for every bound on memory or work that follows from user input.
//!
//! Every allocation whose size a caller controls (an argument such as `n`, `depth`, `samples`, a
//! vocabulary size, a number of rows) is checked **before** it is made, against a constant here,
//! and refused with [`Error::TooLarge`] naming the argument (`specrs.SizeLimitError` in Python).
//! Nothing sized by user input may reach the allocator unchecked: an allocation failure aborts
//! the process, and `Vec` capacity overflow panics.
//!
//! Rules for code that allocates or loops on user-sized input:
//! * size a buffer with [`check_alloc`] (overflow-safe product of the dimensions, times the element
//!   size, against [`MAX_ALLOC_BYTES`]) and allocate exactly what it returns;
//! * bound a count with [`check_count`] against its constant here;
//! * call [`crate::cancel::check`] inside long loops, so that Ctrl-C stops them.
//!
//! The limits are far above what speculative decoding needs (LLM vocabularies are ≤ 2^18; drafts
//! and trees have tens to hundreds of tokens) and low enough that one call cannot take a machine's
//! memory. The README's "Limits" table lists them; `specrs.LIMITS` exposes them to Python.

use crate::{Error, Result};

/// Largest single buffer (bytes) any call allocates on behalf of user input: 2 GiB.
pub const MAX_ALLOC_BYTES: usize = 1 << 31;

/// Largest vocabulary (entries of one probability row): 2^24 ≈ 16.8 M, 64× the largest LLM
/// vocabulary. Working sets are a few f64 per entry (exact `wor` α* keeps ~8), so this also keeps
/// one row's scratch memory ≤ ~1 GiB.
pub const MAX_VOCAB: usize = 1 << 24;

/// Largest number of drafts `n` a sampler draws per position: 2^20. (Where n is only an exponent,
/// as in α* of i.i.d. drafts, any n is accepted.)
pub const MAX_DRAFTS: usize = 1 << 20;

/// Largest Monte-Carlo sample count (`samples` of `verifier_acceptance`): 2^24.
pub const MAX_SAMPLES: usize = 1 << 24;

/// Largest draft tree, in draft nodes (root excluded); also bounds its depth.
pub const MAX_TREE_NODES: usize = 1 << 20;

/// Largest number of rows (sequences) of one `TreeBatch`: 2^16.
pub const MAX_BATCH_ROWS: usize = 1 << 16;

/// Largest attention mask (rows × columns booleans) one call builds: 2^28, 256 MiB. A tree's
/// mask is built only when asked for (`FlatTree.mask`, `mask_rows`, `full_mask`, a batch's inputs).
pub const MAX_MASK_ENTRIES: usize = 1 << 28;

/// Largest m·n (rows × drafts per row) of an explicit joint draft law: bounds the max-flow
/// solver's memory (≈ 24 bytes per entry).
pub const MAX_DRAFT_ENTRIES: usize = 1 << 24;

/// Largest number of tuples `scheme_law` enumerates.
pub const MAX_LAW_TUPLES: u64 = 2_000_000;

/// Largest (draft tuples) × V × (n + 2) that the exact output law enumerates.
pub const MAX_EXACT_WORK: u64 = 100_000_000;

/// Largest number of trees or ranking paths the exact tree laws enumerate.
pub const MAX_EXACT_TREES: usize = 2_000_000;

/// Largest vocabulary and depth of the exact tree laws (Markov toy models).
pub const MAX_EXACT_TREE_VOCAB: usize = 8;
pub const MAX_EXACT_TREE_DEPTH: usize = 4;

/// Largest token budget whose tree shapes are enumerated.
pub const MAX_SHAPE_BUDGET: usize = 1024;

/// Deepest recursion an enumeration may take (one level per draft): keeps the stack of a pool
/// thread (2 MiB) safe. Explicit laws of the iid/wor/cp schemes need n ≤ this; the exact rrs_wor
/// acceptance falls back to Monte Carlo above it.
pub const MAX_RECURSION_DEPTH: usize = 256;

/// Work budget of the deterministic RRS-without-replacement acceptance (enumeration nodes, or the
/// series + quadrature method's nodes and token evaluations; docs/theory.md §12); above it a
/// Monte-Carlo estimate of `samples` draws is returned instead.
pub const RRS_WOR_EXACT_NODES: usize = 8_000_000;

/// Every limit by the name Python sees in `specrs.LIMITS`, with its value.
pub const ALL: &[(&str, u64)] = &[
    ("max_alloc_bytes", MAX_ALLOC_BYTES as u64),
    ("max_vocab", MAX_VOCAB as u64),
    ("max_drafts", MAX_DRAFTS as u64),
    ("max_samples", MAX_SAMPLES as u64),
    ("max_tree_nodes", MAX_TREE_NODES as u64),
    ("max_mask_entries", MAX_MASK_ENTRIES as u64),
    ("max_batch_rows", MAX_BATCH_ROWS as u64),
    ("max_draft_entries", MAX_DRAFT_ENTRIES as u64),
    ("max_law_tuples", MAX_LAW_TUPLES),
    ("max_exact_work", MAX_EXACT_WORK),
    ("max_exact_trees", MAX_EXACT_TREES as u64),
    ("max_exact_tree_vocab", MAX_EXACT_TREE_VOCAB as u64),
    ("max_exact_tree_depth", MAX_EXACT_TREE_DEPTH as u64),
    ("max_shape_budget", MAX_SHAPE_BUDGET as u64),
    ("max_recursion_depth", MAX_RECURSION_DEPTH as u64),
    ("rrs_wor_exact_nodes", RRS_WOR_EXACT_NODES as u64),
];

/// Checks `value ≤ limit` for the count `arg`; `what` says what is counted (e.g. "the number of
/// drafts").
pub fn check_count(arg: &str, value: usize, limit: usize, what: &str) -> Result<()> {
    if value > limit {
        return Err(Error::too_large(arg, format!("{what} is {value}, above the limit {limit}")));
    }
    Ok(())
}

/// The number of elements of a buffer with dimensions `dims` of `elem_bytes`-byte elements,
/// checked against [`MAX_ALLOC_BYTES`] without overflow. `what` names the buffer in the message
/// (e.g. "the (V+1)×(n+1) table of the cp sampler"); `arg` is the argument to blame.
pub fn check_alloc(arg: &str, what: &str, dims: &[usize], elem_bytes: usize) -> Result<usize> {
    let elems = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let bytes = elems.and_then(|e| e.checked_mul(elem_bytes.max(1)));
    match (elems, bytes) {
        (Some(e), Some(b)) if b <= MAX_ALLOC_BYTES => Ok(e),
        _ => {
            let shown: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            let size = dims.iter().fold(elem_bytes as f64, |a, &d| a * d as f64);
            Err(Error::too_large(
                arg,
                format!(
                    "{what} would need {} × {elem_bytes} bytes = {} (limit {})",
                    shown.join(" × "),
                    human_bytes(size),
                    human_bytes(MAX_ALLOC_BYTES as f64)
                ),
            ))
        }
    }
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut x = b;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{x:.0} bytes")
    } else if x.is_finite() {
        format!("{x:.1} {}", UNITS[u])
    } else {
        "more than 2^64 bytes".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_checks_overflow_and_the_byte_limit() {
        assert_eq!(check_alloc("n", "x", &[3, 4], 8).unwrap(), 12);
        assert_eq!(check_alloc("n", "x", &[MAX_ALLOC_BYTES / 8], 8).unwrap(), MAX_ALLOC_BYTES / 8);
        let e = check_alloc("n", "the table", &[MAX_ALLOC_BYTES / 8 + 1], 8).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }) && e.arg() == "n", "{e}");
        assert!(e.to_string().contains("2.0 GiB") && e.to_string().contains("the table"), "{e}");
        // Products that overflow usize are refused, not wrapped.
        let e = check_alloc("depth", "x", &[usize::MAX, 3], 1).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        assert!(check_alloc("n", "x", &[1 << 40, 1 << 40], 8).is_err());
        assert_eq!(check_alloc("n", "x", &[0, usize::MAX], 8).unwrap(), 0);
    }

    #[test]
    fn counts_and_the_python_table() {
        assert!(check_count("n", MAX_DRAFTS, MAX_DRAFTS, "the number of drafts").is_ok());
        let e = check_count("n", MAX_DRAFTS + 1, MAX_DRAFTS, "the number of drafts").unwrap_err();
        assert_eq!(e.to_string(), "invalid argument `n`: too large: the number of drafts is 1048577, above the limit 1048576");
        let mut names: Vec<&str> = ALL.iter().map(|x| x.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
