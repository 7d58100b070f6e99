"""How the commands show their results (tables and lines on the console); shared by the command modules."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _relative(rel: float | None, scale: float | None) -> str:
    """`` = 1.2e-07 of the output scale 3.4e+01`` (nothing for a report written before the scale was)."""
    return "" if rel is None or scale is None else f" = {rel:.1e} of the output scale {scale:.1e}"


def print_report(console: Console, report: dict[str, Any]) -> None:
    table = Table(
        title="passes, each verified against the graph before it (rel |Δ| = max |Δ| / max |output|)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("pass", no_wrap=True)
    for col in ("rel |Δ|", "top-1", "params", "MMACs", "layers"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report["passes"]:
        layers = len(r["added"]) + len(r["removed"]) + len(r["changed"])
        table.add_row(
            r["name"],
            f"{r['max_rel_err']:.1e}",
            f"{100 * r['top1_agreement']:.0f}%",
            f"{r['params']:,}",
            f"{r['macs'] / 1e6:,.2f}",
            str(layers),
        )
    console.print(table)
    t = report["totals"]
    console.print(
        f"params {t['params_before']:,} → {t['params_after']:,} ({t['params_after'] / t['params_before']:.1%}), "
        f"MACs {t['macs_before']:,} → {t['macs_after']:,} ({t['macs_after'] / max(t['macs_before'], 1):.1%}); "
        f"compressed vs frozen: max |Δ| {t['end_to_end_max_abs_err']:.1e}"
        f"{_relative(t.get('end_to_end_max_rel_err'), t.get('end_to_end_output_scale'))}, "
        f"top-1 agreement {100 * t['end_to_end_top1_agreement']:.1f}%"
    )
    ref = report.get("reference")
    if ref:
        macs, params = t["macs_after"] / max(ref["macs"], 1), t["params_after"] / max(ref["params"], 1)
        console.print(
            f"reference {escape(ref['name'])}: params {ref['params']:,}, MACs {ref['macs']:,}; "
            f"the compressed network does {macs:.2f}× its MACs with {params:.2f}× its weights"
        )
    if report["blocks_removed"]:
        removed = "; ".join(f"{k}: {v}" for k, v in report["blocks_removed"].items())
        console.print(f"blocks removed: {removed}")
    if report["groups"]:
        groups = ", ".join(str(g["learned_groups"]) for g in report["groups"])
        console.print(f"DGConv groups (dense before): {groups}")
    if report.get("lowering"):
        t = report["options"]["target"]
        console.print(f"latency-aware lowering for {t['device']} {t['backend']} {t['dtype']} batch {t['batch']}:")
        for d in report["lowering"]:
            times = ", ".join(f"{k} {v:.3f}" for k, v in sorted(d["times_ms"].items(), key=lambda kv: kv[1]))
            source = "cached" if d["from_cache"] else "measured"
            console.print(f"  {d['layer']} ({d['learned']}): [bold]{d['chosen']}[/bold]  ({source} ms: {times})")
    for kept in report["gathers_remaining"]:
        console.print(
            f"[yellow]channel gather kept:[/yellow] {kept['gather']} (no single order serves {kept['forced_by']})"
        )


def print_bench_row(console: Console, row: dict[str, Any]) -> None:
    if row["status"] == "ok":
        line = f"{row['model']} [{row['kind']}] {row['backend']} {row['dtype']} batch {row['batch']}"
        console.print(f"  {escape(line)}: median {row['median_ms']:.3f} ms (set-up {row['setup_s']:.1f} s)")


def print_bench(console: Console, result: dict[str, Any], warnings: list[str]) -> None:
    from prunex.benchmarking.report import peak_lines, results_tables, unstable_rows

    for table in results_tables(result, console.width):
        console.print(table)
    for line in peak_lines(result):
        console.print(f"[dim]{escape(line)}[/dim]")
    for line in unstable_rows(result):
        console.print(f"[yellow]warning: coefficient of variation above 2.5 %: {escape(line)}[/yellow]")
    for name, reason in sorted({(r["backend"], r["reason"]) for r in result["results"] if r["status"] != "ok"}):
        console.print(f"[dim]{name} not measured: {escape(reason)}[/dim]")
    for warning in warnings:
        console.print(f"[yellow]{escape(warning)}[/yellow]")


def int8_lines(details: dict[str, Any]) -> list[str]:
    """What an INT8 export did, for the console (nothing for other precisions)."""
    int8 = details.get("int8")
    if not int8:
        return []
    done = len(int8["quantized_layers"])
    lines = [f"int8: {done} layers quantized ({int8['observer']} observer, {int8['calibration_images']} images)"]
    tuning = int8.get("tuning")
    if tuning:
        ms = ", ".join(f"{k} {v:.3f}" for k, v in tuning["network_ms"].items())
        kept = int8["kept_float"]
        faster = sum(layer["int8"] for layer in tuning["layers"])
        lines.append(f"int8 tuning: {faster} of {len(tuning['layers'])} layers ran faster in int8 on their own")
        lines.append(f"int8 tuning: networks timed end to end (ms at the target batch): {ms}; kept {tuning['network']}")
        if kept and not done:
            lines.append("no int8 network was faster than fp32 end to end: the model is written in floating point")
        elif kept:
            lines.append(f"left in floating point (not faster in int8): {', '.join(kept)}")
    return lines
