//! The registry: every name a user passes (draft schemes, verifiers, tree kinds, generation
//! methods) with its description, paper and pairings, in one table. Every other module reads it:
//! the verifiers' default schemes and lossless pairings, the node verifier and children law of
//! each tree kind, the tree kind and default shape of each generation method. The bindings export
//! it read-only to Python (`specrs.SCHEMES`, `specrs.VERIFIERS`, `specrs.TREE_KINDS`,
//! `specrs.METHODS`).
//!
//! **Adding a row** is one entry in the matching `registry!` block below (the enum variant and its
//! row are written together), plus the kernel that runs it (a verifier's rule in `verify`, a
//! scheme's sampler in `sample` and its law in `law`, a kind's builder in `tree::build`).
//!
//! **Spelling.** Lower case. Schemes and verifiers are identifiers, words joined by `_`
//! (`rrs_wor`), because they are values of the `scheme=`/`verifier=` arguments. Tree kinds and
//! generation methods that name a published algorithm use its short name with `-` (`rsd-c`,
//! `rsd-s`, `sd-block`), and a method that runs one tree kind has that kind's name. Old spellings
//! of tree kinds (`rsd_c`, `rsd_s`) are still parsed, and the bindings warn (DeprecationWarning).

use crate::{Error, Result};

/// Declares an enum and its registry rows in one list: `Variant = ROW,`. Generates `ALL` (every
/// value in table order) and `row()`.
macro_rules! registry {
    ($(#[$meta:meta])* pub enum $Enum:ident: $Row:ident { $($(#[$vmeta:meta])* $Var:ident = $row:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $Enum {
            $($(#[$vmeta])* $Var,)*
        }

        impl $Enum {
            /// Every value, in registry order.
            pub const ALL: [$Enum; [$(stringify!($Var),)*].len()] = [$($Enum::$Var,)*];

            /// This value's row of the registry.
            pub fn row(self) -> &'static $Row {
                match self {
                    $($Enum::$Var => {
                        const ROW: $Row = $row;
                        &ROW
                    })*
                }
            }

            /// The canonical name.
            pub fn as_str(self) -> &'static str {
                self.row().name
            }
        }
    };
}

/// Which schemes a verifier pairs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schemes {
    /// Every scheme (the verifier is exact for any draft law).
    Any,
    Only(&'static [Scheme]),
}

impl Schemes {
    pub fn contains(self, s: Scheme) -> bool {
        match self {
            Schemes::Any => true,
            Schemes::Only(list) => list.contains(&s),
        }
    }

    /// The schemes listed, in registry order.
    pub fn list(self) -> Vec<Scheme> {
        Scheme::ALL.iter().copied().filter(|&s| self.contains(s)).collect()
    }
}

/// A draft scheme: how the n drafts of one position are drawn from q.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemeRow {
    pub name: &'static str,
    /// Other accepted spellings (same meaning, not deprecated).
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub paper: &'static str,
    /// The drafts are distinct tokens, so n may not exceed the support of q.
    pub distinct: bool,
    /// The drafts are a function of q (no randomness).
    pub deterministic: bool,
    /// The one n the scheme is defined for, if it is defined for one only.
    pub n: Option<usize>,
}

/// A node-level verifier: emits one token whose law, averaged over the drafts, is exactly p.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierRow {
    pub name: &'static str,
    pub description: &'static str,
    pub paper: &'static str,
    /// The schemes it is lossless for.
    pub schemes: Schemes,
    /// The scheme used when none is named (None: one must be named).
    pub default_scheme: Option<Scheme>,
    /// The one number of drafts it takes, if it takes one only.
    pub n: Option<usize>,
    /// The schemes for which its acceptance equals α* of the scheme (Hu et al. 2025).
    pub optimal_for: Schemes,
}

/// A draft-tree kind: how the children of a node are drawn and which verifier walks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeKindRow {
    pub name: &'static str,
    /// Old spellings, still parsed (the bindings emit a DeprecationWarning).
    pub deprecated: &'static [&'static str],
    pub description: &'static str,
    pub paper: &'static str,
    /// Verifier at a node with two or more children (see [`TreeKind::node_verifier`]).
    pub verifier: Verifier,
    /// Law of the children of one node (see [`TreeKind::child_scheme`]).
    pub scheme: Scheme,
    /// Largest number of children per node, if limited.
    pub max_branching: Option<usize>,
}

