"""Rewriting the network for its chosen layouts: weights, BN vectors and per-channel constants re-indexed, removed
gathers dropped, kept ones re-indexed, released identities restored by a gather; and why each kept gather stays."""

from __future__ import annotations

import torch
from torch import fx, nn

from prunex.artifacts.compression_report import KeptGather
from prunex.passes.graph import fresh_name, module_of, own_module
from prunex.passes.layouts.constraints import (
    BINARY,
    Problem,
    UnionFind,
    attr,
    channel_constant,
    channels,
    flattened_into_linear,
)
from prunex.passes.layouts.solver import Infeasible, Solution, assign, stored_index
from prunex.passes.permutations import inverse_permutation, is_identity


def _permute_param(module: nn.Module, name: str, index: torch.Tensor, dim: int = 0) -> None:
    t = getattr(module, name, None)
    if t is None:
        return
    value = t.detach().index_select(dim, index.to(t.device))
    setattr(module, name, nn.Parameter(value, requires_grad=False) if isinstance(t, nn.Parameter) else value)


def rewrite_layouts(gm: fx.GraphModule, uf: UnionFind, problem: Problem, solution: Solution) -> None:
    layout = solution.layout

    def sigma(node: fx.Node) -> torch.Tensor | None:
        if channels(node) is None:
            return None
        value = layout.get(uf.find(node))
        return None if value is None or is_identity(value) else value

    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            m = module_of(gm, node)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                source = flattened_into_linear(gm, node.args[0]) if isinstance(m, nn.Linear) else None
                s_in, s_out = sigma(source if source is not None else node.args[0]), sigma(node)
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
                if arg.op == "get_attr" and channel_constant(gm, arg, len(s)):
                    value = attr(gm, arg.target)
                    permuted = value.index_select(value.dim() - 3, s.to(value.device))
                    node.replace_input_with(arg, _constant(gm, node, f"{arg.target}_permuted", permuted))
    for i, g in enumerate(problem.gathers):
        node = g.node
        if i in solution.removed:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
            continue
        index = stored_index(g, layout)
        if not torch.equal(index, g.order):
            node.args = (node.args[0], 1, _constant(gm, node, f"{node.args[2].target}_stored", index))
    for j in solution.released:
        pin = problem.pins[j]
        s = layout[pin.cls]
        if is_identity(s):
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
