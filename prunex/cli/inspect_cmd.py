"""``prunex inspect``: what a checkpoint learned, as a text summary and as the papers' pictures."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from prunex.cli.errors import handle_errors
from prunex.cli.parsing import comma_list


def inspect(
    checkpoint: Path = typer.Argument(..., help="A checkpoint from `prunex train` (file or run directory)."),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Where pictures and summary.json go (default: the first free RUN_DIR/inspect, inspect-2 and on).",
    ),
    formats: str = typer.Option("svg,png", "--format", help="Picture formats, comma-separated."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw pictures (needs matplotlib)."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier inspect output in --out."),
) -> None:
    """Show what was learned: MaskConnect connectivity (grid with arrows, pruned blocks grey) and active branches
    per module, DGConv groups per layer, SparseNet aggregation links; and, when the run was compressed, what was
    removed and what each layer became. Writes summary.json and SVG / PNG pictures."""
    from prunex.cli.views.inspect import print_summary
    from prunex.workflows.inspect import inspect_run

    console = Console(soft_wrap=True)  # lines are never hard-wrapped (paths stay whole); tables fit the width
    with handle_errors():
        result = inspect_run(checkpoint, out=out, formats=tuple(comma_list(formats)), plots=plots, force=force)
        print_summary(console, result.summary)
        if result.no_pictures:
            console.print(f"[yellow]no pictures:[/yellow] {escape(result.no_pictures)}")
        written = f" and {len(result.pictures)} pictures in {result.out}" if result.pictures else ""
        console.print(f"wrote {result.out / 'summary.json'}{written}")