/// How a generation method's default tree is shaped from (depth L, width k).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeFamily {
    /// No draft tree (target only).
    None,
    /// One chain of L tokens: branching (1,)*L.
    Chain,
    /// k children at the root, one child below: branching (k, 1, …, 1) of length L.
    Fan,
    /// k beams kept at every depth: (k,)*L.
    Beam,
}

impl ShapeFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            ShapeFamily::None => "none",
            ShapeFamily::Chain => "chain",
            ShapeFamily::Fan => "fan",
            ShapeFamily::Beam => "beam",
        }
    }

    /// The shape of depth `depth` and width `width` in this family.
    pub fn shape(self, depth: usize, width: usize) -> Vec<usize> {
        match self {
            ShapeFamily::None => Vec::new(),
            ShapeFamily::Chain => vec![1; depth],
            ShapeFamily::Fan => (0..depth).map(|l| if l == 0 { width } else { 1 }).collect(),
            ShapeFamily::Beam => vec![width; depth],
        }
    }
}

/// A generation method: a tree kind and its default shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodRow {
    pub name: &'static str,
    pub description: &'static str,
    pub paper: &'static str,
    /// The tree kind it drafts with (None: no drafting).
    pub tree_kind: Option<TreeKind>,
    pub shape: ShapeFamily,
    pub default_depth: usize,
    pub default_width: usize,
}

impl MethodRow {
    /// The default draft-tree shape: `shape` at (default_depth, default_width).
    pub fn default_shape(&self) -> Vec<usize> {
        self.shape.shape(self.default_depth, self.default_width)
    }
}

const HU: &str = "Hu et al., Towards Optimal Multi-draft Speculative Decoding, ICLR 2025";
const RSD: &str = "Jeon et al., Recursive Speculative Decoding, arXiv 2402.14160, 2024";
const SPECINFER: &str = "Miao et al., SpecInfer, ASPLOS 2024";
const SPECHUB: &str = "Sun et al., SpecHub, EMNLP 2024";
const KHISTI: &str = "Khisti et al., Multi-Draft Speculative Sampling: Canonical Decomposition and Theoretical Limits, ICLR 2025";
const SD: &str = "Leviathan et al., ICML 2023; Chen et al., arXiv 2302.01318, 2023";
const BLOCK: &str = "Sun et al., Block Verification Accelerates Speculative Decoding, ICLR 2025";
const TRAVERSAL: &str = "Weng et al., Traversal Verification for Speculative Tree Decoding, NeurIPS 2025";
const EAGLE: &str = "Li et al., EAGLE-2, EMNLP 2024 (deterministic top-k trees, as in SGLang)";

registry! {
    /// How the n drafts of one position are sampled from the draft distribution q.
    pub enum Scheme: SchemeRow {
        /// n i.i.d. draws from q (with replacement).
        Iid = SchemeRow {
            name: "iid",
            aliases: &[],
            description: "n independent draws from q (with replacement)",
            paper: SPECINFER,
            distinct: false,
            deterministic: false,
            n: None,
        },
        /// Successive sampling without replacement (Gumbel-top-k).
        Wor = SchemeRow {
            name: "wor",
            aliases: &[],
            description: "successive sampling without replacement: draw j from q restricted to the tokens not \
                          drawn yet (Gumbel-top-k; torch.multinomial without replacement)",
            paper: "Kool et al., Stochastic Beams and Where to Find Them, ICML 2019",
            distinct: true,
            deterministic: false,
            n: None,
        },
        /// Conditional Poisson: an n-subset with probability ∝ Π_{i∈S} q(i).
        Cp = SchemeRow {
            name: "cp",
            aliases: &["wor_paper"],
            description: "conditional Poisson: an n-subset with probability proportional to the product of its q \
                          (the e_n formula Hu et al. print for 'without replacement', hence the alias wor_paper)",
            paper: HU,
            distinct: true,
            deterministic: false,
            n: None,
        },
        /// The top n−1 tokens of q plus one draw from the rest.
        Greedy = SchemeRow {
            name: "greedy",
            aliases: &[],
            description: "the top n-1 tokens of q, then one draw from q without them",
            paper: HU,
            distinct: true,
            deterministic: false,
            n: None,
        },
        /// n = 2: one draw from q paired with the hub argmax q.
        SpecHub = SchemeRow {
            name: "spechub",
            aliases: &[],
            description: "n = 2: x1 ~ q paired with the hub a = argmax q (x2 ~ q without a when x1 = a)",
            paper: SPECHUB,
            distinct: true,
            deterministic: false,
            n: Some(2),
        },
        /// The n largest entries of q (ties to the lower id): deterministic.
        TopK = SchemeRow {
            name: "topk",
            aliases: &[],
            description: "the n largest entries of q, ties to the lower id (deterministic)",
            paper: EAGLE,
            distinct: true,
            deterministic: true,
            n: None,
        },
    }
}

