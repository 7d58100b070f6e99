"""In-place operations of a traced network made out-of-place wherever nothing else can see the write.

``F.relu(x, inplace=True)``, ``x.relu_()``, ``x += y`` write into ``x``; the write is visible to every other reader
of ``x`` and of any tensor ``x`` is a view of. Where the only reader of each tensor on that chain is the next
one (ending at a tensor the network computed: not an input, not a constant), the out-of-place operation computes
the same values. Left in place, an in-place write into a view of a merged tensor exports to ONNX as
Slice → op → ScatterND with shape arithmetic around it, which breaks TensorRT's fusions.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable

import torch
from torch import fx, nn

OPERATORS = {operator.iadd: operator.add, operator.imul: operator.mul, operator.isub: operator.sub}
OPERATORS[operator.itruediv] = operator.truediv
# Operations whose result may be (a view of) their first operand: the write reaches through them.
ALIASING_FUNCTIONS = {operator.getitem, torch.narrow, torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
ALIASING_FUNCTIONS |= {torch.transpose, torch.permute, torch.chunk, torch.split}
ALIASING_METHODS = {"view", "reshape", "flatten", "narrow", "transpose", "permute", "squeeze", "unsqueeze"}
ALIASING_METHODS |= {"contiguous", "expand", "chunk", "split", "view_as", "reshape_as", "t"}
ALIASING_MODULES = (nn.Identity, nn.Dropout, nn.Flatten, nn.Unflatten)


def _aliases(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Whether ``node``'s value may be (a view of) its first operand."""
    if node.op == "call_function":
        return node.target in ALIASING_FUNCTIONS or node.target in OPERATORS
    if node.op == "call_method":
        return node.target in ALIASING_METHODS or str(node.target).endswith("_")
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), ALIASING_MODULES)
    return False


def _private(gm: fx.GraphModule, operand: fx.Node, writer: fx.Node) -> bool:
    """Whether ``writer`` is the only reader of ``operand`` and of everything ``operand`` is a view of."""
    node, reader = operand, writer
    while True:
        if not isinstance(node, fx.Node) or node.op in ("placeholder", "get_attr") or set(node.users) != {reader}:
            return False
        if not _aliases(gm, node):
            return True
        node, reader = node.args[0], node


def _inplace_flag(node: fx.Node) -> inspect.BoundArguments | None:
    """The call's arguments bound to its signature, when it is ``f(..., inplace=True)``."""
    try:
        bound = inspect.signature(node.target).bind(*node.args, **node.kwargs)
    except (TypeError, ValueError):
        return None
    return bound if bound.arguments.get("inplace") is True else None


def _out_of_place(node: fx.Node) -> Callable[[fx.Node], None] | None:
    """How to make ``node`` out-of-place, if it writes into its first operand."""
    if node.op == "call_function" and node.target in OPERATORS:
        return lambda n: setattr(n, "target", OPERATORS[n.target])
    if node.op == "call_method" and str(node.target).endswith("_") and not str(node.target).startswith("_"):
        if hasattr(torch.Tensor, str(node.target)[:-1]):
            return lambda n: setattr(n, "target", str(n.target)[:-1])
        return None
    if node.op == "call_function" and callable(node.target) and _inplace_flag(node) is not None:

        def clear(n: fx.Node) -> None:
            bound = _inplace_flag(n)
            bound.arguments["inplace"] = False
            n.args, n.kwargs = bound.args, bound.kwargs

        return clear
    return None


def make_out_of_place(gm: fx.GraphModule) -> int:
    """Rewrite every in-place operation no other reader can observe (module docstring); how many were."""
    changed = 0
    for node in list(gm.graph.nodes):
        rewrite = _out_of_place(node)
        if rewrite is not None and node.args and _private(gm, node.args[0], node):
            rewrite(node)
            changed += 1
    return changed
