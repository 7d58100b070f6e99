"""Permutation folding: absorb channel gathers into neighbouring layers so that none runs at inference.

A gather y = x[:, p] moves through per-channel layers — BN(x[:, p]) = BN'(x)[:, p] with BN's vectors re-indexed,
ReLU(x[:, p]) = ReLU(x)[:, p] — until it meets a dense conv that absorbs it: upward into the producer's output
rows (conv(u)[:, p] = conv'(u), W' = W[p]) or downward into every consumer's input columns
(conv(x[:, p]) = conv'(x), W' = W[:, p⁻¹]). In a G-ResNeXt bottleneck conv1 → BN → ReLU → DGConv → BN → ReLU →
conv3 both gathers of the DGConv vanish. A gather that neither direction can absorb stays where it was and is
reported.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from prunex.passes.graph import finish, is_module, module_of, own_module
from prunex.passes.lower_dgconv import inverse_permutation

ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.SiLU,
    nn.GELU,
    nn.Hardswish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
)
ELEMENTWISE_FUNCTIONS = (torch.relu, nn.functional.relu)


def is_gather(node: fx.Node) -> bool:
    return (
        node.op == "call_function"
        and node.target is torch.index_select
        and node.args[1] == 1
        and isinstance(node.args[2], fx.Node)
        and node.args[2].op == "get_attr"
    )


def gather_order(gm: fx.GraphModule, node: fx.Node) -> torch.Tensor:
    return gm.get_buffer(node.args[2].target)


def _is_channelwise(gm: fx.GraphModule, node: fx.Node) -> bool:
    if is_module(gm, node, (nn.BatchNorm2d, *ELEMENTWISE_MODULES)):
        return True
    return node.op == "call_function" and node.target in ELEMENTWISE_FUNCTIONS


def _is_dense_conv(gm: fx.GraphModule, node: fx.Node) -> bool:
    return is_module(gm, node, nn.Conv2d) and module_of(gm, node).groups == 1


def _permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            t = getattr(bn, name)
            if t is not None:
                t.copy_(t[order])


def _route_up(gm: fx.GraphModule, gather: fx.Node) -> list[fx.Node] | None:
    """Per-channel single-user producers the gather would pass, ending at the dense conv that absorbs it."""
    path, node = [], gather.args[0]
    while isinstance(node, fx.Node) and len(node.users) == 1:
        if _is_dense_conv(gm, node):
            return [*path, node]
        if not _is_channelwise(gm, node):
            return None
        path.append(node)
        node = node.args[0]
    return None


def _route_down(gm: fx.GraphModule, gather: fx.Node) -> tuple[list[fx.Node], list[fx.Node]] | None:
    """(per-channel single-input consumers it would pass, the dense convs that absorb it at the end)."""
    path, node = [], gather
    while len(node.users) == 1:
        (user,) = node.users
        if not _is_channelwise(gm, user) or user.args[0] is not node:
            break
        path.append(user)
        node = user
    ends = list(node.users)
    if ends and all(_is_dense_conv(gm, u) and u.args[0] is node and len(u.args) == 1 for u in ends):
        return path, ends
    return None


def _absorb_up(gm: fx.GraphModule, gather: fx.Node, route: list[fx.Node]) -> None:
    order = gather_order(gm, gather)
    *passed, conv_node = route
    for node in passed:
        if is_module(gm, node, nn.BatchNorm2d):
            _permute_bn(own_module(gm, node), order)
    conv = own_module(gm, conv_node)
    with torch.no_grad():
        conv.weight = nn.Parameter(conv.weight[order], requires_grad=False)
        if conv.bias is not None:
            conv.bias = nn.Parameter(conv.bias[order], requires_grad=False)
    gather.replace_all_uses_with(gather.args[0])
    gm.graph.erase_node(gather)


def _absorb_down(gm: fx.GraphModule, gather: fx.Node, passed: list[fx.Node], convs: list[fx.Node]) -> None:
    order = gather_order(gm, gather)
    inv = inverse_permutation(order)
    for node in passed:
        if is_module(gm, node, nn.BatchNorm2d):
            _permute_bn(own_module(gm, node), inv)
    for conv_node in convs:
        conv = own_module(gm, conv_node)
        with torch.no_grad():
            conv.weight = nn.Parameter(conv.weight[:, inv], requires_grad=False)
    gather.replace_all_uses_with(gather.args[0])
    gm.graph.erase_node(gather)


def fold_permutations(gm: fx.GraphModule) -> fx.GraphModule:
    for gather in [n for n in gm.graph.nodes if is_gather(n)]:
        route = _route_up(gm, gather)
        if route is not None:
            _absorb_up(gm, gather, route)
            continue
        down = _route_down(gm, gather)
        if down is not None:
            _absorb_down(gm, gather, *down)
    gm.graph.eliminate_dead_code()
    return finish(gm)


def remaining_gathers(gm: fx.GraphModule) -> list[str]:
    """Names of the gather nodes still in the graph (each one is a run-time channel shuffle)."""
    return [n.name for n in gm.graph.nodes if is_gather(n)]