registry! {
    /// A node-level verifier: decides which draft (if any) the emitted token accepts.
    pub enum Verifier: VerifierRow {
        /// Single-draft speculative sampling.
        Sd = VerifierRow {
            name: "sd",
            description: "single-draft speculative sampling: accept x ~ q with min(1, p(x)/q(x)), else sample \
                          (p - q)+ renormalised",
            paper: SD,
            schemes: Schemes::Only(&[Scheme::Iid, Scheme::Wor, Scheme::Cp, Scheme::Greedy]),
            default_scheme: Some(Scheme::Iid),
            n: Some(1),
            optimal_for: Schemes::Only(&[Scheme::Iid, Scheme::Wor, Scheme::Cp, Scheme::Greedy]),
        },
        /// Block verification of a draft chain; at one position it is `sd`.
        Block = VerifierRow {
            name: "block",
            description: "block verification of a draft chain: accept the longest prefix by the cumulative ratio \
                          rule (last passing position), then one residual token; at one position it is sd \
                          (chains: verify_chains, method sd-block)",
            paper: BLOCK,
            schemes: Schemes::Only(&[Scheme::Iid, Scheme::Wor, Scheme::Cp, Scheme::Greedy]),
            default_scheme: Some(Scheme::Iid),
            n: Some(1),
            optimal_for: Schemes::Only(&[Scheme::Iid, Scheme::Wor, Scheme::Cp, Scheme::Greedy]),
        },
        /// Traversal verification of a draft tree (leaf to root); at one position it is rrs_wor / rrs.
        Traversal = VerifierRow {
            name: "traversal",
            description: "traversal verification of a draft tree: leaf to root, each node accepted with the \
                          probability of keeping its whole path, the parent updated to its residual; on a chain it \
                          is block, at one position rrs_wor (wor drafts) or rrs (iid drafts) (trees: kind and method \
                          traversal)",
            paper: TRAVERSAL,
            schemes: Schemes::Only(&[Scheme::Wor, Scheme::Iid]),
            default_scheme: Some(Scheme::Wor),
            n: None,
            optimal_for: Schemes::Only(&[]),
        },
        /// Recursive rejection sampling with replacement (SpecInfer multi-step speculative sampling).
        Rrs = VerifierRow {
            name: "rrs",
            description: "recursive rejection sampling with replacement (SpecInfer's multi-step speculative sampling)",
            paper: SPECINFER,
            schemes: Schemes::Only(&[Scheme::Iid]),
            default_scheme: Some(Scheme::Iid),
            n: None,
            optimal_for: Schemes::Only(&[]),
        },
        /// Recursive rejection sampling without replacement (RSD).
        RrsWor = VerifierRow {
            name: "rrs_wor",
            description: "recursive rejection sampling without replacement: the draft law of the next test is q \
                          without the rejected tokens",
            paper: RSD,
            schemes: Schemes::Only(&[Scheme::Wor]),
            default_scheme: Some(Scheme::Wor),
            n: None,
            optimal_for: Schemes::Only(&[]),
        },
        /// SpecTr K-SEQ.
        Kseq = VerifierRow {
            name: "kseq",
            description: "K-SEQ: sequential tests min(1, p/(rho q)) with the rho* that balances acceptance and \
                          residual",
            paper: "Sun et al., SpecTr, NeurIPS 2023",
            schemes: Schemes::Only(&[Scheme::Iid]),
            default_scheme: Some(Scheme::Iid),
            n: None,
            optimal_for: Schemes::Only(&[]),
        },
        /// Hu et al.'s greedy verifier (optimal for greedy drafts).
        Greedy = VerifierRow {
            name: "greedy",
            description: "accept a top token with probability one where p allows, then test the drawn draft; \
                          attains alpha* of the greedy scheme",
            paper: HU,
            schemes: Schemes::Only(&[Scheme::Greedy]),
            default_scheme: Some(Scheme::Greedy),
            n: None,
            optimal_for: Schemes::Only(&[Scheme::Greedy]),
        },
        /// SpecHub's hub-pair verifier (optimal for its drafts), n = 2.
        SpecHub = VerifierRow {
            name: "spechub",
            description: "SpecHub's hub-pair rule with deterministic residual updates; attains alpha* of the \
                          spechub scheme",
            paper: SPECHUB,
            schemes: Schemes::Only(&[Scheme::SpecHub]),
            default_scheme: Some(Scheme::SpecHub),
            n: None,
            optimal_for: Schemes::Only(&[Scheme::SpecHub]),
        },
        /// Khisti et al.'s selection + single-draft SD with an optimal selection rule, n i.i.d. drafts.
        Khisti = VerifierRow {
            name: "khisti",
            description: "select one draft by the largest key from per-token key laws laid out so that the \
                          selected token's law p_I is optimal, then speculative sampling from p_I to p; attains \
                          alpha* of n i.i.d. drafts",
            paper: KHISTI,
            schemes: Schemes::Only(&[Scheme::Iid]),
            default_scheme: Some(Scheme::Iid),
            n: None,
            optimal_for: Schemes::Only(&[Scheme::Iid]),
        },
        /// Sample from p; accepted iff the token is a draft. Exact for any draft law.
        Match = VerifierRow {
            name: "match",
            description: "sample the token from p; it is accepted iff it is one of the drafts (exact for any \
                          draft law; with topk drafts, the EAGLE/SGLang top-k rule)",
            paper: EAGLE,
            schemes: Schemes::Any,
            default_scheme: Some(Scheme::TopK),
            n: None,
            optimal_for: Schemes::Only(&[Scheme::TopK]),
        },
        /// The optimal transport plan of the explicit draft law (max-flow).
        Optimal = VerifierRow {
            name: "optimal",
            description: "samples the optimal transport plan of the explicit draft law (a max-flow); attains \
                          alpha* of any scheme (small vocabularies: the law is enumerated)",
            paper: HU,
            schemes: Schemes::Any,
            default_scheme: None,
            n: None,
            optimal_for: Schemes::Any,
        },
    }
}

