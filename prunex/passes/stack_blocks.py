"""Blocks that run side by side on channel slices of one tensor run as one stacked computation.

After branches merge, a module's C blocks are slices ``narrow(Y, 1, j·c, c)`` of one stacked tensor Y; what they
feed is still written block by block. Three exact rewrites, repeated until none applies, keep it stacked:

- **lift**: the same elementwise op on matching slices of the same tensors is the op on the tensors, sliced:
  ``ReLU(Y_j) = ReLU(Y)_j``, ``Y_j + Z_j = (Y + Z)_j``, ``Y_j + s = (Y ⊕ s)_j`` (s added to every block) and
  ``a·Y_j = (a·Y)_j``;
- **mix**: every linear combination x_i = Σ_j a_ij·Y_j of slices of one Y (MaskConnect's K-of-C inputs, the
  shared projection's mean input, the classifier's mean) is one product X = A·Y over the block dimension;
- **merge**: chains of identical layers on consecutive slices of one tensor become one chain of grouped layers
  (:func:`prunex.passes.merge_branches.merge_sliced_chains`).

A module then runs as a handful of ops whatever C is: the separate form costs C times as many launches and
(under ONNX Runtime) an elementwise op for every term of every block's input.
"""

from __future__ import annotations

import operator
from collections import Counter, defaultdict

import torch
from torch import fx, nn
from torch.fx.passes.tools_common import legalize_graph

from prunex.passes.branch_chains import layer_signature
from prunex.passes.graph import (
    ChannelSlice,
    add_buffer,
    as_channel_slice,
    finish,
    is_module,
    narrow_channels,
    parameter_device,
    propagate_shapes,
    recorded_channels,
)
from prunex.passes.merge_branches import merge_shared_chains, merge_sliced_chains, sliced_chain_groups
from prunex.passes.protocol import GraphPass
from prunex.passes.tuning import Tuner


