"""The layout problem as plain data, independent of any graph: classes of activations that share a channel layout
(any hashable key), their sizes, and the constraints between them. ``constraints.py`` builds one from a torch.fx
graph; ``solver.py`` solves one; a test can write one by hand.

A layout σ of a class says which logical channel each stored channel holds: stored[:, j] = logical[:, σ[j]].
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import torch

Class = Hashable  # a layout class: the union-find root of the activations that share one layout


class UnionFind:
    """Disjoint sets of hashable items, with path halving."""

    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}

    def find(self, x: Hashable) -> Hashable:
        self.parent.setdefault(x, x)
        while self.parent[x] is not x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra is not rb:
            self.parent[rb] = ra


@dataclass
class Gather:
    """y = x[:, order]: removable when σ_x = order ∘ σ_y."""

    node: Any  # the graph node (what the rewrite edits; None in a problem written by hand)
    x: Class
    y: Class
    order: torch.Tensor
    name: str = ""  # how messages name it


@dataclass
class Concat:
    """out = cat(parts, dim=1): σ_out is the parts' layouts side by side, each offset by the sizes before it."""

    node: Any
    out: Class
    parts: list[Class]  # in order
    sizes: list[int]
    name: str = ""


@dataclass
class Slice:
    """part = source[:, start : start + length]: σ_source maps that block onto itself, as σ_part."""

    node: Any
    source: Class
    part: Class
    start: int
    length: int
    name: str = ""


@dataclass
class Pin:
    """A place where the identity layout is required: a network input (``consumer`` None: the value as produced),
    a network output, or a node the pass does not see through (the value where ``consumer`` reads it). Not meeting
    it costs one gather there."""

    cls: Class
    value: Any
    consumer: Any
    name: str


@dataclass
class Problem:
    """Layout classes and the constraints between them."""

    size: dict[Class, int] = field(default_factory=dict)  # class → channels
    pins: list[Pin] = field(default_factory=list)
    groups: dict[Class, list[tuple[int, str]]] = field(default_factory=dict)  # class → (group size, who groups it)
    gathers: list[Gather] = field(default_factory=list)
    concats: list[Concat] = field(default_factory=list)
    slices: list[Slice] = field(default_factory=list)
    names: dict[Class, str] = field(default_factory=dict)  # how messages name a class (default: str of its key)

    def name_of(self, cls: Class) -> str:
        return self.names.get(cls, str(cls))
