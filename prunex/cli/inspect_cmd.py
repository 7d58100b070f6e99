"""``prunex inspect``: what a checkpoint learned, as a text summary and as the papers' pictures."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from prunex.artifacts import InputError, atomic_directory, check_writable_parent
from prunex.cli.errors import handle_errors
from prunex.inspection.summary import PICTURE_NAMES

PICTURE_FORMATS = ("svg", "png", "pdf")


def compression_report(run_dir: Path) -> dict | None:
    """The run's compression report, if it has a readable one."""
    path = run_dir / "compressed" / "report.json"
    try:
        report = json.loads(path.read_bytes().decode("utf-8")) if path.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return report if isinstance(report, dict) else None


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
        chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
        unknown = [f for f in chosen if f not in PICTURE_FORMATS]
        if plots and (unknown or not chosen):
            raise InputError(f"--format takes {', '.join(PICTURE_FORMATS)} (comma-separated), got {formats!r}")
        check_output_dir(out)
        report = compression_report(run_dir)
        summary = summarise(model, report)
        print_summary(console, summary)
        with atomic_directory(out, replace=True) as tmp:
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            paths = write_pictures(console, model, tmp, report, chosen) if plots else []
        console.print(f"wrote {out / 'summary.json'}" + (f" and {len(paths)} pictures in {out}" if paths else ""))


def check_output_dir(out: Path) -> None:
    """``out`` may be replaced if it holds nothing but an earlier ``prunex inspect``'s files."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a directory")
    if out.exists():
        ours = {"summary.json"} | {f"{p}.{ext}" for p in PICTURE_NAMES for ext in PICTURE_FORMATS}
        others = sorted(f.name for f in out.iterdir() if f.name not in ours)
        if others:
            raise InputError(
                f"{out} holds files prunex inspect did not write ({', '.join(others[:5])}); choose another --out"
            )
    check_writable_parent(out)