registry! {
    /// Tree kinds: how a node's children are drawn, and the node verifier that matches.
    pub enum TreeKind: TreeKindRow {
        /// RSD-C: constant branching, siblings by Gumbel-top-k.
        RsdC = TreeKindRow {
            name: "rsd-c",
            deprecated: &["rsd_c"],
            description: "RSD-C: constant branching (b_1..b_L), each node's children by Gumbel-top-k (without \
                          replacement); recursive rejection sampling without replacement",
            paper: RSD,
            verifier: Verifier::RrsWor,
            scheme: Scheme::Wor,
            max_branching: None,
        },
        /// RSD-S: stochastic beam search, W nodes per depth.
        RsdS = TreeKindRow {
            name: "rsd-s",
            deprecated: &["rsd_s"],
            description: "RSD-S: stochastic beam search keeping W nodes per depth (siblings in score order are \
                          a without-replacement sample); recursive rejection sampling without replacement",
            paper: "Jeon et al., Recursive Speculative Decoding, arXiv 2402.14160, 2024; Kool et al., ICML 2019",
            verifier: Verifier::RrsWor,
            scheme: Scheme::Wor,
            max_branching: None,
        },
        /// SpecInfer: siblings i.i.d. from q.
        Iid = TreeKindRow {
            name: "iid",
            deprecated: &[],
            description: "SpecInfer tree: b_l i.i.d. children from q; recursive rejection sampling with replacement",
            paper: SPECINFER,
            verifier: Verifier::Rrs,
            scheme: Scheme::Iid,
            max_branching: None,
        },
        /// Hu et al. greedy drafting: the top b−1 tokens plus one drawn from the rest.
        Greedy = TreeKindRow {
            name: "greedy",
            deprecated: &[],
            description: "the top b-1 tokens of q plus one draw from the rest; Hu et al.'s greedy verifier",
            paper: HU,
            verifier: Verifier::Greedy,
            scheme: Scheme::Greedy,
            max_branching: None,
        },
        /// EAGLE-style deterministic top-b siblings.
        TopK = TreeKindRow {
            name: "topk",
            deprecated: &[],
            description: "deterministic top-b children (EAGLE/SGLang); sample p, descend if it is a child (match)",
            paper: EAGLE,
            verifier: Verifier::Match,
            scheme: Scheme::TopK,
            max_branching: None,
        },
        /// SpecHub, b ≤ 2: hub a = argmax q; x1 ~ q; x2 = a if x1 ≠ a, else x2 ~ q without a.
        SpecHub = TreeKindRow {
            name: "spechub",
            deprecated: &[],
            description: "SpecHub, b <= 2: the hub pair of the spechub scheme and its verifier; a b = 1 level is \
                          one draw from q",
            paper: SPECHUB,
            verifier: Verifier::SpecHub,
            scheme: Scheme::SpecHub,
            max_branching: Some(2),
        },
        /// A chain (one child per node), verified as a block.
        SdBlock = TreeKindRow {
            name: "sd-block",
            deprecated: &[],
            description: "a draft chain (one draw from q per depth) verified by block verification: the longest \
                          prefix by the cumulative ratio rule, then one residual or bonus token",
            paper: BLOCK,
            verifier: Verifier::Block,
            scheme: Scheme::Wor,
            max_branching: Some(1),
        },
        /// Traversal verification over a constant-branching tree with Gumbel-top-k siblings.
        Traversal = TreeKindRow {
            name: "traversal",
            deprecated: &[],
            description: "constant branching (b_1..b_L), each node's children by Gumbel-top-k (without replacement, as \
                          rsd-c draws them), verified by traversal verification (leaf to root)",
            paper: TRAVERSAL,
            verifier: Verifier::Traversal,
            scheme: Scheme::Wor,
            max_branching: None,
        },
        /// Traversal verification over a constant-branching tree with i.i.d. siblings.
        TraversalIid = TreeKindRow {
            name: "traversal-iid",
            deprecated: &[],
            description: "constant branching (b_1..b_L), each node's children drawn i.i.d. from q (with replacement, \
                          as iid draws them), verified by traversal verification (leaf to root)",
            paper: TRAVERSAL,
            verifier: Verifier::Traversal,
            scheme: Scheme::Iid,
            max_branching: None,
        },
    }
}

