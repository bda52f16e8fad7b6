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
    /// SpecHub (Sun et al., EMNLP 2024), b ≤ 2: hub a = argmax q; x1 ~ q; x2 = a if x1 ≠ a, else
    /// x2 ~ q without a (mdsd.md §5). A level with b = 1 draws one child from q.
    SpecHub,
}

impl TreeKind {
    pub const ALL: [TreeKind; 6] =
        [TreeKind::RsdC, TreeKind::RsdS, TreeKind::Iid, TreeKind::Greedy, TreeKind::TopK, TreeKind::SpecHub];

    pub fn parse(arg: &str, s: &str) -> Result<Self> {
        Ok(match s {
            "rsd_c" => TreeKind::RsdC,
            "rsd_s" => TreeKind::RsdS,
            "iid" => TreeKind::Iid,
            "greedy" => TreeKind::Greedy,
            "topk" => TreeKind::TopK,
            "spechub" => TreeKind::SpecHub,
            _ => {
                return Err(Error::invalid(
                    arg,
                    format!("unknown tree kind {s:?}; expected one of \"rsd_c\", \"rsd_s\", \"iid\", \"greedy\", \"topk\", \"spechub\""),
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
            TreeKind::SpecHub => "spechub",
        }
    }

    /// The node-level verifier that is exact for this kind's sibling law (at a node with more than
    /// one child; see `DraftTree::verifier_at` for single children).
    pub fn verifier(self) -> Verifier {
        match self {
            TreeKind::RsdC | TreeKind::RsdS => Verifier::RrsWor,
            TreeKind::Iid => Verifier::Rrs,
            TreeKind::Greedy => Verifier::Greedy,
            TreeKind::TopK => Verifier::Match,
            TreeKind::SpecHub => Verifier::SpecHub,
        }
    }

    /// True when siblings are distinct tokens (so a level needs that many tokens in the support).
    pub fn distinct(self) -> bool {
        self != TreeKind::Iid
    }

    /// Largest number of children per node this kind can draw (SpecHub is defined for n = 2).
    pub fn max_branching(self) -> usize {
        if self == TreeKind::SpecHub {
            2
        } else {
            usize::MAX
        }
    }
}
