"""Rewriting the network for its chosen layouts: weights, BN vectors and per-channel constants re-indexed, removed
gathers dropped, kept ones re-indexed, released identities restored by a gather; and why each kept gather stays."""

from __future__ import annotations

import torch
from torch import fx, nn

from prunex.artifacts.compression_report import KeptGather
from prunex.passes.graph import fresh_name, module_of, own_module
from prunex.passes.layouts.constraints import attr, channel_constant
from prunex.passes.layouts.problem import Pin, Problem, UnionFind
from prunex.passes.layouts.rules import BINARY, channels, flattened_into_linear, module_rule
from prunex.passes.layouts.solver import Infeasible, Solution, assign, stored_index
from prunex.passes.permutations import inverse_permutation, is_identity


def rewrite_layouts(gm: fx.GraphModule, uf: UnionFind, problem: Problem, solution: Solution) -> None:
    """Re-index every layer for the chosen layouts (by its rule), drop the removed gathers, re-index the kept ones
    and restore the identity with a gather at each pin given up."""
    layout = solution.layout

    def sigma(node: fx.Node | None) -> torch.Tensor | None:
        if node is None or channels(node) is None:
            return None
        value = layout.get(uf.find(node))
        return None if value is None or is_identity(value) else value

    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            _reindex_module(gm, node, sigma)
        elif node.op == "call_function" and node.target in BINARY:
            _reindex_constants(gm, node, sigma(node))
    _rewrite_gathers(gm, problem, solution)
    for j in solution.released:
        _restore_identity(gm, problem.pins[j], layout[problem.pins[j].cls])


def _reindex_module(gm: fx.GraphModule, node: fx.Node, sigma) -> None:
    """The module's rule re-indexes it for σ_in (a linear layer reading a flattened map: the map's) and σ_out."""
    m = module_of(gm, node)
    rule = module_rule(m)
    if rule is None or rule.reindex is None:
        return
    source = flattened_into_linear(gm, node.args[0]) if isinstance(m, nn.Linear) else None
    s_in, s_out = sigma(source if source is not None else node.args[0]), sigma(node)
    if s_in is not None or s_out is not None:
        rule.reindex(own_module(gm, node), s_in, s_out)


def _reindex_constants(gm: fx.GraphModule, node: fx.Node, s: torch.Tensor | None) -> None:
    """Per-channel constants of an elementwise op follow its output's layout."""
    if s is None:
        return
    for arg in node.all_input_nodes:
        if arg.op == "get_attr" and channel_constant(gm, arg, len(s)):
            value = attr(gm, arg.target)
            permuted = value.index_select(value.dim() - 3, s.to(value.device))
            node.replace_input_with(arg, _constant(gm, node, f"{arg.target}_permuted", permuted))


def _rewrite_gathers(gm: fx.GraphModule, problem: Problem, solution: Solution) -> None:
    """Removed gathers go; a kept one reads its stored index."""
    for i, g in enumerate(problem.gathers):
        node = g.node
        if i in solution.removed:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
            continue
        index = stored_index(g, solution.layout)
        if not torch.equal(index, g.order):
            node.args = (node.args[0], 1, _constant(gm, node, f"{node.args[2].target}_stored", index))


def _restore_identity(gm: fx.GraphModule, pin: Pin, s: torch.Tensor) -> None:
    """A pin given up: a gather back to the logical order where the identity is needed."""
    if is_identity(s):
        return
    if pin.consumer is None:  # the value as produced: stored[:, j] = logical[:, σ[j]]
        users = list(pin.value.users)
        with gm.graph.inserting_after(pin.value):
            index = gm.graph.get_attr(_register(gm, f"{pin.value.name}_layout", s))
        with gm.graph.inserting_after(index):
            gathered = gm.graph.call_function(torch.index_select, (pin.value, 1, index))
        for u in users:
            u.replace_input_with(pin.value, gathered)
    else:  # where the consumer reads it, back to the logical order: logical[:, k] = stored[:, σ⁻¹[k]]
        inv = inverse_permutation(s)
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


def explain(problem: Problem, solution: Solution) -> list[KeptGather]:
    """For each gather in the rewritten graph: the node whose order makes removing it infeasible."""
    kept = []
    held = set(range(len(problem.pins))) - solution.released
    for i, g in enumerate(problem.gathers):
        if i in solution.removed or is_identity(stored_index(g, solution.layout)):
            continue
        try:
            assign(problem, solution.removed | {i}, held)
            reason = "every constraint it meets at once"  # each alone is satisfiable; together they are not
        except Infeasible as err:
            reason = err.node
        kept.append(KeptGather(g.node.name, reason))
    for j in sorted(solution.released):
        pin = problem.pins[j]
        if not is_identity(solution.layout[pin.cls]):
            where = pin.consumer.name if pin.consumer is not None else pin.value.name
            kept.append(
                KeptGather(f"({'before ' + where if pin.consumer is not None else 'after ' + where})", pin.name)
            )
    return kept
