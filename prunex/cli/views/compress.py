"""How ``prunex compress`` shows its report: the verified passes, the totals, what was learned and lowered."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prunex.artifacts.compression_report import CompressionReport


def _relative(rel: float | None, scale: float | None) -> str:
    """`` = 1.2e-07 of the output scale 3.4e+01`` (nothing for a report written before the scale was)."""
    return "" if rel is None or scale is None else f" = {rel:.1e} of the output scale {scale:.1e}"


def print_report(console: Console, report: CompressionReport) -> None:
    table = Table(
        title="passes, each verified against the graph before it (rel |Δ| = max |Δ| / max |output|)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("pass", no_wrap=True)
    for col in ("rel |Δ|", "top-1", "params", "MMACs", "layers"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in report.passes:
        layers = len(r.added) + len(r.removed) + len(r.changed)
        row = (f"{r.max_rel_err:.1e}", f"{100 * r.top1_agreement:.0f}%", f"{r.params:,}", f"{r.macs / 1e6:,.2f}")
        table.add_row(r.name, *row, str(layers))
    console.print(table)
    t = report.totals
    console.print(
        f"params {t.params_before:,} → {t.params_after:,} ({t.params_after / t.params_before:.1%}), "
        f"MACs {t.macs_before:,} → {t.macs_after:,} ({t.macs_after / max(t.macs_before, 1):.1%}); "
        f"compressed vs frozen: max |Δ| {t.end_to_end_max_abs_err:.1e}"
        f"{_relative(t.end_to_end_max_rel_err, t.end_to_end_output_scale)}, "
        f"top-1 agreement {100 * t.end_to_end_top1_agreement:.1f}%"
    )
    _print_learned(console, report)


def _print_learned(console: Console, report: CompressionReport) -> None:
    """The reference's cost, what was removed and learned, the lowering decisions and the gathers kept."""
    ref, t = report.reference, report.totals
    if ref:
        macs, params = t.macs_after / max(ref.macs, 1), t.params_after / max(ref.params, 1)
        console.print(
            f"reference {escape(ref.name)}: params {ref.params:,}, MACs {ref.macs:,}; "
            f"the compressed network does {macs:.2f}× its MACs with {params:.2f}× its weights"
        )
    if report.blocks_removed:
        removed = "; ".join(f"{k}: {v}" for k, v in report.blocks_removed.items())
        console.print(f"blocks removed: {removed}")
    if report.groups:
        console.print(f"DGConv groups (dense before): {', '.join(str(g.learned_groups) for g in report.groups)}")
    if report.lowering and report.options.target is not None:
        console.print(f"latency-aware lowering for {report.options.target.describe()}:")
        for d in report.lowering:
            times = ", ".join(f"{k} {v:.3f}" for k, v in sorted(d.times_ms.items(), key=lambda kv: kv[1]))
            source = "cached" if d.from_cache else "measured"
            console.print(f"  {d.layer} ({d.learned}): [bold]{d.chosen}[/bold]  ({source} ms: {times})")
    for kept in report.gathers_remaining:
        console.print(f"[yellow]channel gather kept:[/yellow] {kept.gather} (no single order serves {kept.forced_by})")
