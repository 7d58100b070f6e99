"""Permutation propagation: remove every channel gather a layer of the network can absorb, over the whole graph.

Give every activation v with a channel dimension a *layout* σ_v: the tensor the network stores is the logical
one with its channels permuted, stored[:, j] = logical[:, σ_v[j]]. A network computes the same function under any
choice of layouts as long as every layer is rewritten for them:

- a dense conv or linear layer absorbs any layout on either side: input columns W[:, σ_in], output rows W[σ_out]
  and b[σ_out]; a grouped conv any layout that keeps each of its groups in place;
- per-channel layers pass the layout on (σ_out = σ_in): BatchNorm (its vectors re-indexed), depthwise convs (their
  filters re-indexed), activations, pooling, dropout, scalar arithmetic; so do additions and products of
  activations (all operands and the result share one layout) and per-channel constants (re-indexed);
- a concatenation lays its inputs side by side (σ_out = σ_1 ⊕ σ_2 ⊕ …) and a channel slice takes its part of the
  layout (which must keep the slice's channels in the slice);
- the network's inputs and outputs, and anything not listed, keep the identity layout;
- a gather y = x[:, p] costs nothing when σ_x = p ∘ σ_y: it is then the identity on the stored tensors. Otherwise it
  stays, as the gather of stored channels σ_x⁻¹ ∘ p ∘ σ_y.

Layers that pass layouts on tie their activations into one class with one layout (union-find). The pass chooses
which gathers to remove so that the constraints between classes (gathers, concatenations, slices, groups, fixed
identities) can all be met: exhaustively for the gathers that interact (up to ``EXACT_LIMIT`` at a time), greedily
beyond. Each remaining gather is reported with the node whose order forces it.
"""

from __future__ import annotations

import itertools
import operator
import random
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from prunex.passes.graph import finish, fresh_name, module_of, own_module, propagate_shapes
from prunex.passes.protocol import GraphPass

EXACT_LIMIT = 12  # interacting gathers and pins decided by trying every subset (2^n); more are decided greedily
GREEDY_ORDERS = 8  # orders the greedy choice tries for a larger group

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
def _channels(node: fx.Node) -> int | None:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape") or len(meta.shape) not in (2, 4):
        return None
    return int(meta.shape[1])


def _spatial(node: fx.Node) -> int:
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


class _UnionFind:
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


def _label(node: fx.Node) -> str:
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


def _channel_constant(gm: fx.GraphModule, node: fx.Node, channels: int) -> bool:
    """A get_attr constant broadcast per channel against an activation of ``channels`` channels."""
    if node.op != "get_attr":
        return False
    t = _attr(gm, node.target)
    if not isinstance(t, torch.Tensor):
        return False
    shape = tuple(t.shape)
    return len(shape) >= 3 and shape[-3] == channels and all(s == 1 for s in shape[-2:]) and t.numel() == channels


