"""Multi-branch merge: k parallel chains of conv / BN / ReLU on one input become one wide chain.

Per position the k layers become one: a conv on the shared input stacks its output rows (C → k·C'), a conv on
stacked input becomes a grouped conv with k·g groups (block-diagonal), BN concatenates its vectors (a BN on the
shared input first repeats it k times), ReLU applies once. When the chains' outputs are summed and the last
layer is a dense conv, Σ_i conv_i(h_i) is one conv over the stacked input with the weights concatenated along
the input dimension and the biases summed: the ResNeXt equivalence (1×1 → grouped 3×3 → 1×1). When the
outputs are used separately (MaskConnect blocks that read the same input), the merged chain ends stacked and
each block reads its channel slice.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass
from enum import Enum

import torch
from torch import fx, nn

from prunex.nn.conv_geometry import conv_like
from prunex.passes.branch_chains import (
    Chain,
    chain_from,
    layer_signature,
    mergeable,
    parallel_groups,
    sum_leaves,
    sum_root,
)
from prunex.passes.graph import (
    as_channel_slice,
    finish,
    fresh_name,
    module_of,
    narrow_channels,
    propagate_shapes,
)
from prunex.passes.protocol import GraphPass
from prunex.passes.tuning import DecisionKind, Tuner


class BranchRealisation(Enum):
    """How k parallel chains run: merged into one wide chain, or separately."""

    MERGED = "merged"
    SEPARATE = "separate"

    @property
    def label(self) -> str:
        return self.value


class RepeatChannels(nn.Module):
    """x → [x, x, …, x] along channels (k copies): a BN of the shared input, stacked for the merged chain. In the
    graph it becomes ``torch.cat([x] * k, 1)``: a concatenation to the permutation pass, one Concat in ONNX (a
    ``repeat`` exports as Expand + Tile)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x] * self.k, 1)


def _merged_layer(modules: list[nn.Module], stacked: bool, sum_out: bool) -> tuple[nn.Module, bool] | None:
    """One layer replacing ``modules`` (one per branch); returns (layer, output stacked?) or None."""
    k, m = len(modules), modules[0]
    with torch.no_grad():
        if isinstance(m, nn.Conv2d):
            weights = [x.weight for x in modules]
            if sum_out and m.groups == 1:  # Σ_i conv_i(h_i): one conv over the stacked input, biases summed
                conv = conv_like(m, m.in_channels * (k if stacked else 1), m.out_channels, 1)
                conv.weight.copy_(torch.cat(weights, 1) if stacked else torch.stack(weights).sum(0))
                if m.bias is not None:
                    conv.bias.copy_(torch.stack([x.bias for x in modules]).sum(0))
                return conv, False
            if sum_out or (not stacked and m.groups != 1):
                return None
            # shared input: output rows stacked; stacked input: block-diagonal, k·g groups
            conv = conv_like(
                m, m.in_channels * (k if stacked else 1), m.out_channels * k, m.groups * k if stacked else 1
            )
            conv.weight.copy_(torch.cat(weights, 0))
            if m.bias is not None:
                conv.bias.copy_(torch.cat([x.bias for x in modules], 0))
            return conv, True
        if sum_out:  # a sum of BN or ReLU outputs is not one layer
            return None
        if isinstance(m, nn.BatchNorm2d):
            bn = nn.BatchNorm2d(m.num_features * k, eps=m.eps, affine=m.affine)
            for name in ("weight", "bias", "running_mean", "running_var"):
                if getattr(m, name) is not None:
                    getattr(bn, name).copy_(torch.cat([getattr(x, name) for x in modules]))
            return bn.eval(), True
        return nn.ReLU(), stacked


def _build(gm: fx.GraphModule, chains: list[Chain], sum_out: bool, stacked: bool = False) -> list[nn.Module] | None:
    """The merged chain's layers (a :class:`RepeatChannels` where the shared input must be stacked first);
    ``stacked``: the chains read consecutive slices of one tensor, not one shared input."""
    layers = []
    for pos in range(len(chains[0].nodes)):
        modules = [module_of(gm, c.nodes[pos]) for c in chains]
        is_tail = pos == len(chains[0].nodes) - 1
        if isinstance(modules[0], nn.BatchNorm2d) and not stacked:
            layers.append(RepeatChannels(len(chains)))
            stacked = True
        built = _merged_layer(modules, stacked, sum_out and is_tail)
        if built is None:
            return None
        layer, stacked = built
        layers.append(layer)
    if not sum_out and not stacked:  # e.g. a lone ReLU of the shared input: nothing to merge
        return None
    return layers


