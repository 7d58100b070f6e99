"""Constant-fold gate arithmetic: a 0-gated term disappears, a 1-gated term becomes a plain addition.

Frozen MaskConnect masks enter the graph as constant buffers; ``mask[j, k] * y_k`` terms are evaluated, then
``0 · y`` is dropped from sums and ``1 · y`` becomes ``y``. A zero that reaches anything but a sum is kept as
``torch.zeros_like`` of its operand, so nothing the graph computes is lost.
"""

from __future__ import annotations

import operator

import torch
from torch import fx

from prunex.passes.graph import finish
from prunex.passes.protocol import GraphPass

FOLDABLE = (operator.getitem, operator.mul, operator.add, operator.truediv, operator.sub)
MAX_CONSTANT_NUMEL = 1 << 16  # small buffers only: gate masks, not weights


def _constant_buffers(gm: fx.GraphModule) -> dict[str, torch.Tensor]:
    params = {n for n, _ in gm.named_parameters()}
    return {n: b for n, b in gm.named_buffers() if n not in params and b.numel() <= MAX_CONSTANT_NUMEL}


def _number(value) -> float | None:
    if isinstance(value, (bool, fx.Node)):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    return None


class FoldGateConstants(GraphPass):
    """Evaluate the gate arithmetic; drop 0-gated terms from sums, pass 1-gated terms through."""

    name = "fold_gate_constants"

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        buffers = _constant_buffers(gm)
        constant: dict[fx.Node, object] = {}  # nodes whose value is computed from constants only
        zero_like: dict[fx.Node, fx.Node] = {}  # nodes known to be all zeros -> a tensor node of the same shape

        def is_constant(arg) -> bool:
            return not isinstance(arg, fx.Node) or arg in constant

        for node in list(gm.graph.nodes):
            if node.op == "get_attr" and node.target in buffers:
                constant[node] = buffers[node.target]
                continue
            if node.op != "call_function":
                continue
            if node.target in FOLDABLE and all(map(is_constant, node.args)):
                result = node.target(*(constant[a] if isinstance(a, fx.Node) else a for a in node.args))
                constant[node] = result
                number = _number(result)
                if number is not None:  # users receive the plain number
                    for user in list(node.users):
                        user.args = fx.node.map_arg(user.args, lambda n, node=node, x=number: x if n is node else n)
                continue
            if node.target is operator.mul:
                a, b = node.args
                tensors = [x for x in (a, b) if isinstance(x, fx.Node)]
                if _number(a) == 0.0 or _number(b) == 0.0 or any(t in zero_like for t in tensors):
                    zero_like[node] = next((zero_like.get(t, t) for t in tensors), None)
                elif _number(a) == 1.0:
                    node.replace_all_uses_with(b)
                elif _number(b) == 1.0:
                    node.replace_all_uses_with(a)
            elif node.target is operator.add:
                a, b = node.args
                if a in zero_like and b in zero_like:
                    zero_like[node] = zero_like[a]
                elif isinstance(a, fx.Node) and a in zero_like:
                    node.replace_all_uses_with(b)
                elif isinstance(b, fx.Node) and b in zero_like:
                    node.replace_all_uses_with(a)

        # A zero still used by something other than a sum becomes an explicit zeros_like of a same-shaped tensor.
        for node, shape_source in zero_like.items():
            if node.users:
                with gm.graph.inserting_after(node):
                    zeros = gm.graph.call_function(torch.zeros_like, (shape_source,))
                node.replace_all_uses_with(zeros)
        # Erase the gate arithmetic this pass made unused; computations it orphaned are the next pass's job.
        for node in reversed(list(gm.graph.nodes)):
            if not node.users and (node in constant or node in zero_like or _is_gate_arithmetic(node)):
                gm.graph.erase_node(node)
        return finish(gm)


def _is_gate_arithmetic(node: fx.Node) -> bool:
    """A sum or product left without users after folding (its result was replaced by an operand)."""
    return node.op == "call_function" and node.target in (operator.mul, operator.add)
