"""The graph as layout constraints: which activations share a layout (union-find classes), and the gathers,
concatenations, slices, grouped convs and fixed identities between classes (the rules in
:mod:`prunex.passes.propagate_permutations`)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from prunex.passes.graph import is_reshape, module_of

PASS_MODULES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.SiLU,
    nn.GELU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.AvgPool2d,
    nn.MaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
PASS_FUNCTIONS = {
    torch.relu,
    torch.sigmoid,
    torch.tanh,
    nn.functional.relu,
    nn.functional.relu6,
    nn.functional.silu,
    nn.functional.gelu,
    nn.functional.hardswish,
    nn.functional.leaky_relu,
    nn.functional.dropout,
    nn.functional.avg_pool2d,
    nn.functional.max_pool2d,
    nn.functional.adaptive_avg_pool2d,
    nn.functional.adaptive_max_pool2d,
}
PASS_METHODS = {"relu", "sigmoid", "tanh", "contiguous"}
BINARY = {operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul, torch.sub}


# -- the graph as layout constraints -----------------------------------------------------------------------------------
def channels(node: fx.Node) -> int | None:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape") or len(meta.shape) not in (2, 4):
        return None
    return int(meta.shape[1])


def spatial(node: fx.Node) -> int:
    shape = node.meta["tensor_meta"].shape
    return int(shape[2] * shape[3]) if len(shape) == 4 else 1


def is_gather(node: fx.Node) -> bool:
    return (
        node.op == "call_function"
        and node.target is torch.index_select
        and len(node.args) == 3
        and node.args[1] == 1
        and isinstance(node.args[2], fx.Node)
        and node.args[2].op == "get_attr"
    )


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[fx.Node, fx.Node] = {}

    def find(self, x: fx.Node) -> fx.Node:
        self.parent.setdefault(x, x)
        while self.parent[x] is not x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: fx.Node, b: fx.Node) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra is not rb:
            self.parent[rb] = ra


@dataclass
class Gather:
    node: fx.Node
    x: fx.Node  # its class (root)
    y: fx.Node
    order: torch.Tensor


@dataclass
class Concat:
    node: fx.Node
    out: fx.Node
    parts: list[fx.Node]  # classes, in order
    sizes: list[int]


@dataclass
class Slice:
    node: fx.Node
    source: fx.Node
    part: fx.Node
    start: int
    length: int


@dataclass
class Pin:
    """A place where the identity layout is required: a network input (``consumer`` None: the value as produced),
    a network output, or a node the pass does not see through (the value where ``consumer`` reads it). Not meeting
    it costs one gather there."""

    cls: fx.Node
    value: fx.Node
    consumer: fx.Node | None
    name: str


@dataclass
class Problem:
    """Layout classes and the constraints between them."""

    size: dict[fx.Node, int] = field(default_factory=dict)  # class → channels
    pins: list[Pin] = field(default_factory=list)
    groups: dict[fx.Node, list[tuple[int, str]]] = field(default_factory=dict)  # class → (group size, node)
    gathers: list[Gather] = field(default_factory=list)
    concats: list[Concat] = field(default_factory=list)
    slices: list[Slice] = field(default_factory=list)


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


def flattened_into_linear(gm: fx.GraphModule, node: fx.Node) -> fx.Node | None:
    """The (N, C, H, W) source when ``node`` reshapes it to (N, C·H·W), H·W > 1, for linear layers only: they read
    its channels as blocks of H·W input columns, so they absorb its layout (as they absorb a 2-D one)."""
    source = node.args[0] if node.args else None
    if not isinstance(source, fx.Node) or channels(source) is None or channels(node) is None:
        return None
    shape, flat = node.args[0].meta["tensor_meta"].shape, node.meta["tensor_meta"].shape
    reshape = is_reshape(node) or (node.op == "call_module" and isinstance(module_of(gm, node), nn.Flatten))
    if not reshape or len(shape) != 4 or tuple(flat) != (shape[0], shape[1] * shape[2] * shape[3]):
        return None
    readers = list(node.users)
    if spatial(source) == 1 or not readers:
        return None
    if all(u.op == "call_module" and isinstance(module_of(gm, u), nn.Linear) and u.args[0] is node for u in readers):
        return source
    return None


def _kind(gm: fx.GraphModule, node: fx.Node) -> str:
    """absorb | grouped | pass | concat | slice | gather | into_linear | shape | other (layouts of inputs and
    output fixed)."""
    if flattened_into_linear(gm, node) is not None:
        return "into_linear"  # its source's layout is the linear layers' to absorb; its own stays the identity
    if (node.op == "call_method" and node.target in ("size", "dim")) or (
        node.op == "call_function" and node.target is getattr and node.args[1:] == ("shape",)
    ):
        return "shape"  # reads the shape only, which no layout changes
    if node.op == "call_module":
        m = module_of(gm, node)
        if isinstance(m, nn.Conv2d):
            if m.groups == 1:
                return "absorb"
            if m.groups == m.in_channels == m.out_channels:
                return "pass"
            return "grouped"
        if isinstance(m, nn.Linear):
            return "absorb"
        if isinstance(m, PASS_MODULES):
            return "pass"
        if isinstance(m, nn.Flatten) and m.start_dim == 1 and spatial(node.args[0]) == 1:
            return "pass"
        return "other"
    if node.op == "call_function":
        if is_gather(node):
            return "gather"
        if node.target in PASS_FUNCTIONS:
            return "pass"
        if node.target is torch.flatten and node.args[1:2] == (1,) and spatial(node.args[0]) == 1:
            return "pass"
        if node.target in BINARY:
            return "pass"
        if node.target is torch.cat and (node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0) == 1):
            return "concat"
        if node.target is torch.narrow and node.args[1] == 1:
            return "slice"
        if node.target is operator.getitem and _channel_slice(node) is not None:
            return "slice"
        return "other"
    if node.op == "call_method":
        if node.target in PASS_METHODS:
            return "pass"
        if node.target == "repeat" and _channel_repeat(node) is not None:
            return "concat"
        if node.target == "flatten" and node.args[1:2] == (1,) and spatial(node.args[0]) == 1:
            return "pass"
        if node.target == "mean" and _spatial_reduction(node):
            return "pass"
        return "other"
    return "other"


def _channel_repeat(node: fx.Node) -> int | None:
    """k for x.repeat(1, k, 1, 1) (the channels k times over: a concatenation of x with itself)."""
    reps = node.args[1:] if len(node.args) > 2 else (node.args[1] if len(node.args) == 2 else ())
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else ()
    if len(reps) == 4 and reps[0] == 1 and reps[2:] == (1, 1) and isinstance(reps[1], int):
        return reps[1]
    return None


def _spatial_reduction(node: fx.Node) -> bool:
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return isinstance(dims, (tuple, list)) and sorted(d % 4 for d in dims) == [2, 3]


def _channel_slice(node: fx.Node) -> tuple[int, int] | None:
    """(start, length) of x[:, a:b] (a getitem slicing the channel dimension only)."""
    x, index = node.args
    if not isinstance(x, fx.Node) or not isinstance(index, tuple) or len(index) < 2:
        return None
    first, ch, *rest = index
    if first != slice(None) or not isinstance(ch, slice) or ch.step not in (None, 1):
        return None
    if any(r != slice(None) for r in rest):
        return None
    c = channels(x)
    if c is None:
        return None
    start, stop, _ = ch.indices(c)
    return start, stop - start


def build_problem(gm: fx.GraphModule) -> tuple[Problem, UnionFind]:
    uf = UnionFind()
    problem = Problem()
    carrying = [n for n in gm.graph.nodes if n.op != "get_attr" and channels(n) is not None]
    for n in carrying:
        uf.find(n)
    kinds = {n: _kind(gm, n) for n in gm.graph.nodes}
    for n in gm.graph.nodes:
        if kinds[n] == "pass" and channels(n) is not None:
            c = channels(n)
            operands = _tensor_args(n)
            consts = [a for a in n.all_input_nodes if a.op == "get_attr"]
            if all(channels(a) == c for a in operands) and all(
                channel_constant(gm, k, c) or _scalar_like(gm, k) for k in consts
            ):
                for a in operands:
                    uf.union(n, a)
            else:
                kinds[n] = "other"
    for n in gm.graph.nodes:
        kind = kinds[n]
        if n.op in ("placeholder", "output") or kind == "other":
            if n.op != "output" and channels(n) is not None:
                problem.pins.append(Pin(uf.find(n), n, None, label(n)))
            for a in dict.fromkeys(_tensor_args(n)):
                if channels(a) is not None:
                    problem.pins.append(Pin(uf.find(a), a, n, label(n)))
        if kind == "grouped":
            m = module_of(gm, n)
            src = n.args[0]
            problem.groups.setdefault(uf.find(src), []).append((m.in_channels // m.groups, label(n)))
            problem.groups.setdefault(uf.find(n), []).append((m.out_channels // m.groups, label(n)))
    for n in gm.graph.nodes:
        kind = kinds[n]
        if kind == "gather" and channels(n) is not None:
            order = attr(gm, n.args[2].target)
            problem.gathers.append(Gather(n, uf.find(n.args[0]), uf.find(n), order))
        elif kind == "concat":
            parts = list(n.args[0]) if n.target is torch.cat else [n.args[0]] * _channel_repeat(n)
            if all(isinstance(p, fx.Node) and channels(p) is not None for p in parts):
                problem.concats.append(Concat(n, uf.find(n), [uf.find(p) for p in parts], [channels(p) for p in parts]))
            else:
                problem.pins += [Pin(uf.find(n), n, None, label(n))]
                problem.pins += [Pin(uf.find(p), p, n, label(n)) for p in parts if isinstance(p, fx.Node)]
        elif kind == "slice":
            if n.target is torch.narrow:
                start, length = n.args[2], n.args[3]
            else:
                start, length = _channel_slice(n)
            problem.slices.append(Slice(n, uf.find(n.args[0]), uf.find(n), int(start), int(length)))
    for n in carrying:
        problem.size[uf.find(n)] = channels(n)
    return problem, uf


def _scalar_like(gm: fx.GraphModule, node: fx.Node) -> bool:
    t = attr(gm, node.target)
    return isinstance(t, torch.Tensor) and t.numel() == 1
