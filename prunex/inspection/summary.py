"""The text side of ``prunex inspect``: per module / layer, what is active, how it is grouped, what it weighs, and
(given a compression report) what was removed and what each layer became."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from torch import nn

from prunex.inspection import figures
from prunex.inspection.structure import connectivity, grouped_layers, multi_residual_blocks, sparse_links
from prunex.models import count_parameters
from prunex.nn import branch_gates
from prunex.nn.gates import branch_gate_modules


def summarise(model: nn.Module, report: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready description of the learned structure (and of the compression, given its report)."""
    out: dict[str, Any] = {"model": getattr(model, "prunex_spec", None), **count_parameters(model)}
    # gates the run froze (MaskConnect's masks at top-K) are no longer parameters, but they are what it learned
    out["frozen_gates"] = sum(
        m.mask.numel()
        for _, m in branch_gate_modules(model)
        if m.connectivity is branch_gates.Connectivity.LEARNED and m.weight is None and m.mask is not None
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
            **report["totals"],
            "blocks_removed": report["blocks_removed"],
            "groups": [
                {"layer": g["layer"], "learned": g["learned_groups"], "deployed": g["groups_after"]}
                for g in report["groups"]
            ],
            "gathers_remaining": report["gathers_remaining"],
            "lowering": report.get("lowering", []),
        }
    return out


def _gates(summary: dict[str, Any]) -> str:
    frozen = summary.get("frozen_gates", 0)
    total = summary["gates"] + frozen
    return f"{total:,} gates" + (f" ({frozen:,} frozen at top-K)" if frozen else "")


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    spec = summary.get("model") or {}
    console.print(
        f"[bold]{spec.get('name', 'model')}[/bold] {spec.get('kwargs', '')}: {summary['params']:,} weights, "
        f"{_gates(summary)}"
    )
    mc = summary.get("maskconnect")
    if mc:
        table = Table(title=f"MaskConnect: C = {mc['cardinality']}, K = {mc['fan_in']}", box=box.SIMPLE_HEAD)
        for col in ("module", "active", "pruned blocks", "inputs of each block", "live weights"):
            table.add_column(col, justify="right" if col in ("module", "active", "live weights") else "left")
        for m in mc["modules"]:
            reads = " ".join("".join(map(str, r)) for r in m["reads"]) if m["reads"] else "stem"
            table.add_row(
                str(m["module"]),
                f"{m['active']}/{mc['cardinality']}",
                str(m["pruned"] or "-"),
                reads,
                f"{m['live_block_params']:,}",
            )
        console.print(table)
    if summary.get("dgconv"):
        table = Table(title="DGConv layers", box=box.SIMPLE_HEAD)
        for col in ("layer", "channels", "gates g_1…g_K", "groups", "weights dense → grouped"):
            table.add_column(col)
        for lay in summary["dgconv"]:
            table.add_row(
                lay["name"],
                f"{lay['in_channels']}→{lay['out_channels']}",
                "".join(map(str, lay["gates"])),
                str(lay["groups"]),
                f"{lay['dense_params']:,} → {lay['grouped_params']:,}",
            )
        console.print(table)
    for st in summary.get("sparsenet", []):
        console.print(
            f"SparseNet stage {st['stage'] + 1}: {st['layers']} layers, {st['links']} links "
            f"(offsets {st['base']}^k, {st['aggregation']})"
        )
    if summary.get("multi_residual"):
        mr = summary["multi_residual"]
        console.print(
            f"Multi-ResNet: {mr['blocks']} blocks of {sorted(set(mr['functions_per_block']))} residual functions each"
        )
    comp = summary.get("compressed")
    if comp:
        console.print(
            f"[bold]after compression[/bold]: weights {comp['params_before']:,} → {comp['params_after']:,}, "
            f"MACs {comp['macs_before']:,} → {comp['macs_after']:,}, max |Δ| "
            f"{comp['end_to_end_max_abs_err']:.1e}"
        )
        for where, blocks in comp["blocks_removed"].items():
            console.print(f"  removed {where}: {blocks}")
        changed = [g for g in comp["groups"] if g["deployed"] != g["learned"]]
        for g in changed:
            console.print(f"  {g['layer']}: {g['learned']} learned groups → deployed as {g['deployed']}")
        if comp["groups"] and not changed:
            console.print(f"  {len(comp['groups'])} DGConv layers became grouped convs at their learned group counts")
        for kept in comp["gathers_remaining"]:
            why = f" (no single order serves {kept['forced_by']})" if kept.get("forced_by") else ""
            console.print(f"  channel gather kept: {kept['gather']}{why}")


def draw_pictures(
    model: nn.Module, out: Path, report: dict[str, Any] | None, formats: tuple[str, ...]
) -> tuple[list[Path], str | None]:
    """:func:`draw`, or no pictures and the reason when matplotlib is missing (the text summary still works)."""
    try:
        return draw(model, out, report, formats), None
    except figures.PlottingUnavailable as err:
        return [], str(err)


PICTURE_NAMES = ("connectivity", "active_branches", "dgconv_groups", "sparsenet_links")  # what draw() may write


def draw(
    model: nn.Module, out: Path, report: dict[str, Any] | None = None, formats: tuple[str, ...] = ("svg", "png")
) -> list[Path]:
    """Every picture that applies to ``model``; raises figures.PlottingUnavailable without matplotlib."""
    paths: list[Path] = []
    conn = connectivity(model)
    if conn is not None:
        paths += figures.connectivity_figure(conn, out / "connectivity", formats)
        paths += figures.active_branches_figure(conn, out / "active_branches", formats)
    layers = grouped_layers(model)
    if layers:
        deployed = [g["groups_after"] for g in report["groups"]] if report else None
        paths += figures.groups_figure(layers, out / "dgconv_groups", deployed, formats)
    stages = sparse_links(model)
    if stages:
        paths += figures.sparse_links_figure(stages, out / "sparsenet_links", formats)
    return paths