def _emit(gm: fx.GraphModule, chains: list[Chain], layers: list, after: fx.Node, x: fx.Node | None = None) -> fx.Node:
    """Insert the merged chain (reading ``x``, by default the chains' shared input) after ``after``; returns its
    output node."""
    base = fresh_name(gm, f"merged_{chains[0].nodes[0].target}")
    x, cursor = x or chains[0].input, after
    for i, layer in enumerate(layers):
        with gm.graph.inserting_after(cursor):
            if isinstance(layer, RepeatChannels):
                x = gm.graph.call_function(torch.cat, ([x] * layer.k, 1))
            else:
                gm.add_submodule(f"{base}.{i}", layer)
                x = gm.graph.call_module(f"{base}.{i}", (x,))
        cursor = x
    return x


def _last(gm: fx.GraphModule, nodes: list[fx.Node]) -> fx.Node:
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    return max(nodes, key=order.__getitem__)


@dataclass(frozen=True)
class SlicedSource:
    """Chains read ``narrow(base, 1, start + i·width, width)``, i = 0 … k−1."""

    base: fx.Node
    start: int
    width: int
    k: int

    def input(self, gm: fx.GraphModule) -> fx.Node:
        """The stacked input: ``base`` itself, or the narrow of it the chains cover (inserted here)."""
        return narrow_channels(gm, self.base, self.start, self.k * self.width)


def sliced_chain_groups(gm: fx.GraphModule) -> list[tuple[list[Chain], SlicedSource]]:
    """Runs of ≥ 2 chains with identical layer signatures on consecutive equal slices of one tensor (one chain
    per slice; each chain's input is its slice)."""
    by_key: dict[tuple, list[tuple[int, Chain]]] = {}
    for node in gm.graph.nodes:
        sl = as_channel_slice(node)
        if sl is None:
            continue
        heads = [u for u in node.users if mergeable(gm, u) and u.args[0] is node]
        signatures = set()
        for head in heads:
            chain = chain_from(gm, head)
            sig = tuple(layer_signature(module_of(gm, n)) for n in chain.nodes)
            if all(part == ("relu",) for part in sig) or sig in signatures:  # a lone ReLU is lifted; two alike on
                continue  # one slice are a shared-input group (MergeParallelBranches)
            signatures.add(sig)
            by_key.setdefault((sl.base, sl.width, sig), []).append((sl.start, chain))
    groups = []
    for (base, width, _), found in by_key.items():
        found.sort(key=lambda f: f[0])
        run = [found[0]]
        for item in found[1:] + [None]:
            if item is not None and item[0] == run[-1][0] + width:
                run.append(item)
                continue
            if len(run) >= 2:
                groups.append(([c for _, c in run], SlicedSource(base, run[0][0], width, len(run))))
            run = [item] if item is not None else []
    return groups


def merge_shared_chains(gm: fx.GraphModule, tuner: Tuner | None = None, skipped: set | None = None) -> bool:
    """Merge one group of parallel chains on a shared input (what :class:`MergeParallelBranches` does, here for
    the groups it left, on sums); True if one was merged. Groups that cannot or (by the tuner) should not merge
    are added to ``skipped`` and not asked about again."""
    skipped = set() if skipped is None else skipped
    for chains in parallel_groups(gm, only_sums=True):
        key = tuple(c.nodes[0].name for c in chains)
        if key in skipped:
            continue
        if _merge(gm, chains, tuner):
            return True
        skipped.add(key)
    return False


def merge_sliced_chains(gm: fx.GraphModule, group: tuple[list[Chain], SlicedSource]) -> bool:
    """Merge chains on consecutive slices of one tensor into one grouped chain on the stacked slices."""
    chains, source = group
    return _merge(gm, chains, source=source)


class SeparateChains(nn.Module):
    """The k chains run one by one (summed if they were): what merging replaces, for timing."""

    def __init__(self, chains: list[list[nn.Module]], summed: bool) -> None:
        super().__init__()
        self.chains = nn.ModuleList(nn.Sequential(*c) for c in chains)
        self.summed = summed

    def forward(self, x):
        outs = [c(x) for c in self.chains]
        return sum(outs[1:], outs[0]) if self.summed else outs


