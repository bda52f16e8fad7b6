"""A draft tree grown level by level, and its flattening for tree attention (rsd.md §8).

Nodes are stored in BFS (depth-major) order, node 0 being the root (the last committed token,
whose KV is not cached yet). Because nodes are appended level by level, every prefix of the
node list that ends at a level boundary is itself a tree, so the draft model's cache (which
holds the nodes of depth < L) is a prefix of the target's (which holds them all).
"""

from __future__ import annotations

import numpy as np
import torch


class Tree:
    """Tokens, parents and depths of a draft tree (the loop's mirror of the Rust tree, for the
    attention masks); ``children[i]`` in draw order.

    ``anc[i, j]`` (grown with the tree) says whether node j is node i or one of its ancestors: row
    i is its parent's row plus itself, so each mask row costs one row copy when the node is added
    instead of a walk up the tree for every forward.
    """

    def __init__(self, root_token: int):
        self.tokens: list[int] = [int(root_token)]
        self.parents: list[int] = [-1]
        self.depths: list[int] = [0]
        self.children: list[list[int]] = [[]]
        self._anc = np.zeros((16, 16), dtype=bool)
        self._anc[0, 0] = True

    def __len__(self) -> int:
        return len(self.tokens)

    def add(self, parent: int, token: int) -> int:
        i = len(self.tokens)
        self.tokens.append(int(token))
        self.parents.append(int(parent))
        self.depths.append(self.depths[parent] + 1)
        self.children.append([])
        self.children[parent].append(i)
        if i >= self._anc.shape[0]:
            grown = np.zeros((2 * i, 2 * i), dtype=bool)
            grown[:i, :i] = self._anc[:i, :i]
            self._anc = grown
        self._anc[i, :i] = self._anc[parent, :i]
        self._anc[i, i] = True
        return i

    def level(self, d: int) -> list[int]:
        return [i for i, dd in enumerate(self.depths) if dd == d]

    @property
    def max_depth(self) -> int:
        return max(self.depths)

    def ancestors_mask(self, rows: list[int], cols: int) -> np.ndarray:
        """Boolean (len(rows), cols): row r may attend node c iff c is an ancestor of r or r."""
        return self._anc[rows, :cols]


def tree_attention_inputs(
    tree: Tree, rows: list[int], n_cached: int, n_tree_cached: int, base_pos: int, device: torch.device
):
    """Inputs for a forward over tree nodes ``rows`` (consecutive indices) given a cache.

    The cache holds ``n_cached`` committed tokens followed by tree nodes ``0..n_tree_cached-1``.
    Returns (input_ids (1, R), position_ids (1, R), boolean 4-D mask (1, 1, R, n_cached +
    n_tree_cached + R)). A node at depth d sits at position ``base_pos + d`` where ``base_pos`` is
    the root's position.
    """
    r0, r = rows[0], len(rows)
    assert r0 == n_tree_cached and rows[-1] == r0 + r - 1
    cols = n_tree_cached + r
    mask = np.ones((r, n_cached + cols), dtype=bool)
    mask[:, n_cached:] = tree._anc[r0:r0 + r, :cols]
    ids = torch.tensor([tree.tokens[r0:r0 + r]], dtype=torch.long, device=device)
    pos = torch.tensor([[base_pos + d for d in tree.depths[r0:r0 + r]]], dtype=torch.long, device=device)
    return ids, pos, torch.from_numpy(mask).to(device)[None, None]
