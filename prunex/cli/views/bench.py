"""How ``prunex bench`` shows its rows as they are measured, and its tables at the end."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from prunex.artifacts.bench_report import BenchReport, BenchRow


def print_bench_row(console: Console, row: BenchRow) -> None:
    if row.ok:
        console.print(f"  {escape(row.describe())}: median {row.median_ms:.3f} ms (set-up {row.setup_s:.1f} s)")


def print_bench(console: Console, result: BenchReport, warnings: list[str]) -> None:
    from prunex.benchmarking.report import peak_lines, results_tables, unstable_rows

    for table in results_tables(result, console.width):
        console.print(table)
    for line in peak_lines(result):
        console.print(f"[dim]{escape(line)}[/dim]")
    for line in unstable_rows(result):
        console.print(f"[yellow]warning: coefficient of variation above 2.5 %: {escape(line)}[/yellow]")
    for name, reason in sorted({(r.backend, r.reason) for r in result.results if not r.ok}):
        console.print(f"[dim]{name} not measured: {escape(reason)}[/dim]")
    for warning in warnings:
        console.print(f"[yellow]{escape(warning)}[/yellow]")
