"""Removal of no-ops: identity modules, dropout in eval, multiplication by 1, addition of 0, identity gathers, and
(with the input shape known) pools and reshapes whose output is their input.

A pool is the identity when its output has its input's shape and each output reads one input element: adaptive
pools to the input's own size, and unpadded pools of a 1×1 kernel or over a 1×1 map. A reshape (``view``,
``reshape``, ``flatten``, ``contiguous``) is the identity when the shape does not change.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from prunex.passes.graph import finish, is_module, is_reshape, meta_shape, module_of, propagate_shapes
from prunex.passes.permutations import is_identity
from prunex.passes.propagate_permutations import is_gather
from prunex.passes.protocol import GraphPass

ADAPTIVE_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
FIXED_POOLS = (nn.AvgPool2d, nn.MaxPool2d)
ADAPTIVE_POOL_FUNCTIONS = {nn.functional.adaptive_avg_pool2d, nn.functional.adaptive_max_pool2d}
DROPOUT_FUNCTIONS = {nn.functional.dropout, torch.dropout}


def _number(x: object, value: float) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == value


def _pair(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _same_shape(node: fx.Node) -> bool:
    source = node.args[0] if node.args else None
    return meta_shape(node) is not None and meta_shape(node) == meta_shape(source)


def _identity_pool(gm: fx.GraphModule, node: fx.Node) -> bool:
    if not _same_shape(node):
        return False
    if is_module(gm, node, ADAPTIVE_POOLS) or (node.op == "call_function" and node.target in ADAPTIVE_POOL_FUNCTIONS):
        return True
    if not is_module(gm, node, FIXED_POOLS):
        return False
    m = module_of(gm, node)
    one_by_one = meta_shape(node)[-2:] == (1, 1) or _pair(m.kernel_size) == (1, 1)
    return one_by_one and _pair(m.padding) == (0, 0)


def _identity_reshape(node: fx.Node) -> bool:
    contiguous = node.op == "call_method" and node.target == "contiguous"
    return (is_reshape(node) or contiguous) and _same_shape(node)


def _eval_dropout(node: fx.Node) -> bool:
    if node.op != "call_function" or node.target not in DROPOUT_FUNCTIONS:
        return False
    training = node.kwargs.get("training", node.kwargs.get("train", node.args[2] if len(node.args) > 2 else True))
    return training is False


def _is_noop(gm: fx.GraphModule, node: fx.Node) -> fx.Node | None:
    """The node this one can be replaced by, or None."""
    if is_module(gm, node, (nn.Identity, nn.Dropout)) or _eval_dropout(node):
        return node.args[0]
    if _identity_pool(gm, node) or _identity_reshape(node):
        return node.args[0]
    if node.op == "call_function" and node.target in (operator.mul, operator.truediv):
        a, b = node.args
        if _number(b, 1):
            return a
        if node.target is operator.mul and _number(a, 1):
            return b
    if node.op == "call_function" and node.target in (operator.add, operator.sub) and _number(node.args[1], 0):
        return node.args[0]
    if is_gather(node) and is_identity(gm.get_buffer(node.args[2].target)):
        return node.args[0]
    return None


class RemoveNoops(GraphPass):
    """Replace every no-op node by its input. ``example_shape``, the input's (C, H, W), enables the shape-based
    ones (pools, reshapes)."""

    name = "remove_noops"

    def __init__(self, example_shape: tuple[int, ...] | None = None) -> None:
        self.example_shape = example_shape

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        if self.example_shape is not None:
            propagate_shapes(gm, self.example_shape)
        for node in list(gm.graph.nodes):
            replacement = _is_noop(gm, node)
            if replacement is not None and isinstance(replacement, fx.Node):
                node.replace_all_uses_with(replacement)
                gm.graph.erase_node(node)
        gm.graph.eliminate_dead_code()
        return finish(gm)
