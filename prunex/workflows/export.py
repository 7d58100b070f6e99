"""``prunex export`` as a function: ONNX and TensorRT engines, each validated against PyTorch before it replaces
anything.

    job = prepare_export("runs/r/compressed", onnx="model.onnx")   # options, outputs and TensorRT checked
    for outcome in job.run(): print(outcome.report.message)         # exported to a temporary sibling, validated
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prunex.artifacts import check_writable_parent
from prunex.artifacts.errors import InputError
from prunex.artifacts.export_outputs import ExportOutput, check_outputs, sha256_of
from prunex.exporters.export import (
    export_and_validate_onnx,
    export_and_validate_tensorrt,
    write_report,
    written_opset,
)
from prunex.exporters.sources import LoadedModel, load_model, source_files
from prunex.exporters.validate import ValidationReport
from prunex.runtime.onnx_program import DEFAULT_OPSET, EXPORTERS, newest_opset
from prunex.runtime.tensorrt_engine import EngineSpec, require_tensorrt


@dataclass
class ExportOutcome:
    """One output: its validation, where it went (FINAL, or FINAL.diverged), and its report."""

    report: ValidationReport
    path: Path
    report_path: Path


def publish(final: Path, make: Callable[[Path], tuple[ValidationReport, dict]], key: str) -> ExportOutcome:
    """``make(tmp)`` exports to a temporary sibling and validates; the output goes to ``final`` if it passed, else to
    FINAL.diverged, so an earlier ``final`` is replaced only by a validated model."""
    output = ExportOutput(final)
    tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp{final.suffix}")
    try:
        report, extra = make(tmp)
        path = final if report.passed else output.diverged
        checksum = sha256_of(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fields = {key: str(path), "sha256": checksum, **extra}
    return ExportOutcome(report, path, write_report(output.report_of(path), report, fields))


@dataclass
class ExportJob:
    source: Path
    model: LoadedModel
    onnx: Path | None
    trt: Path | None
    exporter: str
    opset: int
    engine: tuple[int, int, int, bool, int]  # min / opt / max batch, fp16, workspace bytes

    def run(self) -> Iterator[ExportOutcome]:
        if self.onnx is not None:

            def to_onnx(tmp: Path):
                report = export_and_validate_onnx(self.model, tmp, exporter=self.exporter, opset=self.opset)
                return report, {"model": str(self.source), "exporter": self.exporter, "opset": written_opset(tmp)}

            yield publish(self.onnx, to_onnx, "onnx")
        if self.trt is not None:

            def to_engine(tmp: Path):
                spec = EngineSpec(Path(), tmp, self.model.input_shape, *self.engine)
                report, extra = export_and_validate_tensorrt(self.model, spec, exporter=self.exporter, opset=self.opset)
                return report, {"model": str(self.source), **extra}

            yield publish(self.trt, to_engine, "engine")


def prepare_export(
    source: str | Path,
    *,
    onnx: str | Path | None = None,
    trt: str | Path | None = None,
    exporter: str = "dynamo",
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    min_batch: int = 1,
    opt_batch: int = 32,
    max_batch: int = 128,
    workspace_gb: float = 4.0,
    force: bool = False,
) -> ExportJob:
    """Check every option, both outputs and TensorRT before any work, then load the model (a compressed directory,
    or a checkpoint / run directory: the frozen gated network).

    An output never replaces a file an earlier export did not write, nor one of the export's inputs; it replaces an
    earlier export (model, report, or their ``.diverged`` twins) only with ``force``."""
    if onnx is None and trt is None:
        raise InputError("give --onnx PATH, --trt PATH or both")
    if exporter not in EXPORTERS:
        raise InputError(f"--exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    lowest = DEFAULT_OPSET if exporter == "dynamo" else 9
    if not lowest <= opset <= newest_opset():
        raise InputError(f"--opset {opset}: the {exporter} exporter writes opsets {lowest} to {newest_opset()} here")
    if not 1 <= min_batch <= opt_batch <= max_batch or workspace_gb <= 0:
        raise InputError(
            f"TensorRT needs 1 <= --min-batch <= --opt-batch <= --max-batch and a positive workspace, got "
            f"{min_batch}, {opt_batch}, {max_batch}, {workspace_gb} GB"
        )
    outputs = [Path(p) if p is not None else None for p in (onnx, trt)]
    source = Path(source)
    named = {option: path for option, path in zip(("--onnx", "--trt"), outputs, strict=True) if path is not None}
    check_outputs(named, force=force, inputs=source_files(source))
    for path in named.values():
        check_writable_parent(path)
    if trt is not None:
        require_tensorrt()
    engine = (min_batch, opt_batch, max_batch, fp16, int(workspace_gb * (1 << 30)))
    return ExportJob(source, load_model(source), *outputs, exporter, opset, engine)
