//! The optimal verifier for an explicit draft law (placeholder until the flow plan lands).
use super::Outcome;
use crate::exact::ExactLaw;
use crate::law::Law;
use crate::{Error, Real, Result};

pub(crate) fn output_distribution<T: Real>(_p: &[T], _law: &Law) -> Result<ExactLaw> {
    Err(Error::invalid("verifier", "optimal is not available yet"))
}

#[allow(dead_code)]
fn _unused(_o: Outcome) {}
