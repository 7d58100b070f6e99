"""``prunex inspect`` as a function: what a checkpoint learned, as ``summary.json`` and the papers' pictures."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prunex.artifacts import atomic_directory, claim_output
from prunex.artifacts import layout as files
from prunex.artifacts.compression_report import read_report
from prunex.artifacts.errors import InputError
from prunex.inspection import draw_pictures, summarise
from prunex.models.from_checkpoint import model_from_checkpoint


@dataclass
class InspectResult:
    out: Path
    summary: dict[str, Any]
    pictures: list[Path] = field(default_factory=list)
    no_pictures: str | None = None  # why there are none (matplotlib missing), if so


def _ours(name: str) -> bool:
    return name == files.SUMMARY or files.is_picture(name)


def inspect_run(
    checkpoint: str | Path,
    *,
    out: str | Path | None = None,
    formats: tuple[str, ...] = ("svg", "png"),
    plots: bool = True,
    force: bool = False,
) -> InspectResult:
    """Summarise ``checkpoint`` (and its run's compression report, if any) into ``out`` (default: the first free
    RUN/inspect, RUN/inspect-2, …); a given ``out`` holding an earlier ``prunex inspect`` output is replaced only with
    ``force``, and only once everything is written."""
    if plots and (not formats or any(f not in files.PICTURE_FORMATS for f in formats)):
        raise InputError(f"--format takes {', '.join(files.PICTURE_FORMATS)} (comma-separated), got {formats}")
    model, ckpt = model_from_checkpoint(Path(checkpoint))
    run = files.RunDirectory.of(Path(checkpoint))
    out = claim_output(None if out is None else Path(out), run.inspect, _ours, "prunex inspect", force)
    report = read_report(run.compression_report)
    summary = summarise(model, report)
    with atomic_directory(out, replace=True) as tmp:
        (tmp / files.SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        history = ckpt.get("history") or []
        pictures, missing = draw_pictures(model, tmp, report, formats, history) if plots else ([], None)
    return InspectResult(out, summary, [out / p.name for p in pictures], missing)
