"""What one ``prunex export --onnx F`` (or ``--trt F``) may write, and when an existing file there may be replaced.

An export of ``F`` writes ``F`` and its validation report ``F.validation.json`` (``model.onnx`` →
``model.validation.json``), or, when validation fails, ``F.diverged`` and its report (``model.diverged.onnx``,
``model.diverged.validation.json``). The report is the record that prunex wrote the model beside it::

    {"onnx" | "engine": "<path written>", "sha256": "<of that file>", "passed": bool, ...}

A file there is replaced only when it is prunex's own — a report of that shape, or a model that such a report names
with the same checksum (reports before 0.3 carry no checksum: the name is taken) — and only with ``force``.
Anything else (a checkpoint, a compressed model's weights, a user's notes) is never replaced, force or not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunex.artifacts.errors import InputError
from prunex.artifacts.records import read_json_object

REPORT_SUFFIX = ".validation.json"
OUTPUT_KEYS = ("onnx", "engine")  # the report field that names the model, per kind of output


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_report(path: Path) -> dict[str, Any] | None:
    """The validation report at ``path`` if it is one prunex wrote, else None."""
    try:
        if path.stat().st_size > 16 << 20:
            return None
    except OSError:
        return None
    data = read_json_object(path)
    if data is None or not isinstance(data.get("passed"), bool):
        return None
    return data if any(isinstance(data.get(k), str) for k in OUTPUT_KEYS) else None


def _names(report: dict[str, Any], model: Path) -> bool:
    """``report`` records ``model`` as its output, with the same checksum where it has one."""
    named = [Path(report[k]) for k in OUTPUT_KEYS if isinstance(report.get(k), str)]
    if not any(p.name == model.name for p in named):
        return False
    recorded = report.get("sha256")
    return recorded is None or (model.is_file() and sha256_of(model) == recorded)


@dataclass(frozen=True)
class ExportOutput:
    """The files an export to ``final`` may write: (model, its report) for the validated and the diverged case."""

    final: Path

    @property
    def diverged(self) -> Path:
        return self.final.with_name(f"{self.final.stem}.diverged{self.final.suffix}")

    def report_of(self, model: Path) -> Path:
        """``m.onnx`` → ``m.validation.json``, ``m.diverged.onnx`` → ``m.diverged.validation.json``."""
        stem = self.final.stem + (".diverged" if model == self.diverged else "")
        return self.final.with_name(stem + REPORT_SUFFIX)

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(path for model in (self.final, self.diverged) for path in (model, self.report_of(model)))

    def written_by_export(self, path: Path) -> bool:
        """``path`` (one of :attr:`files`) is what an earlier export to ``final`` wrote there."""
        for model in (self.final, self.diverged):
            report = _read_report(self.report_of(model))
            if path == self.report_of(model):
                return report is not None
            if path == model:
                return report is not None and _names(report, model)
        return False

    def check(self, *, force: bool, inputs: Iterable[Path], option: str) -> None:
        """Refuse, before any work, an output that is a directory, is one of ``inputs``, or would replace a file an
        export did not write (or, without ``force``, one it did)."""
        if self.final.is_dir():
            raise InputError(f"{option} {self.final} is a directory; give the path of the file to write")
        resolved_inputs = {p.resolve() for p in inputs}
        for path in self.files:
            if path.resolve() in resolved_inputs:
                raise InputError(f"{option} {self.final} would write {path}, which is one of the export's inputs")
        for path in self.files:
            if not (path.exists() or path.is_symlink()):
                continue
            if path.is_dir() or not self.written_by_export(path):
                raise InputError(
                    f"{option} {self.final}: {path} exists and is not an earlier prunex export; it is never "
                    "replaced — choose another path"
                )
            if not force:
                raise InputError(
                    f"{option} {self.final}: {path} exists (an earlier export); pass --force to replace it"
                )


def check_outputs(outputs: dict[str, Path], *, force: bool, inputs: Iterable[Path]) -> None:
    """Check every output (``{"--onnx": F, "--trt": G}``) and that no two of them write the same file."""
    inputs = list(inputs)
    seen: dict[Path, str] = {}
    for option, final in outputs.items():
        output = ExportOutput(final)
        for path in output.files:
            other = seen.get(path.resolve())
            if other is not None and other != option:
                raise InputError(f"{other} and {option} would both write {path}; give them different names")
            seen[path.resolve()] = option
        output.check(force=force, inputs=inputs, option=option)