registry! {
    /// Generation methods of `specrs.generate`: a tree kind and a default shape.
    pub enum Method: MethodRow {
        Autoregressive = MethodRow {
            name: "autoregressive",
            description: "target model only, one token per call (the baseline)",
            paper: "",
            tree_kind: None,
            shape: ShapeFamily::None,
            default_depth: 0,
            default_width: 0,
        },
        Sd = MethodRow {
            name: "sd",
            description: "speculative decoding with one chain of L draft tokens",
            paper: SD,
            tree_kind: Some(TreeKind::RsdC),
            shape: ShapeFamily::Chain,
            default_depth: 4,
            default_width: 1,
        },
        SdBlock = MethodRow {
            name: "sd-block",
            description: "speculative decoding with one chain of L draft tokens verified as a block (never fewer \
                          accepted tokens than sd in expectation)",
            paper: BLOCK,
            tree_kind: Some(TreeKind::SdBlock),
            shape: ShapeFamily::Chain,
            default_depth: 4,
            default_width: 1,
        },
        Traversal = MethodRow {
            name: "traversal",
            description: "RSD-C's tree (Gumbel-top-k siblings) verified by traversal verification, leaf to root (never \
                          fewer accepted tokens than rsd-c in expectation on the instances tested)",
            paper: TRAVERSAL,
            tree_kind: Some(TreeKind::Traversal),
            shape: ShapeFamily::Fan,
            default_depth: 4,
            default_width: 2,
        },
        TraversalIid = MethodRow {
            name: "traversal-iid",
            description: "SpecInfer's tree (i.i.d. siblings) verified by traversal verification, leaf to root (never \
                          fewer accepted tokens than specinfer in expectation on the instances tested)",
            paper: TRAVERSAL,
            tree_kind: Some(TreeKind::TraversalIid),
            shape: ShapeFamily::Fan,
            default_depth: 4,
            default_width: 2,
        },
        SpecInfer = MethodRow {
            name: "specinfer",
            description: "SpecInfer: k i.i.d. chains sharing the root, RRS with replacement",
            paper: SPECINFER,
            tree_kind: Some(TreeKind::Iid),
            shape: ShapeFamily::Fan,
            default_depth: 4,
            default_width: 2,
        },
        RsdC = MethodRow {
            name: "rsd-c",
            description: "RSD-C: constant-branching tree, Gumbel-top-k siblings, RRS without replacement",
            paper: RSD,
            tree_kind: Some(TreeKind::RsdC),
            shape: ShapeFamily::Fan,
            default_depth: 4,
            default_width: 2,
        },
        RsdS = MethodRow {
            name: "rsd-s",
            description: "RSD-S: stochastic beam search tree, W beams per depth, RRS without replacement",
            paper: RSD,
            tree_kind: Some(TreeKind::RsdS),
            shape: ShapeFamily::Beam,
            default_depth: 4,
            default_width: 2,
        },
        Greedy = MethodRow {
            name: "greedy",
            description: "greedy multi-draft tree (top b-1 plus one draw) with Hu et al.'s greedy verifier",
            paper: HU,
            tree_kind: Some(TreeKind::Greedy),
            shape: ShapeFamily::Fan,
            default_depth: 4,
            default_width: 2,
        },
        SpecHub = MethodRow {
            name: "spechub",
            description: "SpecHub hub-pair tree (at most 2 children per node)",
            paper: SPECHUB,
            tree_kind: Some(TreeKind::SpecHub),
            shape: ShapeFamily::Fan,
            default_depth: 4,
            default_width: 2,
        },
        TopK = MethodRow {
            name: "topk",
            description: "deterministic top-k tree (EAGLE/SGLang style) verified by match",
            paper: EAGLE,
            tree_kind: Some(TreeKind::TopK),
            shape: ShapeFamily::Fan,
            default_depth: 4,
            default_width: 2,
        },
    }
}

