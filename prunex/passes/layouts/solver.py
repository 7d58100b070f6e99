"""Choosing layouts: which gathers go and which identities are given up, so that every constraint between layout
classes is met with the fewest gathers left (exact for small interacting groups, greedy beyond)."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from dataclasses import dataclass

import torch

from prunex.passes.layouts.problem import Class, Concat, Gather, Problem, Slice, UnionFind
from prunex.passes.permutations import inverse_permutation, is_identity

EXACT_LIMIT = 12  # interacting gathers and pins decided by trying every subset (2^n); more are decided greedily
GREEDY_ORDERS = 8  # orders the greedy choice tries for a larger group


class Infeasible(Exception):
    """A set of removed gathers whose layouts cannot all be met; ``node`` names the constraint that broke."""

    def __init__(self, node: str) -> None:
        super().__init__(node)
        self.node = node


def within_groups(p: torch.Tensor, size: int) -> bool:
    return torch.equal(p // size, torch.arange(len(p)) // size)


def _conflict(a: str, b: str) -> str:
    return a if a == b else f"{b} vs {a}"


class _Propagation:
    """Layouts fixed one class at a time, each pushed through every constraint it takes part in."""

    def __init__(self, problem: Problem, removed: set[int], pins: set[int]) -> None:
        self.problem = problem
        self.layout: dict[Class, torch.Tensor] = {}
        self.origin: dict[Class, str] = {}  # the node whose order each layout was derived from
        self.by_class: dict[Class, list] = defaultdict(list)
        for i, g in enumerate(problem.gathers):
            if i in removed:
                self.by_class[g.x].append(g)
                self.by_class[g.y].append(g)
        for c in problem.concats:
            for cls in (c.out, *c.parts):
                self.by_class[cls].append(c)
        for s in problem.slices:
            self.by_class[s.source].append(s)
            self.by_class[s.part].append(s)
        self.held: dict[Class, str] = {}
        for j in pins:
            self.held.setdefault(problem.pins[j].cls, problem.pins[j].name)
        self.queue: list[Class] = []

    def set(self, cls: Class, value: torch.Tensor, why: str, source: Class | None = None) -> None:
        """σ_cls = ``value`` (``why``: the node it comes from); Infeasible if it contradicts what is known."""
        start = self.origin.get(source, why) if source is not None else why
        if cls in self.layout:
            if not torch.equal(self.layout[cls], value):
                raise Infeasible(_conflict(self.origin[cls], start))
            return
        if cls in self.held and not is_identity(value):
            raise Infeasible(_conflict(self.held[cls], start))
        for size, node in self.problem.groups.get(cls, []):
            if not within_groups(value, size):
                raise Infeasible(_conflict(node, start))
        self.layout[cls] = value
        self.origin[cls] = start
        self.queue.append(cls)

    def propagate(self) -> None:
        layout = self.layout
        while self.queue:
            cls = self.queue.pop()
            for rel in self.by_class[cls]:
                if isinstance(rel, Gather):  # σ_x = p ∘ σ_y
                    if rel.x in layout and rel.y not in layout:
                        self.set(rel.y, inverse_permutation(rel.order)[layout[rel.x]], rel.name, cls)
                    elif rel.y in layout:
                        self.set(rel.x, rel.order[layout[rel.y]], rel.name, cls)
                elif isinstance(rel, Concat):
                    self._concat(rel, cls)
                elif isinstance(rel, Slice) and rel.source in layout:
                    self._slice(rel, cls)

    def _concat(self, rel: Concat, cls: Class) -> None:
        """σ_out = [σ_p1, σ_p2 + |p1|, …]: known from the parts, or split into them."""
        layout = self.layout
        if rel.out in layout:
            out, start = layout[rel.out], 0
            for part, size in zip(rel.parts, rel.sizes, strict=True):
                block = out[start : start + size] - start
                if block.min() < 0 or block.max() >= size:
                    raise Infeasible(_conflict(rel.name, self.origin[cls]))
                self.set(part, block, rel.name, cls)
                start += size
        elif all(p in layout for p in rel.parts):
            offsets = itertools.accumulate([0, *rel.sizes[:-1]])
            value = torch.cat([layout[p] + o for p, o in zip(rel.parts, offsets, strict=True)])
            self.set(rel.out, value, rel.name, cls)

    def _slice(self, rel: Slice, cls: Class) -> None:
        """σ_part = σ_source on the block, which σ_source must map onto itself."""
        block = self.layout[rel.source][rel.start : rel.start + rel.length] - rel.start
        if block.min() < 0 or block.max() >= rel.length:
            raise Infeasible(_conflict(rel.name, self.origin[cls]))
        self.set(rel.part, block, rel.name, cls)


def assign(
    problem: Problem, removed: set[int], pins: set[int], tightest_first: bool = True
) -> dict[Class, torch.Tensor]:
    """Layouts for every class meeting every constraint with the gathers in ``removed`` gone and the pins in ``pins``
    held; raises Infeasible naming the node whose constraint broke. ``tightest_first``: anchor the class with the
    smallest groups first (its identity leaves the others room), else in graph order."""
    run = _Propagation(problem, removed, pins)
    pending_slices: dict[Class, list[Slice]] = defaultdict(list)
    for s in problem.slices:
        pending_slices[s.source].append(s)
    for cls, name in run.held.items():
        run.set(cls, torch.arange(problem.size[cls]), name)
    run.propagate()
    todo = [c for c in problem.size if c not in run.layout]
    while todo:
        # Anchor an undetermined class at the identity and propagate from it: first a class a grouped conv reads or
        # writes (it can only take permutations within its groups), then one known in parts through its slices
        # (those parts, the identity elsewhere), then any.
        grouped = [c for c in todo if c in problem.groups]
        if tightest_first:  # e.g. conv(G=2) → gathers → conv(G=4): only the G=4 side can take a non-identity order
            grouped.sort(key=lambda c: min(size for size, _ in problem.groups[c]))
        partial = [c for c in todo if any(s.part in run.layout for s in pending_slices.get(c, []))]
        cls = (grouped or partial or todo)[0]
        value = torch.arange(problem.size[cls])
        for s in pending_slices.get(cls, []):
            if s.part in run.layout:
                value[s.start : s.start + s.length] = run.layout[s.part] + s.start
        run.set(cls, value, problem.name_of(cls))
        run.propagate()
        todo = [c for c in todo if c not in run.layout]
    return run.layout


@dataclass
class Solution:
    removed: set[int]  # gathers that go
    released: set[int]  # pins given up: a gather is inserted there
    layout: dict[Class, torch.Tensor]


def _interacting(problem: Problem) -> list[tuple[list[int], list[int]]]:
    """(gathers, pins) whose choices can affect one another, linked through classes and structural nodes; pins on
    classes no gather can reach never need releasing and are left out."""
    classes = UnionFind()
    for g in problem.gathers:
        classes.union(g.y, g.x)
    for c in problem.concats:
        for p in c.parts:
            classes.union(p, c.out)
    for s in problem.slices:
        classes.union(s.part, s.source)
    find = classes.find
    gathers: dict[Class, list[int]] = defaultdict(list)
    for i, g in enumerate(problem.gathers):
        gathers[find(g.x)].append(i)
    pins: dict[Class, list[int]] = defaultdict(list)
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


def stored_index(g: Gather, layout: dict[Class, torch.Tensor]) -> torch.Tensor:
    """The gather of stored channels it becomes: stored y[:, j] = stored x[:, σ_x⁻¹[p[σ_y[j]]]]."""
    s_x = layout.get(g.x, torch.arange(len(g.order)))
    s_y = layout.get(g.y, torch.arange(len(g.order)))
    return inverse_permutation(s_x)[g.order[s_y]]
