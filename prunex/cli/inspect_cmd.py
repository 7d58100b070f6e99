"""``prunex inspect``: what a checkpoint learned, as a text summary and as the papers' pictures."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from prunex.cli.errors import handle_errors


def compression_report(run_dir: Path) -> dict | None:
    path = run_dir / "compressed" / "report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_pictures(console: Console, model, out: Path, report: dict | None, formats: tuple[str, ...]) -> list[Path]:
    """Draw what applies; without matplotlib say so and carry on (the text summary still works)."""
    from prunex.inspection import PlottingUnavailable, draw

    try:
        return draw(model, out, report, formats)
    except PlottingUnavailable as err:
        console.print(f"[yellow]no pictures:[/yellow] {escape(str(err))}")
        return []


def inspect(
    checkpoint: Path = typer.Argument(..., help="A checkpoint from `prunex train` (file or run directory)."),
    out: Path = typer.Option(None, "--out", "-o", help="Where pictures and summary.json go (default RUN_DIR/inspect)."),
    formats: str = typer.Option("svg,png", "--format", help="Picture formats, comma-separated."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw pictures (needs matplotlib)."),
) -> None:
    """Show what was learned: MaskConnect connectivity (grid with arrows, pruned blocks grey) and active branches
    per module, DGConv groups per layer, SparseNet aggregation links; and, when the run was compressed, what was
    removed and what each layer became. Writes summary.json and SVG / PNG pictures."""
    from prunex.inspection import print_summary, summarise
    from prunex.train.checkpoint import model_from_checkpoint

    console = Console()
    with handle_errors(console):
        model, _ = model_from_checkpoint(checkpoint)
        run_dir = checkpoint if checkpoint.is_dir() else checkpoint.parent
        out = out or run_dir / "inspect"
        report = compression_report(run_dir)
        summary = summarise(model, report)
        print_summary(console, summary)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        paths = write_pictures(console, model, out, report, tuple(f for f in formats.split(",") if f)) if plots else []
        console.print(f"wrote {out / 'summary.json'}" + (f" and {len(paths)} pictures in {out}" if paths else ""))