/// `"a", "b", "c"` for an error message.
fn quoted(names: impl Iterator<Item = &'static str>) -> String {
    names.map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
}

impl Scheme {
    /// Parses a scheme name (or alias); the error names `arg` and lists the valid names.
    pub fn parse(arg: &str, s: &str) -> Result<Self> {
        Scheme::ALL.iter().copied().find(|x| x.row().name == s || x.row().aliases.contains(&s)).ok_or_else(|| {
            Error::invalid(arg, format!("unknown scheme {s:?}; expected one of {}", quoted(Scheme::ALL.iter().map(|x| x.as_str()))))
        })
    }

    /// True when the n drafts are distinct tokens (so n may not exceed the support of q).
    pub fn distinct(self) -> bool {
        self.row().distinct
    }

    /// The verifiers that are lossless for this scheme.
    pub fn verifiers(self) -> Vec<Verifier> {
        Verifier::ALL.iter().copied().filter(|v| v.supports(self)).collect()
    }
}

impl Verifier {
    pub fn parse(arg: &str, s: &str) -> Result<Self> {
        Verifier::ALL.iter().copied().find(|x| x.row().name == s).ok_or_else(|| {
            Error::invalid(arg, format!("unknown verifier {s:?}; expected one of {}", quoted(Verifier::ALL.iter().map(|x| x.as_str()))))
        })
    }