def _attr(gm: fx.GraphModule, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _kind(gm: fx.GraphModule, node: fx.Node) -> str:
    """absorb | grouped | pass | concat | slice | gather | other (layouts of inputs and output fixed)."""
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
        if isinstance(m, nn.Flatten) and m.start_dim == 1 and _spatial(node.args[0]) == 1:
            return "pass"
        return "other"
    if node.op == "call_function":
        if is_gather(node):
            return "gather"
        if node.target in PASS_FUNCTIONS:
            return "pass"
        if node.target is torch.flatten and node.args[1:2] == (1,) and _spatial(node.args[0]) == 1:
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
        if node.target == "flatten" and node.args[1:2] == (1,) and _spatial(node.args[0]) == 1:
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
    c = _channels(x)
    if c is None:
        return None
    start, stop, _ = ch.indices(c)
    return start, stop - start


def build_problem(gm: fx.GraphModule) -> tuple[Problem, _UnionFind]:
    uf = _UnionFind()
    problem = Problem()
    carrying = [n for n in gm.graph.nodes if n.op != "get_attr" and _channels(n) is not None]
    for n in carrying:
        uf.find(n)
    kinds = {n: _kind(gm, n) for n in gm.graph.nodes}
    for n in gm.graph.nodes:
        if kinds[n] == "pass" and _channels(n) is not None:
            c = _channels(n)
            operands = _tensor_args(n)
            consts = [a for a in n.all_input_nodes if a.op == "get_attr"]
            if all(_channels(a) == c for a in operands) and all(
                _channel_constant(gm, k, c) or _scalar_like(gm, k) for k in consts
            ):
                for a in operands:
                    uf.union(n, a)
            else:
                kinds[n] = "other"
    for n in gm.graph.nodes:
        kind = kinds[n]
        if n.op in ("placeholder", "output") or kind == "other":
            if n.op != "output" and _channels(n) is not None:
                problem.pins.append(Pin(uf.find(n), n, None, _label(n)))
            for a in dict.fromkeys(_tensor_args(n)):
                if _channels(a) is not None:
                    problem.pins.append(Pin(uf.find(a), a, n, _label(n)))
        if kind == "grouped":
            m = module_of(gm, n)
            src = n.args[0]
            problem.groups.setdefault(uf.find(src), []).append((m.in_channels // m.groups, _label(n)))
            problem.groups.setdefault(uf.find(n), []).append((m.out_channels // m.groups, _label(n)))
    for n in gm.graph.nodes:
        kind = kinds[n]
        if kind == "gather" and _channels(n) is not None:
            order = _attr(gm, n.args[2].target)
            problem.gathers.append(Gather(n, uf.find(n.args[0]), uf.find(n), order))
        elif kind == "concat":
            parts = list(n.args[0]) if n.target is torch.cat else [n.args[0]] * _channel_repeat(n)
            if all(isinstance(p, fx.Node) and _channels(p) is not None for p in parts):
                problem.concats.append(
                    Concat(n, uf.find(n), [uf.find(p) for p in parts], [_channels(p) for p in parts])
                )
            else:
                problem.pins += [Pin(uf.find(n), n, None, _label(n))]
                problem.pins += [Pin(uf.find(p), p, n, _label(n)) for p in parts if isinstance(p, fx.Node)]
        elif kind == "slice":
            if n.target is torch.narrow:
                start, length = n.args[2], n.args[3]
            else:
                start, length = _channel_slice(n)
            problem.slices.append(Slice(n, uf.find(n.args[0]), uf.find(n), int(start), int(length)))
    for n in carrying:
        problem.size[uf.find(n)] = _channels(n)
    return problem, uf


def _scalar_like(gm: fx.GraphModule, node: fx.Node) -> bool:
    t = _attr(gm, node.target)
    return isinstance(t, torch.Tensor) and t.numel() == 1


# -- solving ---------------------------------------------------------------------------------------------------------
class Infeasible(Exception):
    """A set of removed gathers whose layouts cannot all be met; ``node`` names the constraint that broke."""

    def __init__(self, node: str) -> None:
        super().__init__(node)
        self.node = node


def _is_identity(p: torch.Tensor) -> bool:
    return torch.equal(p, torch.arange(len(p)))


def _within_groups(p: torch.Tensor, size: int) -> bool:
    return torch.equal(p // size, torch.arange(len(p)) // size)


def _conflict(a: str, b: str) -> str:
    return a if a == b else f"{b} vs {a}"


def assign(
    problem: Problem, removed: set[int], pins: set[int], tightest_first: bool = True
) -> dict[fx.Node, torch.Tensor]:
    """Layouts for every class meeting every constraint with the gathers in ``removed`` gone and the pins in ``pins``
    held; raises Infeasible naming the node whose constraint broke. ``tightest_first``: anchor the class with the
    smallest groups first (its identity leaves the others room), else in graph order."""
    layout: dict[fx.Node, torch.Tensor] = {}
    pending_slices: dict[fx.Node, list[Slice]] = defaultdict(list)
    for s in problem.slices:
        pending_slices[s.source].append(s)
    by_class: dict[fx.Node, list] = defaultdict(list)
    for i, g in enumerate(problem.gathers):
        if i in removed:
            by_class[g.x].append(g)
            by_class[g.y].append(g)
    for c in problem.concats:
        for cls in (c.out, *c.parts):
            by_class[cls].append(c)
    for s in problem.slices:
        by_class[s.source].append(s)
        by_class[s.part].append(s)
    held = {}
    for j in pins:
        held.setdefault(problem.pins[j].cls, problem.pins[j].name)

    origin: dict[fx.Node, str] = {}  # the node whose order each layout was derived from

    def set_layout(cls: fx.Node, value: torch.Tensor, why: str, queue: list, source: fx.Node | None = None) -> None:
        start = origin.get(source, why) if source is not None else why
        if cls in layout:
            if not torch.equal(layout[cls], value):
                raise Infeasible(_conflict(origin[cls], start))
            return
        if cls in held and not _is_identity(value):
            raise Infeasible(_conflict(held[cls], start))
        for size, node in problem.groups.get(cls, []):
            if not _within_groups(value, size):
                raise Infeasible(_conflict(node, start))
        layout[cls] = value
        origin[cls] = start
        queue.append(cls)

    def propagate(queue: list) -> None:
        while queue:
            cls = queue.pop()
            for rel in by_class[cls]:
                if isinstance(rel, Gather):  # σ_x = p ∘ σ_y
                    if rel.x in layout and rel.y not in layout:
                        inv = torch.empty_like(rel.order)
                        inv[rel.order] = torch.arange(len(rel.order))
                        set_layout(rel.y, inv[layout[rel.x]], _label(rel.node), queue, cls)
                    elif rel.y in layout:
                        set_layout(rel.x, rel.order[layout[rel.y]], _label(rel.node), queue, cls)
                elif isinstance(rel, Concat):
                    if rel.out in layout:
                        out, start = layout[rel.out], 0
                        for part, size in zip(rel.parts, rel.sizes, strict=True):
                            block = out[start : start + size] - start
                            if block.min() < 0 or block.max() >= size:
                                raise Infeasible(_conflict(_label(rel.node), origin[cls]))
                            set_layout(part, block, _label(rel.node), queue, cls)
                            start += size
                    elif all(p in layout for p in rel.parts):
                        offsets = itertools.accumulate([0, *rel.sizes[:-1]])
                        value = torch.cat([layout[p] + o for p, o in zip(rel.parts, offsets, strict=True)])
                        set_layout(rel.out, value, _label(rel.node), queue, cls)
                elif isinstance(rel, Slice) and rel.source in layout:
                    block = layout[rel.source][rel.start : rel.start + rel.length] - rel.start
                    if block.min() < 0 or block.max() >= rel.length:
                        raise Infeasible(_conflict(_label(rel.node), origin[cls]))
                    set_layout(rel.part, block, _label(rel.node), queue, cls)

    queue: list = []
    for cls, name in held.items():
        set_layout(cls, torch.arange(problem.size[cls]), name, queue)
    propagate(queue)
    todo = [c for c in problem.size if c not in layout]
    while todo:
        # Anchor an undetermined class at the identity and propagate from it: first a class a grouped conv reads or
        # writes (it can only take permutations within its groups), then one known in parts through its slices
        # (those parts, the identity elsewhere), then any.
        grouped = [c for c in todo if c in problem.groups]
        if tightest_first:  # e.g. conv(G=2) → gathers → conv(G=4): only the G=4 side can take a non-identity order
            grouped.sort(key=lambda c: min(size for size, _ in problem.groups[c]))
        partial = [c for c in todo if any(s.part in layout for s in pending_slices.get(c, []))]
        cls = (grouped or partial or todo)[0]
        value = torch.arange(problem.size[cls])
        for s in pending_slices.get(cls, []):
            if s.part in layout:
                value[s.start : s.start + s.length] = layout[s.part] + s.start
        set_layout(cls, value, _label(cls), queue)
        propagate(queue)
        todo = [c for c in todo if c not in layout]
    return layout


@dataclass
class Solution:
    removed: set[int]  # gathers that go
    released: set[int]  # pins given up: a gather is inserted there
    layout: dict[fx.Node, torch.Tensor]


def _interacting(problem: Problem) -> list[tuple[list[int], list[int]]]:
    """(gathers, pins) whose choices can affect one another, linked through classes and structural nodes; pins on
    classes no gather can reach never need releasing and are left out."""
    parent: dict[fx.Node, fx.Node] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] is not x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for g in problem.gathers:
        parent[find(g.x)] = find(g.y)
    for c in problem.concats:
        for p in c.parts:
            parent[find(c.out)] = find(p)
    for s in problem.slices:
        parent[find(s.source)] = find(s.part)
    gathers: dict[fx.Node, list[int]] = defaultdict(list)
    for i, g in enumerate(problem.gathers):
        gathers[find(g.x)].append(i)
    pins: dict[fx.Node, list[int]] = defaultdict(list)
    for j, pin in enumerate(problem.pins):
        pins[find(pin.cls)].append(j)
    return [(gs, pins[root]) for root, gs in gathers.items()]


def _try(problem: Problem, removed: set[int], pins: set[int]) -> dict | None:
    """A feasible assignment, anchoring the tightest-grouped classes first and then in graph order; None if neither
    finds one."""
    for tightest_first in (True, False):
        try:
            return assign(problem, removed, pins, tightest_first)
        except Infeasible:
            continue
    return None


def _cost(problem: Problem, solution: Solution) -> int:
    """Gathers in the rewritten graph: kept ones that are not the identity, plus those at released pins."""
    cost = 0
    for i, g in enumerate(problem.gathers):
        if i not in solution.removed and not _is_identity(_stored_index(g, solution.layout)):
            cost += 1
    return cost + sum(1 for j in solution.released if not _is_identity(solution.layout[problem.pins[j].cls]))


def solve(problem: Problem) -> Solution:
    """The fewest gathers: per group of interacting gathers and pins, every way of keeping k of them is tried for
    k = 0, 1, … (exact up to EXACT_LIMIT items); larger groups remove gathers greedily with every pin held, in
    several orders."""
    all_pins = set(range(len(problem.pins)))
    removed: set[int] = set()
    released: set[int] = set()
    for gathers, pins in _interacting(problem):
        items = [("g", i) for i in gathers] + [("p", j) for j in pins]
        if len(items) <= EXACT_LIMIT:
            done = False
            for k in range(len(gathers) + 1):  # keeping every gather (k = len) is always feasible
                for kept in itertools.combinations(items, k):
                    keep_g = {i for t, i in kept if t == "g"}
                    drop_p = {j for t, j in kept if t == "p"}
                    trial_removed = removed | (set(gathers) - keep_g)
                    if _try(problem, trial_removed, all_pins - released - drop_p) is not None:
                        removed, released, done = trial_removed, released | drop_p, True
                        break
                if done:
                    break
        else:  # greedy, in a few orders, keeping the best
            best: set[int] = set()
            rng = random.Random(0)
            orders = [list(gathers), list(reversed(gathers))]
            orders += [rng.sample(gathers, len(gathers)) for _ in range(GREEDY_ORDERS - 2)]
            for order in orders:
                chosen: set[int] = set()
                for i in order:
                    if _try(problem, removed | chosen | {i}, all_pins - released) is not None:
                        chosen.add(i)
                best = max(best, chosen, key=len)
            removed |= best
    layout = _try(problem, removed, all_pins - released)
    if layout is None:  # every choice above was found feasible; this re-raises what broke, should it ever not be
        layout = assign(problem, removed, all_pins - released)
    return Solution(removed, released, layout)


def _stored_index(g: Gather, layout: dict[fx.Node, torch.Tensor]) -> torch.Tensor:
    """The gather of stored channels it becomes: stored y[:, j] = stored x[:, σ_x⁻¹[p[σ_y[j]]]]."""
    s_x = layout.get(g.x, torch.arange(len(g.order)))
    s_y = layout.get(g.y, torch.arange(len(g.order)))
    inv_x = torch.empty_like(s_x)
    inv_x[s_x] = torch.arange(len(s_x))
    return inv_x[g.order[s_y]]


# -- rewriting -------------------------------------------------------------------------------------------------------
def _permute_param(module: nn.Module, name: str, index: torch.Tensor, dim: int = 0) -> None:
    t = getattr(module, name, None)
    if t is None:
        return
    value = t.detach().index_select(dim, index.to(t.device))
    if isinstance(t, nn.Parameter):
        setattr(module, name, nn.Parameter(value, requires_grad=False))
    else:
        getattr(module, name).copy_(value) if t.shape == value.shape else setattr(module, name, value)


def _rewrite(gm: fx.GraphModule, uf: _UnionFind, problem: Problem, solution: Solution) -> None:
    layout = solution.layout

    def sigma(node: fx.Node) -> torch.Tensor | None:
        if _channels(node) is None:
            return None
        value = layout.get(uf.find(node))
        return None if value is None or _is_identity(value) else value

    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            m = module_of(gm, node)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                s_in, s_out = sigma(node.args[0]), sigma(node)
                depthwise = isinstance(m, nn.Conv2d) and m.groups == m.in_channels == m.out_channels > 1
                if s_in is None and s_out is None:
                    continue
                m = own_module(gm, node)
                if depthwise:
                    _permute_param(m, "weight", s_out)
                    _permute_param(m, "bias", s_out)
                    continue
                if s_out is not None:
                    _permute_param(m, "weight", s_out)
                    _permute_param(m, "bias", s_out)
                if s_in is not None:
                    if isinstance(m, nn.Linear):
                        spatial = m.in_features // len(s_in)
                        cols = (s_in[:, None] * spatial + torch.arange(spatial)).flatten()
                        _permute_param(m, "weight", cols, dim=1)
                    elif m.groups == 1:
                        _permute_param(m, "weight", s_in, dim=1)
                    else:  # within-group permutation of the input: re-index each group's columns
                        size = m.in_channels // m.groups
                        local = s_in % size
                        per_out = local.view(m.groups, size).repeat_interleave(m.out_channels // m.groups, dim=0)
                        w = m.weight.detach()
                        m.weight = nn.Parameter(
                            torch.gather(w, 1, per_out[:, :, None, None].expand_as(w)), requires_grad=False
                        )
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                s = sigma(node)
                if s is not None:
                    m = own_module(gm, node)
                    for name in ("weight", "bias", "running_mean", "running_var"):
                        _permute_param(m, name, s)
        elif node.op == "call_function" and node.target in BINARY:
            s = sigma(node)
            if s is None:
                continue
            for arg in node.all_input_nodes:
                if arg.op == "get_attr" and _channel_constant(gm, arg, len(s)):
                    value = _attr(gm, arg.target)
                    permuted = value.index_select(value.dim() - 3, s.to(value.device))
                    node.replace_input_with(arg, _constant(gm, node, f"{arg.target}_permuted", permuted))
    for i, g in enumerate(problem.gathers):
        node = g.node
        if i in solution.removed:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
            continue
        index = _stored_index(g, layout)
        if not torch.equal(index, g.order):
            node.args = (node.args[0], 1, _constant(gm, node, f"{node.args[2].target}_stored", index))
    for j in solution.released:
        pin = problem.pins[j]
        s = layout[pin.cls]
        if _is_identity(s):
            continue
        if pin.consumer is None:  # the value as produced: stored[:, j] = logical[:, σ[j]]
            users = list(pin.value.users)
            with gm.graph.inserting_after(pin.value):
                index = gm.graph.get_attr(_register(gm, f"{pin.value.name}_layout", s))
            with gm.graph.inserting_after(index):
                gathered = gm.graph.call_function(torch.index_select, (pin.value, 1, index))
            for u in users:
                u.replace_input_with(pin.value, gathered)
        else:  # where the consumer reads it, back to the logical order: logical[:, k] = stored[:, σ⁻¹[k]]
            inv = torch.empty_like(s)
            inv[s] = torch.arange(len(s))
            index = _constant(gm, pin.consumer, f"{pin.consumer.name}_{pin.value.name}_logical", inv)
            with gm.graph.inserting_before(pin.consumer):
                gathered = gm.graph.call_function(torch.index_select, (pin.value, 1, index))
            pin.consumer.replace_input_with(pin.value, gathered)


def _register(gm: fx.GraphModule, base: str, value: torch.Tensor) -> str:
    name = fresh_name(gm, base)
    gm.register_buffer(name, value)
    return name


def _constant(gm: fx.GraphModule, before: fx.Node, base: str, value: torch.Tensor) -> fx.Node:
    name = _register(gm, base, value)
    with gm.graph.inserting_before(before):
        return gm.graph.get_attr(name)


@dataclass
class KeptGather:
    gather: str
    forced_by: str  # the node whose order it serves

    def as_dict(self) -> dict[str, str]:
        return {"gather": self.gather, "forced_by": self.forced_by}


def explain(problem: Problem, solution: Solution) -> list[KeptGather]:
    """For each gather in the rewritten graph: the node whose order makes removing it infeasible."""
    kept = []
    held = set(range(len(problem.pins))) - solution.released
    for i, g in enumerate(problem.gathers):
        if i in solution.removed or _is_identity(_stored_index(g, solution.layout)):
            continue
        try:
            assign(problem, solution.removed | {i}, held)
            reason = "every constraint it meets at once"  # each alone is satisfiable; together they are not
        except Infeasible as err:
            reason = err.node
        kept.append(KeptGather(g.node.name, reason))
    for j in sorted(solution.released):
        pin = problem.pins[j]
        if not _is_identity(solution.layout[pin.cls]):
            where = pin.consumer.name if pin.consumer is not None else pin.value.name
            kept.append(
                KeptGather(f"({'before ' + where if pin.consumer is not None else 'after ' + where})", pin.name)
            )
    return kept


class PropagatePermutations(GraphPass):
    """Remove every gather the network's layers can absorb (module docstring); the rest are re-indexed in place.
    ``example_shape``, the input's (C, H, W), gives the channel counts."""

    name = "propagate_permutations"

    def __init__(self, example_shape: tuple[int, ...] | None = None) -> None:
        self.example_shape = example_shape

    def rewrite(self, gm: fx.GraphModule) -> fx.GraphModule:
        if not any(is_gather(n) for n in gm.graph.nodes):
            return gm
        if self.example_shape is None:
            raise ValueError("propagate_permutations needs the input shape (C, H, W) to know the channel counts")
        propagate_shapes(gm, self.example_shape)
        problem, uf = build_problem(gm)
        _rewrite(gm, uf, problem, solve(problem))
        gm.graph.eliminate_dead_code()
        return finish(gm)


def gather_report(gm: fx.GraphModule, example_shape: tuple[int, ...]) -> list[KeptGather]:
    """Every gather left in ``gm`` and the node whose order forces it (what removing it alone would break)."""
    if not any(is_gather(n) for n in gm.graph.nodes):
        return []
    propagate_shapes(gm, example_shape)
    problem, _ = build_problem(gm)
    return explain(problem, Solution(set(), set(), assign(problem, set(), set(range(len(problem.pins))))))


def remaining_gathers(gm: fx.GraphModule) -> list[str]:
    """Names of the gather nodes still in the graph (each one is a run-time channel shuffle)."""
    return [n.name for n in gm.graph.nodes if is_gather(n)]
