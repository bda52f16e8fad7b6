//! The names users pass for draft schemes and verifiers, parsed once at the boundary.

use crate::{Error, Result};

/// How the n drafts of one position are sampled from the draft distribution q.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// n i.i.d. draws from q (with replacement).
    Iid,
    /// Successive sampling without replacement (Gumbel-top-k): draw j from q restricted to the
    /// tokens not drawn yet, renormalised.
    Wor,
    /// Conditional Poisson: an n-subset with probability ∝ Π_{i∈S} q(i).
    Cp,
    /// Hu et al. (ICLR 2025) greedy: the top n−1 tokens of q plus one draw from the rest.
    Greedy,
    /// SpecHub (Sun et al., EMNLP 2024), n = 2: one draw from q paired with the hub argmax q.
    SpecHub,
}

impl Scheme {
    pub const ALL: [Scheme; 5] = [Scheme::Iid, Scheme::Wor, Scheme::Cp, Scheme::Greedy, Scheme::SpecHub];

    pub fn parse(arg: &str, s: &str) -> Result<Self> {
        Ok(match s {
            "iid" => Scheme::Iid,
            "wor" => Scheme::Wor,
            "cp" => Scheme::Cp,
            "greedy" => Scheme::Greedy,
            "spechub" => Scheme::SpecHub,
            _ => {
                return Err(Error::invalid(
                    arg,
                    format!("unknown scheme {s:?}; expected one of \"iid\", \"wor\", \"cp\", \"greedy\", \"spechub\""),
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Iid => "iid",
            Scheme::Wor => "wor",
            Scheme::Cp => "cp",
            Scheme::Greedy => "greedy",
            Scheme::SpecHub => "spechub",
        }
    }

    /// True when the n drafts are distinct tokens (so n may not exceed the support of q).
    pub fn distinct(self) -> bool {
        !matches!(self, Scheme::Iid)
    }
}

/// A node-level verifier: decides which draft (if any) the emitted token accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verifier {
    /// Single-draft speculative sampling (Leviathan et al. 2023; Chen et al. 2023).
    Sd,
    /// Recursive rejection sampling with replacement (SpecInfer multi-step speculative sampling).
    Rrs,
    /// Recursive rejection sampling without replacement (RSD, Jeon et al. 2024).
    RrsWor,
    /// SpecTr K-SEQ (Sun et al., NeurIPS 2023).
    Kseq,
    /// Hu et al. (ICLR 2025) greedy verifier.
    Greedy,
    /// SpecHub verifier (Sun et al., EMNLP 2024), n = 2.
    SpecHub,
    /// Deterministic draft set: sample from p, accept if it is a draft (EAGLE/SGLang top-k).
    Match,
    /// Samples from the optimal transport plan of the explicit-law max-flow.
    Optimal,
}

impl Verifier {
    pub fn parse(arg: &str, s: &str) -> Result<Self> {
        Ok(match s {
            "sd" => Verifier::Sd,
            "rrs" => Verifier::Rrs,
            "rrs_wor" => Verifier::RrsWor,
            "kseq" => Verifier::Kseq,
            "greedy" => Verifier::Greedy,
            "spechub" => Verifier::SpecHub,
            "match" => Verifier::Match,
            "optimal" => Verifier::Optimal,
            _ => {
                return Err(Error::invalid(
                    arg,
                    format!(
                        "unknown verifier {s:?}; expected one of \"sd\", \"rrs\", \"rrs_wor\", \"kseq\", \"greedy\", \"spechub\", \"match\", \"optimal\""
                    ),
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verifier::Sd => "sd",
            Verifier::Rrs => "rrs",
            Verifier::RrsWor => "rrs_wor",
            Verifier::Kseq => "kseq",
            Verifier::Greedy => "greedy",
            Verifier::SpecHub => "spechub",
            Verifier::Match => "match",
            Verifier::Optimal => "optimal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_names() {
        for s in Scheme::ALL {
            assert_eq!(Scheme::parse("scheme", s.as_str()).unwrap(), s);
        }
        for v in ["sd", "rrs", "rrs_wor", "kseq", "greedy", "spechub", "match", "optimal"] {
            assert_eq!(Verifier::parse("verifier", v).unwrap().as_str(), v);
        }
        assert_eq!(Scheme::parse("scheme", "beam").unwrap_err().arg(), "scheme");
        assert_eq!(Verifier::parse("verifier", "x").unwrap_err().arg(), "verifier");
    }
}
