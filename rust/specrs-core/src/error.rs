//! The one error type of the core. Every fallible public function returns [`Result`]; the
//! bindings turn each variant into a Python exception: `SpecrsError` / `SizeLimitError`
//! (`ValueError` subclasses) and, for [`Error::Interrupted`], `KeyboardInterrupt`. One message
//! format for the argument errors, and for the Python-side checks (`specrs._validate.invalid`):
//! "invalid argument `x`: …" (a size-limit error: "invalid argument `x`: too large: …").

use std::fmt;

/// Everything that can go wrong on user input (or a user's Ctrl-C). No variant is ever produced
/// by a bug in specrs: internal invariants are checked with `debug_assert!` instead.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// An argument failed validation. `arg` is the argument's name as the Python API spells it
    /// (e.g. `"p"`, `"drafts"`, `"n"`), so that the message can point at it.
    InvalidArgument { arg: String, msg: String },
    /// The problem is valid but larger than the exact method allows (a size limit chosen so that
    /// the call cannot run out of memory or take hours). `arg` names the argument that is too big.
    TooLarge { arg: String, msg: String },
    /// The call was cancelled (Ctrl-C) before it finished; see [`crate::cancel`]. The bindings
    /// raise the interrupt (`KeyboardInterrupt`) instead of returning a result.
    Interrupted,
}

impl Error {
    pub fn invalid(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::InvalidArgument { arg: arg.into(), msg: msg.into() }
    }

    pub fn too_large(arg: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::TooLarge { arg: arg.into(), msg: msg.into() }
    }

    /// The argument the error is about.
    pub fn arg(&self) -> &str {
        match self {
            Error::InvalidArgument { arg, .. } | Error::TooLarge { arg, .. } => arg,
            Error::Interrupted => "",
        }
    }

    /// The same error, re-attributed to a row of a batched argument (`p` → `p[row 3]`).
    pub fn in_row(self, row: usize) -> Self {
        match self {
            Error::InvalidArgument { arg, msg } => Error::InvalidArgument { arg: format!("{arg}[row {row}]"), msg },
            Error::TooLarge { arg, msg } => Error::TooLarge { arg: format!("{arg}[row {row}]"), msg },
            Error::Interrupted => Error::Interrupted,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { arg, msg } => write!(f, "invalid argument `{arg}`: {msg}"),
            Error::TooLarge { arg, msg } => write!(f, "invalid argument `{arg}`: too large: {msg}"),
            Error::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_argument() {
        let e = Error::invalid("q", "contains NaN at index 3");
        assert_eq!(e.to_string(), "invalid argument `q`: contains NaN at index 3");
        assert_eq!(e.arg(), "q");
        let e = Error::too_large("drafts", "2^40 tuples").in_row(2);
        assert_eq!(e.arg(), "drafts[row 2]");
        assert!(e.to_string().contains("too large"));
    }
}
