"""Channel movements in the one form the layout pass reads: flat concatenations, slices, and gathers.

- a concatenation of a concatenation (read by nothing else) is one concatenation of all their parts;
- ``x.chunk(k, 1)[i]`` and ``x.split(s, 1)[i]`` are the slices ``torch.narrow(x, 1, start, width)``;
- a channel shuffle ``view(N, g, C/g, H, W) → transpose(1, 2) → [contiguous] → view(N, C, H, W)`` (ShuffleNet)
  is the gather y = x[:, p] with p[a·g + b] = b·(C/g) + a, which :mod:`~prunex.passes.propagate_permutations` can
  then absorb into neighbouring layers like any other permutation.
"""

from __future__ import annotations

import operator

import torch
from torch import fx

from prunex.passes.graph import add_buffer, finish, is_reshape, meta_shape, propagate_shapes, sole_user
from prunex.passes.protocol import GraphPass

CHUNKS = {"chunk": torch.chunk, "split": torch.split}


def _swaps_dims_1_2(node: fx.Node) -> bool:
    """transpose(1, 2) / permute(0, 2, 1, 3, 4) of a 5-D tensor."""
    args = tuple(node.args[1:])
    if node.target in (torch.transpose, "transpose"):
        return sorted(a % 5 for a in args if isinstance(a, int)) == [1, 2] and len(args) == 2
    if node.target in (torch.permute, "permute"):
        dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        return tuple(dims) == (0, 2, 1, 3, 4)
    return False


def shuffle_order(channels: int, groups: int) -> torch.Tensor:
    """p with y = x[:, p] for the shuffle of ``groups`` groups: p[a·g + b] = b·(C/g) + a."""
    return torch.arange(channels).view(groups, channels // groups).t().reshape(-1)


def _shuffle(node: fx.Node) -> tuple[fx.Node, int] | None:
    """(the shuffle's last node, g) when ``node`` begins a channel shuffle of its 4-D input."""
    source, first = node.args[0] if node.args else None, meta_shape(node)
    shape = meta_shape(source)
    if not is_reshape(node) or shape is None or len(shape) != 4 or first is None or len(first) != 5:
        return None
    n, c, h, w = shape
    g = first[1]
    if first != (n, g, c // g, h, w) or g * (c // g) != c:
        return None
    swap = sole_user(node)
    if swap is None or not _swaps_dims_1_2(swap):
        return None
    last = sole_user(swap)
    if last is not None and last.op == "call_method" and last.target == "contiguous":
        last = sole_user(last)
    if last is None or not is_reshape(last) or meta_shape(last) != shape:
        return None
    return last, g


def _chunk_slices(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Replace ``x.chunk(k, 1)[i]`` / ``x.split(s, 1)[i]`` by narrow slices; whether it did."""
    target = CHUNKS.get(node.target) if node.op == "call_method" else node.target
    if node.op not in ("call_method", "call_function"):
        return False
    shape = meta_shape(node.args[0]) if node.args else None
    if target not in CHUNKS.values() or shape is None or len(shape) != 4:
        return False
    dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
    count = node.args[1] if len(node.args) > 1 else None
    users = list(node.users)
    if dim % 4 != 1 or not isinstance(count, int) or not all(u.target is operator.getitem for u in users):
        return False
    c = shape[1]
    width = -(-c // count) if target is torch.chunk else count
    for user in users:
        start = user.args[1] * width
        with gm.graph.inserting_before(user):
            narrow = gm.graph.call_function(torch.narrow, (node.args[0], 1, start, min(width, c - start)))
        narrow.meta = dict(user.meta)
        user.replace_all_uses_with(narrow)
        gm.graph.erase_node(user)
    gm.graph.erase_node(node)
    return True


def _flatten_concat(node: fx.Node) -> bool:
    """Splice the concatenations among ``node``'s parts that nothing else reads; whether any was."""
    if node.op != "call_function" or node.target is not torch.cat:
        return False
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    parts = list(node.args[0])
    flat: list = []
    for p in parts:
        inner = isinstance(p, fx.Node) and p.target is torch.cat and p.op == "call_function" and len(p.users) == 1
        if inner and p.kwargs.get("dim", p.args[1] if len(p.args) > 1 else 0) == dim and dim % 4 == 1:
            flat += list(p.args[0])
        else:
            flat.append(p)
    if len(flat) == len(parts):
        return False
    node.args = (flat, *node.args[1:])
    return True


class CanonicalChannelOps(GraphPass):
    """Flatten nested concatenations, turn chunks into slices and channel shuffles into gathers (module
    docstring). ``example_shape``, the input's (C, H, W), gives the shapes the patterns are matched on."""

    name = "canonical_channel_ops"

    def __init__(self, example_shape: tuple[int, ...]) -> None:
        self.example_shape = example_shape

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        propagate_shapes(gm, self.example_shape)
        for node in list(gm.graph.nodes):
            _chunk_slices(gm, node)
        for node in list(gm.graph.nodes):
            shuffle = _shuffle(node)
            if shuffle is not None:
                last, groups = shuffle
                order = shuffle_order(meta_shape(node.args[0])[1], groups)
                index = add_buffer(gm, f"{node.name}_shuffle_order", order, before=last)
                with gm.graph.inserting_before(last):
                    gather = gm.graph.call_function(torch.index_select, (node.args[0], 1, index))
                gather.meta = dict(last.meta)
                last.replace_all_uses_with(gather)
        for node in list(gm.graph.nodes):  # innermost first: each splice sees its parts already flat
            _flatten_concat(node)
        gm.graph.eliminate_dead_code()
        return finish(gm)
