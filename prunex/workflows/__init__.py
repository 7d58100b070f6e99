"""Every command as a library call: what ``prunex train / compress / inspect / export / bench`` do, for Python.

Each ``prepare_*`` checks every option and output before any work and returns a job whose ``run()`` (``fit()`` for
training) does it; each ``*_run`` / :func:`export` / :func:`bench` does both. The CLI only parses arguments for these
and prints what they return.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prunex.workflows.bench import BenchJob, BenchResult, prepare_bench
from prunex.workflows.compress import CompressJob, CompressResult, compress_run, prepare_compress
from prunex.workflows.export import ExportJob, ExportOutcome, prepare_export
from prunex.workflows.inspect import InspectResult, inspect_run
from prunex.workflows.train import prepare_train, train_run


def export(source: str | Path, **options: Any) -> list[ExportOutcome]:
    """``prunex export SOURCE``: :func:`prepare_export` (same keyword arguments), then every output."""
    return list(prepare_export(source, **options).run())


def bench(sources: list[str | Path], **options: Any) -> BenchResult:
    """``prunex bench SOURCES``: :func:`prepare_bench` (same keyword arguments), then measure."""
    on_row = options.pop("on_row", None)
    return prepare_bench(sources, **options).run(on_row)


__all__ = [
    "BenchJob",
    "BenchResult",
    "CompressJob",
    "CompressResult",
    "ExportJob",
    "ExportOutcome",
    "InspectResult",
    "bench",
    "compress_run",
    "export",
    "inspect_run",
    "prepare_bench",
    "prepare_compress",
    "prepare_export",
    "prepare_train",
    "train_run",
]
