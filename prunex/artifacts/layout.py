"""The files prunex reads and writes, by name (one place; every package uses these).

A run directory (``prunex train``)::

    RUN/config.json  checkpoint.pt  metrics.jsonl  .prunex.lock
    RUN/compressed/  model.json  model.safetensors  report.json  [failure.json] [pictures]
    RUN/inspect/     summary.json  [pictures]   (then inspect-2/, …: a default output never replaces one)

A benchmark directory (``prunex bench``): ``bench.json``, ``bench.png``, ``learned-<i>-<name>/`` pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
LOCK = ".prunex.lock"
COMPRESSED = "compressed"
INSPECT = "inspect"
MODEL_SPEC = "model.json"
MODEL_WEIGHTS = "model.safetensors"
REPORT = "report.json"
FAILURE = "failure.json"
SUMMARY = "summary.json"
BENCH_DIR = "bench"  # the default output of `prunex bench` (then bench-2, bench-3, …)
BENCH_JSON = "bench.json"
BENCH_PLOT = "bench.png"
PICTURE_NAMES = (
    "connectivity",
    "active_branches",
    "dgconv_groups",
    "gate_dynamics",
    "sparsenet_links",
    "feature_reuse",
)
PICTURE_FORMATS = ("svg", "png", "pdf")
RUN_FILES = (CHECKPOINT, CONFIG, METRICS)
COMPRESSED_FILES = (MODEL_SPEC, MODEL_WEIGHTS, REPORT)


def is_picture(name: str) -> bool:
    stem, _, ext = name.rpartition(".")
    return stem in PICTURE_NAMES and ext in PICTURE_FORMATS


@dataclass(frozen=True)
class RunDirectory:
    """Where a run's files are (the directory of a checkpoint file, or the run directory itself)."""

    path: Path

    @classmethod
    def of(cls, checkpoint_or_dir: Path) -> RunDirectory:
        p = Path(checkpoint_or_dir)
        return cls(p if p.is_dir() else p.parent)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def compressed(self) -> Path:
        return self.path / COMPRESSED

    @property
    def compression_report(self) -> Path:
        return self.compressed / REPORT

    @property
    def inspect(self) -> Path:
        return self.path / INSPECT


def checkpoint_file(checkpoint_or_dir: Path) -> Path:
    """The checkpoint a user names: a run directory's ``checkpoint.pt``, or the file itself."""
    p = Path(checkpoint_or_dir)
    return p / CHECKPOINT if p.is_dir() else p


def is_compressed_dir(path: Path) -> bool:
    return (Path(path) / MODEL_SPEC).is_file()
