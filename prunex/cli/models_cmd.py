"""``prunex models``: the registered models, their papers and sizes; ``prunex models NAME`` one of them in full;
``--papers`` the parameter counts against the papers' tables, one table per paper with its notes under it."""

from __future__ import annotations

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from prunex.cli.errors import handle_errors
from prunex.cli.help import wrap

DEFAULT_RUN = "maskconnect_cifar {20,4,8}, K = 4: 260,154 weights on digits"


def models(
    name: str = typer.Argument(None, help="A registered model: show it in full (arguments, size, reference)."),
    papers: bool = typer.Option(False, "--papers", help="Compare analytic parameter counts with the papers' tables."),
) -> None:
    """List every registered model: its paper, its size as `prunex train --model NAME` builds it on the default
    dataset (digits: 10 classes, 1 channel), and what it is."""
    console = Console(soft_wrap=True)
    with handle_errors():
        if papers:
            print_papers(console)
        elif name:
            print_model(console, name)
        else:
            print_listing(console)


def print_listing(console: Console) -> None:
    from prunex.models.listing import all_listings

    width = console.width
    console.print("The registered models, as `prunex train --model NAME` builds them on digits:\n", markup=False)
    for item in all_listings():
        size = f"{item.complexity.params:,} weights, {item.complexity.macs / 1e6:,.1f} MMACs"
        console.print(f"[bold]{item.name}[/bold]  {size}" + ("  (RGB only)" * item.rgb_only))
        if item.reference_cost is not None:
            ref = item.reference_cost
            line = f"reference {ref.label}: {ref.params:,} weights, {ref.macs / 1e6:,.1f} MMACs"
            console.print("\n".join(wrap(line, width - 1, 4)), markup=False, highlight=False)
        text = wrap(item.summary, width - 1, 4) + wrap(f"Paper: {item.paper}", width - 1, 4)
        console.print("\n".join(text), highlight=False, markup=False)
    footer = (
        f"`prunex train` with no --model trains {DEFAULT_RUN}. Sizes are training-time (dense DGConv, every block); "
        "`prunex compress` reports the deployed ones. `prunex models NAME` shows one in full."
    )
    console.print("\n" + "\n".join(wrap(footer, width - 1, 0)), markup=False, highlight=False)


def print_model(console: Console, name: str) -> None:
    from prunex.artifacts.errors import InputError
    from prunex.models import UnknownModelError
    from prunex.models.listing import listing

    try:
        item = listing(name)
    except UnknownModelError as err:
        raise InputError(str(err)) from None
    cx = item.complexity
    console.print(f"[bold]{item.name}[/bold] ({escape(item.paper)})\n")
    for paragraph in item.details.split("\n\n"):
        console.print("\n".join(wrap(paragraph, console.width - 1, 2)) + "\n", markup=False, highlight=False)
    args = ", ".join(f"{k}={v!r}" for k, v in item.kwargs.items())
    for label, value in [
        ("arguments (on digits)", args),
        ("size", f"{cx.params:,} weights, {cx.gates:,} gates, {cx.macs:,} MACs"),
        ("reference (bench)", _reference_line(item)),
        ("input", "3-channel images only" if item.rgb_only else "any number of channels (in_chans)"),
    ]:
        console.print(f"{label}:", markup=False)
        console.print("\n".join(wrap(value, console.width - 1, 4)), markup=False, highlight=False)


def _reference_line(item) -> str:
    ref = item.reference_cost
    if ref is None:
        return "none"
    return f"{ref.label}: {ref.params:,} weights, {ref.macs:,} MACs (this model: {item.complexity.macs:,})"


def print_papers(console: Console) -> None:
    from prunex.models.paper_relative_rows import RELATIVE_ROWS
    from prunex.models.paper_tables import PAPER_ROWS, compare

    console.print("Parameter counts (and FLOPs where printed): the papers against prunex's counts")
    for paper in dict.fromkeys(row.paper for row in PAPER_ROWS):
        rows = [r for r in PAPER_ROWS if r.paper == paper]
        columns = ["table", "configuration", "paper", "prunex", "verdict"]
        columns += ["GFLOPs paper / prunex"] if any(r.printed_gflops for r in rows) else []
        table = Table(title=paper, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in columns:
            table.add_column(col, overflow="fold", justify="right" if col in ("paper", "prunex") else "left")
        notes: list[str] = []
        for row in rows:
            mark = ""
            if row.note:
                notes += [row.note] if row.note not in notes else []
                mark = f" [{notes.index(row.note) + 1}]"
            count = row.count()
            if count is None:
                table.add_row(row.table, row.label, f"{row.printed}M", "-", f"not comparable{escape(mark)}", "")
                continue
            verdict, rel = compare(row.printed, count)
            colour = "green" if verdict != "differs" else "yellow" if not row.reproduced else "red"
            gflops = row.gflops()
            flops = "" if gflops is None else f"{row.printed_gflops} / {gflops:.2f}"
            shown = f"[{colour}]{verdict} ({rel:+.1%})[/{colour}]{escape(mark)}"
            table.add_row(row.table, row.label, f"{row.printed}M", f"{count:,}", shown, flops)
        console.print(table)
        _print_notes(console, notes)
        if paper in {r.paper for r in RELATIVE_ROWS}:
            _print_relative_rows(console, [r for r in RELATIVE_ROWS if r.paper == paper])


def _print_relative_rows(console: Console, rows) -> None:
    """Rows printed as a multiple of another network's complexity (multiply-adds)."""
    from prunex.models.paper_tables import compare

    title = f"{rows[0].paper}: complexity as a multiple of {rows[0].baseline_label}'s (multiply-adds)"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("table", "configuration", "paper", "prunex", "params", "verdict"):
        table.add_column(col, overflow="fold", justify="right" if col in ("paper", "prunex", "params") else "left")
    notes: list[str] = []
    for row in rows:
        notes += [row.note] if row.note and row.note not in notes else []
        mark = f" [{notes.index(row.note) + 1}]" if row.note else ""
        cx = row.complexity()
        ratio = row.ratio(cx)
        verdict, rel = compare(row.printed, ratio, unit=1.0)
        colour = "green" if verdict != "differs" else "red"
        shown = f"[{colour}]{verdict} ({rel:+.1%})[/{colour}]{escape(mark)}"
        paper_value = f"{row.printed}× {row.baseline_label}"
        measured = f"{ratio:.2f}×, {cx.macs / 1e9:.2f} GMACs"
        table.add_row(row.table, row.label, paper_value, measured, f"{cx.params:,}", shown)
    console.print(table)
    _print_notes(console, notes)


def _print_notes(console: Console, notes: list[str]) -> None:
    for i, note in enumerate(notes, 1):
        lines = wrap(f"[{i}] {note}", console.width - 1, 6, first_indent=2)
        console.print("\n".join(lines), markup=False, highlight=False)
    console.print()
