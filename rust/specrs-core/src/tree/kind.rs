//! Tree kinds and the node-level verifier that matches how each kind draws siblings.

use crate::{Error, Result, Verifier};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TreeKind {
    /// RSD-C (Jeon et al. 2024): constant branching, siblings by Gumbel-top-k (without replacement).
    RsdC,
    /// RSD-S (Jeon et al. 2024): stochastic beam search (Kool et al. 2019), W nodes per depth.
    RsdS,
    /// SpecInfer (Miao et al. 2023): siblings i.i.d. from q.
    Iid,
    /// Hu et al. (ICLR 2025) greedy drafting: the top b−1 tokens plus one drawn from the rest.
    Greedy,
    /// EAGLE-style deterministic top-b siblings.
    TopK,
}

impl TreeKind {
    pub const ALL: [TreeKind; 5] = [TreeKind::RsdC, TreeKind::RsdS, TreeKind::Iid, TreeKind::Greedy, TreeKind::TopK];

    pub fn parse(arg: &str, s: &str) -> Result<Self> {
        Ok(match s {
            "rsd_c" => TreeKind::RsdC,
            "rsd_s" => TreeKind::RsdS,
            "iid" => TreeKind::Iid,
            "greedy" => TreeKind::Greedy,
            "topk" => TreeKind::TopK,
            _ => {
                return Err(Error::invalid(
                    arg,
                    format!("unknown tree kind {s:?}; expected one of \"rsd_c\", \"rsd_s\", \"iid\", \"greedy\", \"topk\""),
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TreeKind::RsdC => "rsd_c",
            TreeKind::RsdS => "rsd_s",
            TreeKind::Iid => "iid",
            TreeKind::Greedy => "greedy",
            TreeKind::TopK => "topk",
        }
    }

    /// The node-level verifier that is exact for this kind's sibling law.
    pub fn verifier(self) -> Verifier {
        match self {
            TreeKind::RsdC | TreeKind::RsdS => Verifier::RrsWor,
            TreeKind::Iid => Verifier::Rrs,
            TreeKind::Greedy => Verifier::Greedy,
            TreeKind::TopK => Verifier::Match,
        }
    }

    /// True when siblings are distinct tokens (so a level needs that many tokens in the support).
    pub fn distinct(self) -> bool {
        self != TreeKind::Iid
    }
}
