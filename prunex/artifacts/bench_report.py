"""``bench.json``: what ``prunex bench`` measured, typed (:class:`BenchReport`), and read back.

Every reader goes through :meth:`BenchReport.from_json`; nothing else reads the file by key. A row that could not
be measured holds its case, ``status`` and ``reason``; a measured one its latency statistics, FLOPs and share of the
peak. ``speedups`` (gated / compressed), ``vs_reference`` (reference / model) and ``vs_fp32`` (fp32 / lower
precision) compare medians of rows measured in the same cell.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from prunex.artifacts.records import from_fields, read_record

CaseKey = tuple[str, str, str, str, int]  # (group, kind, backend, dtype, batch)


class RowStatus(StrEnum):
    OK = "ok"
    UNAVAILABLE = "unavailable"


@dataclass(kw_only=True)
class BenchRow:
    """One (model, backend, dtype, batch) cell: measured, or why not."""

    model: str
    kind: str  # gated, reference, or the compressed directory's name
    group: str  # the run it belongs to: speed-ups compare rows of one group
    backend: str
    dtype: str
    batch: int
    status: RowStatus = RowStatus.UNAVAILABLE
    reason: str | None = None  # why it was not measured
    setup_s: float | None = None  # compilation, export or engine build
    iterations: int | None = None
    min_ms: float | None = None
    mean_ms: float | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    std_ms: float | None = None
    cov: float | None = None
    throughput: float | None = None  # images per second at the median
    cov_warning: bool | None = None
    flops: int | None = None  # per image
    tflops: float | None = None  # achieved: 2 × MACs × batch / median
    peak_tflops: float | None = None
    peak_share: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is RowStatus.OK

    @property
    def case(self) -> CaseKey:
        return (self.group, self.kind, self.backend, self.dtype, self.batch)

    def describe(self) -> str:
        return f"{self.model} [{self.kind}] {self.backend} {self.dtype} batch {self.batch}"

    def to_json(self) -> dict[str, Any]:
        """The fields that apply to this row (an unmeasured one has no statistics)."""
        return {k: v for k, v in asdict(self).items() if v is not None} | {"status": self.status.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchRow:
        row = from_fields(cls, data)
        row.status = RowStatus(row.status)
        return row


@dataclass(frozen=True)
class PeakRecord:
    tflops: float
    source: str  # where the figure comes from, in words
    measured: bool = False  # measured here (a lower bound) rather than from a data sheet


@dataclass(frozen=True)
class Speedup:
    """gated median / compressed median in one cell."""

    group: str
    kind: str
    backend: str
    dtype: str
    batch: int
    gated_median_ms: float
    compressed_median_ms: float
    speedup: float


@dataclass(frozen=True)
class VersusReference:
    """reference median / model median in one cell (above 1: faster than what users would deploy instead)."""

    group: str
    kind: str
    backend: str
    dtype: str
    batch: int
    reference: str
    reference_median_ms: float
    median_ms: float
    speedup: float


@dataclass(frozen=True)
class VersusFp32:
    """fp32 median / median of the same model in a lower precision (above 1: the lower precision is faster)."""

    group: str
    kind: str
    backend: str
    dtype: str
    batch: int
    fp32_median_ms: float
    median_ms: float
    speedup: float


def speedup_by_case(entries: list[Speedup] | list[VersusReference] | list[VersusFp32]) -> dict[CaseKey, float]:
    return {(e.group, e.kind, e.backend, e.dtype, e.batch): e.speedup for e in entries}


@dataclass(kw_only=True)
class BenchReport:
    """What ``bench.json`` holds."""

    environment: dict[str, Any]  # device, library versions, threads (prunex.runtime.environment)
    settings: dict[str, Any]  # the grid and timing options it ran with
    peaks: dict[str, PeakRecord] = field(default_factory=dict)  # per dtype name
    results: list[BenchRow]
    speedups: list[Speedup] = field(default_factory=list)
    vs_reference: list[VersusReference] = field(default_factory=list)
    vs_fp32: list[VersusFp32] = field(default_factory=list)

    @property
    def measured(self) -> list[BenchRow]:
        return [r for r in self.results if r.ok]

    @property
    def device_name(self) -> str:
        return self.environment.get("gpu") or self.environment["cpu"]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["results"] = [r.to_json() for r in self.results]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchReport:
        return cls(
            environment=dict(data["environment"]),
            settings=dict(data.get("settings", {})),
            peaks={name: from_fields(PeakRecord, p) for name, p in data.get("peaks", {}).items()},
            results=[BenchRow.from_json(r) for r in data["results"]],
            speedups=[from_fields(Speedup, s) for s in data.get("speedups", [])],
            vs_reference=[from_fields(VersusReference, s) for s in data.get("vs_reference", [])],
            vs_fp32=[from_fields(VersusFp32, s) for s in data.get("vs_fp32", [])],
        )

    def write(self, path: Path) -> Path:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return Path(path)


def read_bench(path: Path) -> BenchReport | None:
    """The benchmark at ``path``, or None if there is none or it cannot be read."""
    return read_record(path, BenchReport.from_json)