def _merge_pays(gm: fx.GraphModule, chains: list[Chain], layers: list, summed: bool, tuner: Tuner) -> bool:
    """Ask the tuner whether the merged chain beats the separate ones on the target."""
    x = chains[0].input
    shape = (tuner.target.batch, *tuple(x.meta["tensor_meta"].shape)[1:])
    modules = [[module_of(gm, n) for n in c.nodes] for c in chains]
    signature = (
        f"branches k={len(chains)} {'summed' if summed else 'stacked'} "
        f"{[type(m).__name__ for m in modules[0]]} {[layer_signature(m) for m in modules[0]]} in {shape[1:]}"
    )
    chosen = tuner.choose(
        DecisionKind.BRANCHES,
        chains[0].nodes[0].target,
        f"{len(chains)} branches",
        signature,
        shape,
        {
            BranchRealisation.MERGED: lambda: nn.Sequential(*copy.deepcopy(layers)).eval(),
            BranchRealisation.SEPARATE: lambda: SeparateChains(copy.deepcopy(modules), summed).eval(),
        },
        prefer=BranchRealisation.MERGED,
    )
    return chosen is BranchRealisation.MERGED


def _merge(
    gm: fx.GraphModule, chains: list[Chain], tuner: Tuner | None = None, source: SlicedSource | None = None
) -> bool:
    """Merge one group of parallel chains (on one shared input, or with ``source`` on consecutive slices of one
    tensor); False if their layers cannot be merged (or, with a tuner, if merging is slower on the target)."""
    root = sum_root(chains[0].tail)
    tails = {c.tail for c in chains}
    summed = root.target is operator.add and tails <= set(sum_leaves(root))
    stacked = source is not None
    layers = _build(gm, chains, sum_out=True, stacked=stacked) if summed else None
    if layers is None:
        summed, layers = False, _build(gm, chains, sum_out=False, stacked=stacked)
    if layers is None:
        return False
    if tuner is not None and not stacked and not _merge_pays(gm, chains, layers, summed, tuner):
        return False
    if source is None:
        out = _emit(gm, chains, layers, after=chains[0].input)  # it needs only the shared input
    else:
        with gm.graph.inserting_after(source.base):
            x = source.input(gm)
        out = _emit(gm, chains, layers, after=x, x=x)
    if summed:  # Σ tails → merged output; the other terms of the sum are added back
        acc = out
        for leaf in [x for x in sum_leaves(root) if x not in tails]:
            anchor = _last(gm, [acc, leaf]) if isinstance(leaf, fx.Node) else acc
            with gm.graph.inserting_after(anchor):
                acc = gm.graph.call_function(operator.add, (leaf, acc))
        root.replace_all_uses_with(acc)
    else:  # each chain's consumers read its channel slice of the stacked output
        width, cursor = _channels_of(gm, chains[0]), out
        for i, chain in enumerate(chains):
            with gm.graph.inserting_after(cursor):
                cursor = gm.graph.call_function(torch.narrow, (out, 1, i * width, width))
            chain.tail.replace_all_uses_with(cursor)
    gm.graph.eliminate_dead_code()
    return True


class MergeParallelBranches(GraphPass):
    """Merge every group of parallel chains; with a ``tuner``, only where the merged chain measures faster on its
    target (then ``example_shape``, the input's (C, H, W), is needed too)."""

    name = "merge_parallel_branches"

    def __init__(
        self, tuner: Tuner | None = None, example_shape: tuple[int, ...] | None = None, leave_sums: bool = False
    ) -> None:
        if tuner is not None and example_shape is None:
            raise ValueError("a tuned branch merge needs the input shape (C, H, W)")
        self.tuner, self.example_shape, self.leave_sums = tuner, example_shape, leave_sums

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        skipped: set[tuple[str, ...]] = set()
        merged = True
        while merged:
            merged = False
            if self.tuner is not None:  # shapes of the nodes a previous merge created
                gm.recompile()
                propagate_shapes(gm, self.example_shape)
            for chains in parallel_groups(gm, self.leave_sums):
                key = tuple(c.nodes[0].name for c in chains)
                if key in skipped:
                    continue
                if _merge(gm, chains, self.tuner):
                    merged = True
                    break
                skipped.add(key)
        return finish(gm)


def _channels_of(gm: fx.GraphModule, chain: Chain) -> int:
    for node in reversed(chain.nodes):
        m = module_of(gm, node)
        if isinstance(m, nn.Conv2d):
            return m.out_channels
        if isinstance(m, nn.BatchNorm2d):
            return m.num_features
    raise ValueError("a chain of ReLUs has no channel count")
