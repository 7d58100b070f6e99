"""How ``prunex inspect`` shows a summary (:func:`prunex.inspection.summarise`): what was learned, and what
compression made of it."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table


def _gates(summary: dict[str, Any]) -> str:
    frozen = summary.get("frozen_gates", 0)
    total = summary["gates"] + frozen
    kwargs = (summary.get("model") or {}).get("kwargs") or {}
    kept = "at their values" if kwargs.get("connectivity") == "real_valued" else "at top-K"  # MaskConnect's ablation
    return f"{total:,} gates" + (f" ({frozen:,} frozen {kept})" if frozen else "")


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
        _print_compressed(console, comp)


def _print_compressed(console: Console, comp: dict[str, Any]) -> None:
    """What compression did: sizes before and after, blocks removed, groups deployed, gathers kept."""
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
