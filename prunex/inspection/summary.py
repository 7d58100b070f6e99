"""What ``prunex inspect`` finds: per module / layer, what is active, how it is grouped, what it weighs, and (given a
compression report) what was removed and what each layer became, as a JSON-ready summary and pictures (the CLI
shows the summary: :mod:`prunex.cli.views.inspect`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from prunex.artifacts.compression_report import CompressionReport
from prunex.inspection import figures
from prunex.inspection.structure import (
    connectivity,
    feature_reuse,
    gate_dynamics,
    grouped_layers,
    multi_residual_blocks,
    sparse_links,
)
from prunex.models import count_parameters
from prunex.nn.gates import branch_gate_modules


def summarise(model: nn.Module, report: CompressionReport | None = None) -> dict[str, Any]:
    """A JSON-ready description of the learned structure (and of the compression, given its report)."""
    spec = getattr(model, "prunex_spec", None)
    out: dict[str, Any] = {"model": spec.to_dict() if spec is not None else None, **count_parameters(model)}
    # gates the run froze (MaskConnect's masks at top-K) are no longer parameters, but they are what it learned
    out["frozen_gates"] = sum(
        m.mask.numel()
        for _, m in branch_gate_modules(model)
        if m.connectivity.learnable and m.weight is None and m.mask is not None
    )
    conn = connectivity(model)
    if conn is not None:
        out["maskconnect"] = {
            "cardinality": conn.cardinality,
            "fan_in": conn.fan_in,
            "modules": [
                {
                    "module": i,
                    "active": sum(active),
                    "pruned": [j for j, a in enumerate(active) if not a],
                    "reads": conn.masks[i - 1].nonzero()[:, 1].view(conn.cardinality, -1).tolist() if i else None,
                    "block_params": conn.block_params[i],
                    "live_block_params": conn.block_params[i] * sum(active),
                }
                for i, active in enumerate(conn.active)
            ],
        }
    layers = grouped_layers(model)
    if layers:
        out["dgconv"] = [vars(lay) for lay in layers]
    stages = sparse_links(model)
    if stages:
        out["sparsenet"] = [
            {"stage": s, "layers": st.layers, "links": sum(map(len, st.links)), "base": st.base, "aggregation": st.mode}
            for s, st in enumerate(stages)
        ]
    blocks = multi_residual_blocks(model)
    if blocks:
        out["multi_residual"] = {"blocks": len(blocks), "functions_per_block": blocks}
    if report is not None:
        out["compressed"] = {
            **asdict(report.totals),
            "blocks_removed": report.blocks_removed,
            "groups": [
                {"layer": g.layer, "learned": g.learned_groups, "deployed": g.groups_after} for g in report.groups
            ],
            "gathers_remaining": [k.as_dict() for k in report.gathers_remaining],
            "lowering": [asdict(d) for d in report.lowering],
        }
    return out


def draw_pictures(
    model: nn.Module,
    out: Path,
    report: CompressionReport | None,
    formats: tuple[str, ...],
    history: list[dict[str, Any]] | None = None,
) -> tuple[list[Path], str | None]:
    """:func:`draw`, or no pictures and the reason when matplotlib is missing (the text summary still works)."""
    try:
        return draw(model, out, report, formats, history), None
    except figures.PlottingUnavailable as err:
        return [], str(err)


def draw(
    model: nn.Module,
    out: Path,
    report: CompressionReport | None = None,
    formats: tuple[str, ...] = ("svg", "png"),
    history: list[dict[str, Any]] | None = None,
) -> list[Path]:
    """Every picture that applies to ``model`` (and, with the run's ``history``, to its training); raises
    figures.PlottingUnavailable without matplotlib."""
    paths: list[Path] = []
    conn = connectivity(model)
    if conn is not None:
        paths += figures.connectivity_figure(conn, out / "connectivity", formats)
        paths += figures.active_branches_figure(conn, out / "active_branches", formats)
    layers = grouped_layers(model)
    if layers:
        deployed = [g.groups_after for g in report.groups] if report else None
        paths += figures.groups_figure(layers, out / "dgconv_groups", deployed, formats)
    stages = sparse_links(model)
    if stages:
        paths += figures.sparse_links_figure(stages, out / "sparsenet_links", formats)
    reuse = feature_reuse(model)
    if reuse:
        paths += figures.feature_reuse_figure(reuse, out / "feature_reuse", formats)
    dynamics = gate_dynamics(history or [])
    if dynamics is not None:
        paths += figures.gate_dynamics_figure(dynamics, out / "gate_dynamics", formats)
    return paths
