"""The graph as a layout :class:`~prunex.passes.layouts.problem.Problem`: which activations share a layout
(union-find classes), and the gathers, concatenations, slices, grouped convs and fixed identities between classes,
each node read through its rule (:mod:`prunex.passes.layouts.rules`)."""

from __future__ import annotations

import torch
from torch import fx

from prunex.passes.graph import module_of
from prunex.passes.layouts.problem import Concat, Gather, Pin, Problem, Slice, UnionFind
from prunex.passes.layouts.rules import LayoutKind, channel_repeat, channel_slice, channels, layout_kind


# -- the graph as layout constraints -----------------------------------------------------------------------------------
def label(node: fx.Node) -> str:
    """How the report names a node: a layer by its module path, the network's ends in words, others by name."""
    if node.op == "call_module":
        return str(node.target)
    if node.op == "placeholder":
        return "the network input"
    if node.op == "output":
        return "the network output"
    return node.name


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    return [a for a in node.all_input_nodes if a.op != "get_attr"]


def channel_constant(gm: fx.GraphModule, node: fx.Node, channels: int) -> bool:
    """A get_attr constant broadcast per channel against an activation of ``channels`` channels."""
    if node.op != "get_attr":
        return False
    t = attr(gm, node.target)
    if not isinstance(t, torch.Tensor):
        return False
    shape = tuple(t.shape)
    return len(shape) >= 3 and shape[-3] == channels and all(s == 1 for s in shape[-2:]) and t.numel() == channels


def attr(gm: fx.GraphModule, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def build_problem(gm: fx.GraphModule) -> tuple[Problem, UnionFind]:
    uf = UnionFind()
    problem = Problem()
    carrying = [n for n in gm.graph.nodes if n.op != "get_attr" and channels(n) is not None]
    for n in carrying:
        uf.find(n)
    kinds = {n: layout_kind(gm, n) for n in gm.graph.nodes}
    for n in gm.graph.nodes:
        if kinds[n] is LayoutKind.PASS and channels(n) is not None:
            c = channels(n)
            operands = _tensor_args(n)
            consts = [a for a in n.all_input_nodes if a.op == "get_attr"]
            if all(channels(a) == c for a in operands) and all(
                channel_constant(gm, k, c) or _scalar_like(gm, k) for k in consts
            ):
                for a in operands:
                    uf.union(n, a)
            else:
                kinds[n] = LayoutKind.OTHER
    for n in gm.graph.nodes:
        kind = kinds[n]
        if n.op in ("placeholder", "output") or kind is LayoutKind.OTHER:
            if n.op != "output" and channels(n) is not None:
                problem.pins.append(Pin(uf.find(n), n, None, label(n)))
            for a in dict.fromkeys(_tensor_args(n)):
                if channels(a) is not None:
                    problem.pins.append(Pin(uf.find(a), a, n, label(n)))
        if kind is LayoutKind.GROUPED:
            m = module_of(gm, n)
            src = n.args[0]
            problem.groups.setdefault(uf.find(src), []).append((m.in_channels // m.groups, label(n)))
            problem.groups.setdefault(uf.find(n), []).append((m.out_channels // m.groups, label(n)))
    for n in gm.graph.nodes:
        kind = kinds[n]
        if kind is LayoutKind.GATHER and channels(n) is not None:
            order = attr(gm, n.args[2].target)
            problem.gathers.append(Gather(n, uf.find(n.args[0]), uf.find(n), order, label(n)))
        elif kind is LayoutKind.CONCAT:
            parts = list(n.args[0]) if n.target is torch.cat else [n.args[0]] * channel_repeat(n)
            if all(isinstance(p, fx.Node) and channels(p) is not None for p in parts):
                problem.concats.append(
                    Concat(n, uf.find(n), [uf.find(p) for p in parts], [channels(p) for p in parts], label(n))
                )
            else:
                problem.pins += [Pin(uf.find(n), n, None, label(n))]
                problem.pins += [Pin(uf.find(p), p, n, label(n)) for p in parts if isinstance(p, fx.Node)]
        elif kind is LayoutKind.SLICE:
            if n.target is torch.narrow:
                start, length = n.args[2], n.args[3]
            else:
                start, length = channel_slice(n)
            problem.slices.append(Slice(n, uf.find(n.args[0]), uf.find(n), int(start), int(length), label(n)))
    for n in carrying:
        problem.size[uf.find(n)] = channels(n)
        problem.names[uf.find(n)] = label(uf.find(n))
    return problem, uf


def _scalar_like(gm: fx.GraphModule, node: fx.Node) -> bool:
    t = attr(gm, node.target)
    return isinstance(t, torch.Tensor) and t.numel() == 1