def _is_scalar(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _contiguous_run(starts: list[int], width: int) -> bool:
    return len(starts) >= 2 and all(b - a == width for a, b in zip(starts, starts[1:], strict=False))


def _replace_by_slices(gm: fx.GraphModule, members: list[fx.Node], out: fx.Node, offsets: list[int], width: int):
    """Each member's uses read its slice of ``out`` (whose blocks are the members', in order)."""
    for node, offset in zip(members, offsets, strict=True):
        with gm.graph.inserting_after(out):
            piece = narrow_channels(gm, out, offset, width, channels=len(members) * width)
        node.replace_all_uses_with(piece)


def _lift_key(gm: fx.GraphModule, node: fx.Node) -> tuple | None:
    """What lifting ``node`` depends on (nodes with equal keys lift together), and its slice start; or None."""
    if is_module(gm, node, nn.ReLU) and len(node.args) == 1 and (s := as_channel_slice(node.args[0])):
        return ("relu", node.target, s.base, s.width), s.start
    if node.op != "call_function" or node.target not in (operator.add, operator.mul) or node.kwargs:
        return None
    a, b = node.args
    sa, sb = as_channel_slice(a), as_channel_slice(b)
    if node.target is operator.mul:
        if sa and _is_scalar(b):
            return ("mul", b, sa.base, sa.width), sa.start
        if sb and _is_scalar(a):
            return ("mul", a, sb.base, sb.width), sb.start
        return None
    if sa and sb and sa.base is sb.base:  # a combination of one tensor's blocks: **mix** takes it
        return None
    if sa and sb and sa.width == sb.width:
        return ("add", sa.base, sb.base, sb.start - sa.start, sa.width), sa.start
    for sl, other in ((sa, b), (sb, a)):  # one block's channels added to every block
        if (
            sl
            and isinstance(other, fx.Node)
            and as_channel_slice(other) is None
            and recorded_channels(other) == sl.width
        ):
            return ("broadcast", other, sl.base, sl.width), sl.start
    return None


def _emit_lifted(gm: fx.GraphModule, key: tuple, start: int, total: int, after: fx.Node) -> fx.Node:
    kind, width = key[0], key[-1]
    graph = gm.graph
    with graph.inserting_after(after):  # nodes made here follow one another, in order, after ``after``
        if kind == "relu":
            return graph.call_module(key[1], (narrow_channels(gm, key[2], start, total),))
        if kind == "mul":
            return graph.call_function(operator.mul, (narrow_channels(gm, key[2], start, total), key[1]))
        if kind == "add":
            x = narrow_channels(gm, key[1], start, total)
            return graph.call_function(operator.add, (x, narrow_channels(gm, key[2], start + key[3], total)))
        y = narrow_channels(
            gm, key[2], start, total
        )  # broadcast: (Y.unflatten(1, (k, c)) + s.unsqueeze(1)).flatten(1, 2)
        blocks = graph.call_method("unflatten", (y, 1, (total // width, width)))
        summed = graph.call_function(operator.add, (blocks, graph.call_method("unsqueeze", (key[1], 1))))
        return graph.call_method("flatten", (summed, 1, 2))


def lift_elementwise(gm: fx.GraphModule) -> bool:
    """One round of **lift**; True if anything changed."""
    groups: dict[tuple, list[tuple[int, fx.Node]]] = defaultdict(list)
    for node in gm.graph.nodes:
        found = _lift_key(gm, node)
        if found is not None and found[1] is not None:
            groups[found[0]].append((found[1], node))
    changed = False
    for key, members in groups.items():
        members.sort(key=lambda m: m[0])
        starts, width = [m[0] for m in members], key[-1]
        if len(set(starts)) != len(starts) or not _contiguous_run(starts, width):
            continue
        nodes = [m[1] for m in members]
        order = {n: i for i, n in enumerate(gm.graph.nodes)}  # earlier lifts may have added inputs
        after = max((a for n in nodes for a in n.all_input_nodes), key=order.__getitem__)
        out = _emit_lifted(gm, key, starts[0], len(nodes) * width, after)
        _replace_by_slices(gm, nodes, out, [s - starts[0] for s in starts], width)
        changed = True
    if changed:
        _tidy(gm)
    return changed


def _combination(node: object, cache: dict) -> dict[ChannelSlice, float] | None:
    """``node`` as Σ coefficient·slice over slices (of any bases), or None if it is not such a combination."""
    if not isinstance(node, fx.Node):
        return None
    if node in cache:
        return cache[node]
    out = None
    if (s := as_channel_slice(node)) is not None:
        out = {s: 1.0}
    elif node.op == "call_function" and node.target is operator.add and not node.kwargs:
        a, b = (_combination(x, cache) for x in node.args)
        if a is not None and b is not None:
            out = dict(a)
            for k, v in b.items():
                out[k] = out.get(k, 0.0) + v
    elif node.op == "call_function" and node.target is operator.mul and not node.kwargs:
        x, c = node.args if _is_scalar(node.args[1]) else node.args[::-1]
        inner = _combination(x, cache) if _is_scalar(c) else None
        out = None if inner is None else {k: v * c for k, v in inner.items()}
    cache[node] = out
    return out


def _combination_roots(gm: fx.GraphModule) -> dict[tuple[fx.Node, int], list[tuple[fx.Node, dict[int, float]]]]:
    """Per (base, width): the combinations of ≥ 2 terms that something other than a combination reads."""
    cache: dict = {}
    roots: dict = defaultdict(list)
    for node in gm.graph.nodes:
        terms = _combination(node, cache) if as_channel_slice(node) is None else None
        if not terms or len(terms) < 2 or len({(s.base, s.width) for s in terms}) != 1:
            continue
        if all(_combination(u, cache) is not None and as_channel_slice(u) is None for u in node.users):
            continue  # an inner term of a larger combination
        base, width = next(iter(terms)).base, next(iter(terms)).width
        if any(s.start % width for s in terms) or recorded_channels(base) is None or recorded_channels(base) % width:
            continue
        roots[(base, width)].append((node, {s.start // width: c for s, c in terms.items()}))
    return roots


def _readers(gm: fx.GraphModule, roots: list[fx.Node], cache: dict) -> list[tuple[list[fx.Node], list[fx.Node]]]:
    """Per combination, who reads it for itself (not as a term of a larger one): the layers that start the blocks'
    chains (the most common kind of layer reading them; each gets its own copy, so that parallel chains on one
    input still lie on slices of their own) and the rest (identity shortcuts, a projection of the mean input)."""
    readers = [
        [u for u in node.users if as_channel_slice(u) is not None or _combination(u, cache) is None] for node in roots
    ]

    def kind(u: fx.Node, node: fx.Node) -> tuple | None:
        if u.op == "call_module" and len(u.args) == 1 and u.args[0] is node:
            return layer_signature(gm.get_submodule(u.target))
        return None

    kinds = [[kind(u, node) for u in rs] for node, rs in zip(roots, readers, strict=True)]
    counts = Counter(k for ks in kinds for k in ks if k is not None)
    main = counts.most_common(1)[0][0] if counts else None
    out = []
    for rs, ks in zip(readers, kinds, strict=True):
        heads = [u for u, k in zip(rs, ks, strict=True) if main is not None and k == main]
        out.append((heads, [u for u in rs if u not in heads]))
    return out


def _rows(readers: list[tuple[list[fx.Node], list[fx.Node]]]) -> tuple[list, list, list]:
    """The two products of a mix, as rows (combination index, reader): one row for every chain head, in order,
    and one for every other reader of a combination no chain head reads (a projection's mean input); and
    (head row, (combination index, reader)) for the other readers that share a head's row: the i-th of them the
    i-th head's when they are as many (a block's identity shortcut reads what its chain reads), else the first."""
    heads = [(i, u) for i, (hs, _) in enumerate(readers) for u in hs]
    first: dict[int, int] = {}
    for r, (i, _) in enumerate(heads):
        first.setdefault(i, r)
    others, shared = [], []
    for i, (hs, rest) in enumerate(readers):
        for n, u in enumerate(rest):
            if hs:
                shared.append((first[i] + (n if len(rest) == len(hs) else 0), (i, u)))
            else:
                others.append((i, u))
    return heads, others, shared


def _product(gm: fx.GraphModule, base: fx.Node, width: int, mix: torch.Tensor, before: fx.Node) -> list[fx.Node]:
    """X = mix·Y over the blocks of ``base`` (one node each for X's blocks), inserted before ``before``."""
    meta = base.meta["tensor_meta"]
    (h, w), graph = tuple(int(d) for d in meta.shape[2:]), gm.graph
    weights = add_buffer(gm, "block_mix", mix.to(parameter_device(gm)), before=before)
    with graph.inserting_before(before):
        flat = graph.call_method("flatten", (graph.call_method("unflatten", (base, 1, (mix.shape[1], -1))), 2))
        mixed = graph.call_function(torch.matmul, (weights, flat))
        out = graph.call_method("unflatten", (graph.call_method("flatten", (mixed, 1)), 1, (-1, h, w)))
    pieces = []
    for r in range(mix.shape[0]):
        with graph.inserting_after(out):
            pieces.append(narrow_channels(gm, out, r * width, width, channels=mix.shape[0] * width))
    return pieces


def mix_slices(gm: fx.GraphModule) -> bool:
    """One round of **mix**: X = A·Y with Y viewed as (N, blocks, c·H·W); the chain heads' rows in one product
    (whose output the merged chain then reads whole), the other readers' in another; True if anything changed."""
    changed, cache = False, {}
    for (base, width), roots in _combination_roots(gm).items():
        meta = base.meta["tensor_meta"]
        blocks = int(meta.shape[1]) // width
        heads, others, shared = _rows(_readers(gm, [node for node, _ in roots], cache))
        order = {n: i for i, n in enumerate(gm.graph.nodes)}
        first = min((r[0] for r in roots), key=order.__getitem__)
        pieces = []
        for rows in (heads, others):
            if rows:
                mix = torch.zeros(len(rows), blocks, dtype=meta.dtype)
                for r, (i, _) in enumerate(rows):
                    for j, c in roots[i][1].items():
                        mix[r, j] = c
                pieces.append(_product(gm, base, width, mix, first))
        head_pieces, other_pieces = (pieces + [[], []])[:2] if heads else ([], pieces[0] if pieces else [])
        for r, (i, reader) in [*enumerate(heads), *shared]:
            reader.replace_input_with(roots[i][0], head_pieces[r])
        for r, (i, reader) in enumerate(others):
            reader.replace_input_with(roots[i][0], other_pieces[r])
        changed = True
    if changed:
        _tidy(gm)
    return changed


def _tidy(gm: fx.GraphModule) -> None:
    """Drop what nothing reads and restore a topological order (new nodes go after all their inputs, which can be
    after a replaced node's first reader)."""
    legalize_graph(gm)
    gm.graph.eliminate_dead_code()


class StackBlocks(GraphPass):
    """Lift, mix and merge (see the module docstring) until the graph stops changing; then merge one group of
    parallel chains on a shared sum (which :class:`~prunex.passes.merge_branches.MergeParallelBranches` leaves to
    this pass, so that blocks reading a combination of others get their own slice first; with a ``tuner``, only
    where merged measures faster) and go on. ``example_shape`` is the input's (C, H, W)."""

    name = "stack_blocks"

    def __init__(self, example_shape: tuple[int, ...], tuner: Tuner | None = None) -> None:
        self.example_shape, self.tuner = example_shape, tuner

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        changed, skipped = True, set()
        while changed:
            changed = False
            for step in (mix_slices, lift_elementwise, _merge_step):  # mix first: lift would split combinations
                changed = self._step(gm, step) or changed
            if not changed:
                changed = self._step(gm, lambda g: merge_shared_chains(g, self.tuner, skipped))
        return finish(gm)

    def _step(self, gm: fx.GraphModule, step) -> bool:
        gm.recompile()
        propagate_shapes(gm, self.example_shape)
        return step(gm)


def _merge_step(gm: fx.GraphModule) -> bool:
    changed = False
    for group in sliced_chain_groups(gm):
        changed = merge_sliced_chains(gm, group) or changed
    return changed
