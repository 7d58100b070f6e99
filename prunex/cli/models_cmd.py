"""``prunex models``: the registered models, their papers and sizes (and ``--papers``: counts vs the papers)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table


def models(
    papers: bool = typer.Option(False, "--papers", help="Compare analytic parameter counts with the papers' tables."),
) -> None:
    """List every registered model with its paper and its size at the default configuration."""
    from prunex.models import analytic_complexity, list_models, model_entry

    console = Console(soft_wrap=True)  # lines are never hard-wrapped (paths stay whole); tables fit the width
    if papers:
        console.print(papers_table())
        return
    table = Table(title="prunex models (default configuration)")
    for col in ("model", "paper", "weights", "gates", "GMACs", "what it is"):
        table.add_column(col, justify="right" if col in {"weights", "gates", "GMACs"} else "left")
    for name in list_models():
        entry = model_entry(name)
        cx = analytic_complexity(name)
        table.add_row(name, entry.paper, f"{cx.params:,}", f"{cx.gates:,}", f"{cx.macs / 1e9:.2f}", entry.summary)
    console.print(table)
    console.print(
        "Weights and GMACs are training-time (dense DGConv, all blocks); `prunex compress` reports the deployed ones."
    )


def papers_table() -> Table:
    from prunex.models.paper_tables import PAPER_ROWS, compare

    table = Table(title="parameter counts (and FLOPs where printed): papers vs prunex (analytic, training-time)")
    for col in ("paper", "table", "configuration", "paper says", "prunex", "verdict", "GFLOPs paper / prunex", "note"):
        table.add_column(col)
    for row in PAPER_ROWS:
        count = row.count()
        if count is None:
            table.add_row(row.paper, row.table, row.label, f"{row.printed}M", "-", "not comparable", "", row.note)
            continue
        verdict, rel = compare(row.printed, count)
        colour = "green" if verdict != "differs" else "yellow" if not row.reproduced else "red"
        gflops = row.gflops()
        flops = "" if gflops is None else f"{row.printed_gflops} / {gflops:.2f}"
        table.add_row(
            row.paper,
            row.table,
            row.label,
            f"{row.printed}M",
            f"{count:,}",
            f"[{colour}]{verdict} ({rel:+.1%})[/{colour}]",
            flops,
            row.note,
        )
    return table
