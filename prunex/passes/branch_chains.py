"""Parallel chains in a graph: runs of conv / BN / ReLU with one reader each that start from the same node with the
same layer signatures (what :mod:`prunex.passes.merge_branches` merges and :mod:`prunex.passes.stack_blocks`
stacks), and the sums that combine their outputs."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from torch import fx, nn

from prunex.passes.graph import module_of

MERGEABLE = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU)


def mergeable(gm: fx.GraphModule, node: fx.Node) -> bool:
    return (
        node.op == "call_module"
        and type(module_of(gm, node)) in MERGEABLE
        and len(node.args) == 1
        and not node.kwargs
        and (type(module_of(gm, node)) is not nn.BatchNorm2d or module_of(gm, node).track_running_stats)
    )


def layer_signature(module: nn.Module) -> tuple:
    """What two layers must share to merge: type and every shape and setting."""
    if isinstance(module, nn.Conv2d):
        return (
            "conv",
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
            module.bias is not None,
            module.padding_mode,
        )
    if isinstance(module, nn.BatchNorm2d):
        return ("bn", module.num_features, module.eps, module.affine)
    return ("relu",)


@dataclass
class Chain:
    input: fx.Node
    nodes: list[fx.Node]

    @property
    def tail(self) -> fx.Node:
        return self.nodes[-1]


def chain_from(gm: fx.GraphModule, head: fx.Node) -> Chain:
    nodes = [head]
    while len(nodes[-1].users) == 1:
        (nxt,) = nodes[-1].users
        if not mergeable(gm, nxt) or nxt.args[0] is not nodes[-1]:
            break
        nodes.append(nxt)
    return Chain(head.args[0], nodes)


def is_sum(node: fx.Node) -> bool:
    return node.op == "call_function" and node.target in (operator.add, operator.mul)


def parallel_groups(gm: fx.GraphModule, leave_sums: bool = False, only_sums: bool = False) -> list[list[Chain]]:
    """Groups of ≥ 2 chains with identical layer signatures that start from the same node (with ``leave_sums``,
    not from a sum or a scaled node: blocks that read one combination of other blocks are left for
    :class:`~prunex.passes.stack_blocks.StackBlocks`, which gives each its own slice)."""
    groups = []
    for x in gm.graph.nodes:
        if (leave_sums and is_sum(x)) or (only_sums and not is_sum(x)):
            continue
        heads = [u for u in x.users if mergeable(gm, u) and u.args[0] is x]
        by_signature: dict[tuple, list[Chain]] = {}
        for head in heads:
            chain = chain_from(gm, head)
            sig = tuple(layer_signature(module_of(gm, n)) for n in chain.nodes)
            by_signature.setdefault(sig, []).append(chain)
        groups += [chains for chains in by_signature.values() if len(chains) > 1]
    return groups


def sum_root(node: fx.Node) -> fx.Node:
    while len(node.users) == 1 and next(iter(node.users)).target is operator.add:
        node = next(iter(node.users))
    return node


def sum_leaves(root: fx.Node) -> list:
    if isinstance(root, fx.Node) and root.op == "call_function" and root.target is operator.add:
        leaves = []
        for arg in root.args:
            single = isinstance(arg, fx.Node) and len(arg.users) == 1 and arg.target is operator.add
            leaves += sum_leaves(arg) if single else [arg]
        return leaves
    return [root]