    /// The draft scheme used when none is named (None: `optimal` needs one).
    pub fn default_scheme(self) -> Option<Scheme> {
        self.row().default_scheme
    }

    /// Whether the verifier is lossless for drafts from `scheme`.
    pub fn supports(self, scheme: Scheme) -> bool {
        self.row().schemes.contains(scheme)
    }

    /// The schemes the verifier is lossless for, in registry order.
    pub fn schemes(self) -> Vec<Scheme> {
        self.row().schemes.list()
    }

    /// Whether its acceptance equals α* of `scheme`.
    pub fn is_optimal_for(self, scheme: Scheme) -> bool {
        self.supports(scheme) && self.row().optimal_for.contains(scheme)
    }

    /// Checks the number of drafts against the verifier's fixed n (`sd`: 1), naming `arg`.
    pub fn check_n(self, arg: &str, n: usize) -> Result<()> {
        match self.row().n {
            Some(k) if k != n => Err(Error::invalid(arg, format!("has {n} drafts but the {} verifier takes exactly {k}", self.as_str()))),
            _ => Ok(()),
        }
    }
}

/// Resolves the (verifier, scheme) pair: the verifier's default when `scheme` is None, checked
/// against the schemes it is lossless for. Errors name `scheme`.
pub fn resolve_scheme(verifier: Verifier, scheme: Option<Scheme>) -> Result<Scheme> {
    match scheme {
        None => verifier.default_scheme().ok_or_else(|| {
            Error::invalid(
                "scheme",
                format!(
                    "the {} verifier needs the draft law: name a scheme (one of {}), or use OptimalVerifier with an explicit law",
                    verifier.as_str(),
                    quoted(verifier.schemes().into_iter().map(Scheme::as_str))
                ),
            )
        }),
        Some(s) if verifier.supports(s) => Ok(s),
        Some(s) => Err(Error::invalid(
            "scheme",
            format!(
                "the {} verifier is not lossless for {} drafts; it supports: {}",
                verifier.as_str(),
                s.as_str(),
                quoted(verifier.schemes().into_iter().map(Scheme::as_str))
            ),
        )),
    }
}

impl TreeKind {
    /// Parses a tree kind; also returns whether `s` is a deprecated spelling (`rsd_c`, `rsd_s`).
    pub fn parse_name(arg: &str, s: &str) -> Result<(Self, bool)> {
        for k in TreeKind::ALL {
            if k.row().name == s {
                return Ok((k, false));
            }
            if k.row().deprecated.contains(&s) {
                return Ok((k, true));
            }
        }
        Err(Error::invalid(arg, format!("unknown tree kind {s:?}; expected one of {}", quoted(TreeKind::ALL.iter().map(|x| x.as_str())))))
    }

    /// Parses a tree kind, accepting deprecated spellings silently.
    pub fn parse(arg: &str, s: &str) -> Result<Self> {
        TreeKind::parse_name(arg, s).map(|x| x.0)
    }

    /// The node verifier of the kind (at a node with two or more children).
    pub fn verifier(self) -> Verifier {
        self.row().verifier
    }

    /// The verifier at a node with `children` children: none → `match` (a plain sample of p, the
    /// bonus token); one SpecHub child is one draw from q → `rrs_wor` (= single-draft SD);
    /// otherwise the kind's verifier.
    pub fn node_verifier(self, children: usize) -> Verifier {
        match children {
            0 => Verifier::Match,
            1 if self == TreeKind::SpecHub => Verifier::RrsWor,
            _ => self.verifier(),
        }
    }

    /// The law of the `b` children of one node: the kind's scheme, except SpecHub with b ≠ 2
    /// (one draw from q, i.e. `wor` with n = 1).
    pub fn child_scheme(self, b: usize) -> Scheme {
        match self.row().scheme {
            Scheme::SpecHub if b != 2 => Scheme::Wor,
            s => s,
        }
    }

    /// True when siblings are distinct tokens (so a level needs that many tokens in the support).
    pub fn distinct(self) -> bool {
        self.row().scheme.distinct()
    }

    /// Largest number of children per node this kind can draw.
    pub fn max_branching(self) -> usize {
        self.row().max_branching.unwrap_or(usize::MAX)
    }
}

