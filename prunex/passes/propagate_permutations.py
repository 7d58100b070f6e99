"""Permutation propagation: remove every channel gather a layer of the network can absorb, over the whole graph.

Give every activation v with a channel dimension a *layout* σ_v: the tensor the network stores is the logical
one with its channels permuted, stored[:, j] = logical[:, σ_v[j]]. A network computes the same function under any
choice of layouts as long as every layer is rewritten for them:

- a dense conv or linear layer absorbs any layout on either side: input columns W[:, σ_in], output rows W[σ_out]
  and b[σ_out]; a grouped conv any layout that keeps each of its groups in place; linear layers that read an
  (N, C, H, W) map flattened to (N, C·H·W) absorb its layout in blocks of H·W columns;
- per-channel layers pass the layout on (σ_out = σ_in): BatchNorm (its vectors re-indexed), depthwise convs (their
  filters re-indexed), activations, pooling, dropout, scalar arithmetic; so do additions and products of
  activations (all operands and the result share one layout) and per-channel constants (re-indexed);
- a concatenation lays its inputs side by side (σ_out = σ_1 ⊕ σ_2 ⊕ …) and a channel slice takes its part of the
  layout (which must keep the slice's channels in the slice);
- reading a shape (``x.size()``) constrains nothing; the network's inputs and outputs, and anything not listed,
  keep the identity layout;
- a gather y = x[:, p] costs nothing when σ_x = p ∘ σ_y: it is then the identity on the stored tensors. Otherwise it
  stays, as the gather of stored channels σ_x⁻¹ ∘ p ∘ σ_y.

Layers that pass layouts on tie their activations into one class with one layout (union-find). The pass chooses
which gathers to remove so that the constraints between classes (gathers, concatenations, slices, groups, fixed
identities) can all be met: exhaustively for the gathers that interact (up to ``EXACT_LIMIT`` at a time), greedily
beyond. Each remaining gather is reported with the node whose order forces it.
"""

from __future__ import annotations

from torch import fx

from prunex.passes.graph import finish, propagate_shapes
from prunex.passes.layouts.constraints import build_problem
from prunex.passes.layouts.rewrite import KeptGather, explain, rewrite_layouts
from prunex.passes.layouts.rules import is_gather
from prunex.passes.layouts.solver import Solution, assign, solve
from prunex.passes.protocol import GraphPass

__all__ = ["KeptGather", "PropagatePermutations", "gather_report", "is_gather", "remaining_gathers"]


class PropagatePermutations(GraphPass):
    """Remove every gather the network's layers can absorb (module docstring); the rest are re-indexed in place.
    ``example_shape``, the input's (C, H, W), gives the channel counts."""

    name = "propagate_permutations"

    def __init__(self, example_shape: tuple[int, ...] | None = None) -> None:
        self.example_shape = example_shape

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        if not any(is_gather(n) for n in gm.graph.nodes):
            return gm
        if self.example_shape is None:
            raise ValueError("propagate_permutations needs the input shape (C, H, W) to know the channel counts")
        propagate_shapes(gm, self.example_shape)
        problem, uf = build_problem(gm)
        rewrite_layouts(gm, uf, problem, solve(problem))
        gm.graph.eliminate_dead_code()
        return finish(gm)


def gather_report(gm: fx.GraphModule, example_shape: tuple[int, ...]) -> list[KeptGather]:
    """Every gather left in ``gm`` and the node whose order forces it (what removing it alone would break)."""
    if not any(is_gather(n) for n in gm.graph.nodes):
        return []
    propagate_shapes(gm, example_shape)
    problem, _ = build_problem(gm)
    return explain(problem, Solution(set(), set(), assign(problem, set(), set(range(len(problem.pins))))))


def remaining_gathers(gm: fx.GraphModule) -> list[str]:
    """Names of the gather nodes still in the graph (each one is a run-time channel shuffle)."""
    return [n.name for n in gm.graph.nodes if is_gather(n)]
