"""Removal of no-ops: identity modules, dropout in eval, multiplication by 1, addition of 0, identity gathers."""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from prunex.passes.graph import finish, is_module
from prunex.passes.propagate_permutations import is_gather
from prunex.passes.protocol import GraphPass


def _is_noop(gm: fx.GraphModule, node: fx.Node) -> fx.Node | None:
    """The node this one can be replaced by, or None."""
    if is_module(gm, node, (nn.Identity, nn.Dropout)):
        return node.args[0]
    if node.op == "call_function" and node.target in (operator.mul, operator.truediv):
        a, b = node.args
        if isinstance(b, (int, float)) and not isinstance(b, bool) and b == 1:
            return a
        if node.target is operator.mul and isinstance(a, (int, float)) and not isinstance(a, bool) and a == 1:
            return b
    if node.op == "call_function" and node.target in (operator.add, operator.sub):
        a, b = node.args
        if isinstance(b, (int, float)) and not isinstance(b, bool) and b == 0:
            return a
    if is_gather(node):
        order = gm.get_buffer(node.args[2].target)
        if torch.equal(order, torch.arange(len(order), device=order.device)):
            return node.args[0]
    return None


class RemoveNoops(GraphPass):
    """Replace every no-op node by its input."""

    name = "remove_noops"

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        for node in list(gm.graph.nodes):
            replacement = _is_noop(gm, node)
            if replacement is not None and isinstance(replacement, fx.Node):
                node.replace_all_uses_with(replacement)
                gm.graph.erase_node(node)
        gm.graph.eliminate_dead_code()
        return finish(gm)