impl Method {
    pub fn parse(arg: &str, s: &str) -> Result<Self> {
        Method::ALL.iter().copied().find(|x| x.row().name == s).ok_or_else(|| {
            Error::invalid(arg, format!("unknown method {s:?}; expected one of {}", quoted(Method::ALL.iter().map(|x| x.as_str()))))
        })
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
        for v in Verifier::ALL {
            assert_eq!(Verifier::parse("verifier", v.as_str()).unwrap(), v);
        }
        for k in TreeKind::ALL {
            assert_eq!(TreeKind::parse_name("kind", k.as_str()).unwrap(), (k, false));
        }
        for m in Method::ALL {
            assert_eq!(Method::parse("method", m.as_str()).unwrap(), m);
        }
        assert_eq!(Scheme::parse("scheme", "wor_paper").unwrap(), Scheme::Cp);
        assert_eq!(TreeKind::parse_name("kind", "rsd_s").unwrap(), (TreeKind::RsdS, true));
        assert_eq!(Scheme::parse("scheme", "beam").unwrap_err().arg(), "scheme");
        let e = Verifier::parse("verifier", "x").unwrap_err();
        assert_eq!(e.arg(), "verifier");
        assert!(e.to_string().contains("\"rrs_wor\""), "{e}");
        assert_eq!(TreeKind::parse("kind", "rsd").unwrap_err().arg(), "kind");
        assert_eq!(Method::parse("method", "rsd_s").unwrap_err().arg(), "method");
    }

    #[test]
    fn the_table_is_consistent() {
        // Every name (and alias) is unique within its table.
        let mut names: Vec<&str> =
            Scheme::ALL.iter().flat_map(|s| std::iter::once(s.as_str()).chain(s.row().aliases.iter().copied())).collect();
        let len = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), len);
        for v in Verifier::ALL {
            let r = v.row();
            // The default scheme is one the verifier is exact for; optimal_for ⊆ schemes.
            if let Some(s) = r.default_scheme {
                assert!(v.supports(s), "{v:?}");
            }
            for s in Scheme::ALL {
                assert!(!v.is_optimal_for(s) || v.supports(s));
                assert_eq!(v.supports(s), s.verifiers().contains(&v));
            }
            assert!(!r.description.is_empty() && !r.paper.is_empty());
        }
        for k in TreeKind::ALL {
            // The kind's verifier is exact for its children's law.
            assert!(k.verifier().supports(k.row().scheme), "{k:?}");
            for b in 1..=k.max_branching().min(3) {
                assert!(k.node_verifier(b).supports(k.child_scheme(b)), "{k:?} b={b}");
            }
        }
        for m in Method::ALL {
            let r = m.row();
            assert_eq!(r.tree_kind.is_none(), r.shape == ShapeFamily::None, "{m:?}");
            if let Some(k) = r.tree_kind {
                assert!(r.default_shape().iter().all(|&b| b >= 1 && b <= k.max_branching()));
                assert_eq!(r.default_shape().len(), r.default_depth);
            }
        }
        assert_eq!(Method::RsdS.row().default_shape(), vec![2, 2, 2, 2]);
        assert_eq!(Method::Sd.row().default_shape(), vec![1, 1, 1, 1]);
        assert_eq!(Method::RsdC.row().default_shape(), vec![2, 1, 1, 1]);
    }

    #[test]
    fn scheme_resolution() {
        assert_eq!(resolve_scheme(Verifier::Match, None).unwrap(), Scheme::TopK);
        assert_eq!(resolve_scheme(Verifier::Match, Some(Scheme::Iid)).unwrap(), Scheme::Iid);
        assert_eq!(resolve_scheme(Verifier::Optimal, None).unwrap_err().arg(), "scheme");
        assert_eq!(resolve_scheme(Verifier::Rrs, Some(Scheme::Wor)).unwrap_err().arg(), "scheme");
        assert_eq!(resolve_scheme(Verifier::Sd, Some(Scheme::SpecHub)).unwrap_err().arg(), "scheme");
        assert!(Verifier::Sd.check_n("n", 2).is_err() && Verifier::Sd.check_n("n", 1).is_ok());
    }
}
