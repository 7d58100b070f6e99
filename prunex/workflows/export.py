"""``prunex export`` as a function: ONNX and TensorRT engines, each validated against PyTorch before it replaces
anything.

    job = prepare_export("runs/r/compressed", onnx="model.onnx")   # options, outputs and TensorRT checked
    for outcome in job.run(): print(outcome.report.message)         # exported to a temporary sibling, validated
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from prunex.artifacts import check_writable_parent
from prunex.artifacts.errors import InputError
from prunex.artifacts.export_outputs import ExportOutput, check_outputs, sha256_of
from prunex.artifacts.outputs import atomic_file
from prunex.exporters.export import (
    export_and_validate_onnx,
    export_and_validate_tensorrt,
    write_report,
    written_opset,
)
from prunex.exporters.int8 import Int8Export, Int8Model, Int8Settings, int8_data, quantized_onnx, validate_onnx_int8
from prunex.exporters.int8_validation import Int8Thresholds, Int8Validation
from prunex.exporters.sources import LoadedModel, load_model, source_files
from prunex.exporters.validate import ValidationReport
from prunex.runtime.choices import Exporter, TuneMode, parse_option
from prunex.runtime.int8_observer import Observer
from prunex.runtime.onnx_int8 import MIN_OPSET
from prunex.runtime.onnx_program import DEFAULT_OPSET, newest_opset
from prunex.runtime.precision import Precision, parse_precision
from prunex.runtime.tensorrt_engine import EngineSpec, require_tensorrt


@dataclass
class ExportOutcome:
    """One output: its validation, where it went (FINAL, or FINAL.diverged), and its report."""

    report: ValidationReport | Int8Validation
    path: Path
    report_path: Path
    details: dict = field(default_factory=dict)  # what the report holds besides the validation (exporter, int8, …)
    int8: Int8Model | None = None  # how an INT8 model was made (quantized and kept-float layers, tuning)


def publish(
    final: Path, make: Callable[[Path], tuple[ValidationReport | Int8Validation, dict]], key: str
) -> ExportOutcome:
    """``make(tmp)`` exports to a temporary sibling and validates; the output goes to ``final`` if it passed, else to
    FINAL.diverged, so an earlier ``final`` is replaced only by a validated model."""
    output = ExportOutput(final)
    with atomic_file(final) as pending:
        report, extra = make(pending.path)
        pending.destination = final if report.passed else output.diverged
        checksum = sha256_of(pending.path)
    path = pending.destination
    fields = {key: str(path), "sha256": checksum, **extra}
    return ExportOutcome(report, path, write_report(output.report_of(path), report, fields), fields)


@dataclass
class ExportJob:
    source: Path
    model: LoadedModel
    onnx: Path | None
    trt: Path | None
    exporter: Exporter
    opset: int
    engine: tuple[int, int, int, int]  # TensorRT: min / opt / max batch, workspace bytes
    precision: Precision = Precision.FP32
    int8: Int8Export | None = None  # settings and the run's images, for --precision int8

    def run(self) -> Iterator[ExportOutcome]:
        with tempfile.TemporaryDirectory(prefix="prunex-export-") as tmp:
            quantized = None
            if self.int8 is not None:  # once, for every output: calibration and tuning are the costly part
                settings, data = self.int8.settings, self.int8.data
                made = Path(tmp) / "int8.onnx"
                quantized = quantized_onnx(self.model, made, data, settings, exporter=self.exporter, opset=self.opset)
            if self.onnx is not None:
                yield replace(publish(self.onnx, lambda out: self._onnx(out, quantized), "onnx"), int8=quantized)
            if self.trt is not None:
                yield replace(publish(self.trt, lambda out: self._engine(out, quantized), "engine"), int8=quantized)

    def _onnx(self, out: Path, quantized: Int8Model | None):
        common = {"model": str(self.source), "exporter": self.exporter.value}
        if quantized is not None:
            shutil.copyfile(quantized.path, out)
            report = validate_onnx_int8(self.model, out, self.int8.data, self.int8.settings)
            return report, {**common, "opset": written_opset(out), "int8": quantized.as_dict()}
        report = export_and_validate_onnx(self.model, out, exporter=self.exporter, opset=self.opset)
        return report, {**common, "opset": written_opset(out)}

    def _engine(self, out: Path, quantized: Int8Model | None):
        lo, opt, hi, workspace = self.engine
        spec = EngineSpec(Path(), out, self.model.input_shape, lo, opt, hi, self.precision, workspace)
        report, extra = export_and_validate_tensorrt(
            self.model, spec, exporter=self.exporter, opset=self.opset, int8=self.int8, quantized=quantized
        )
        return report, {"model": str(self.source), **extra}


def prepare_export(
    source: str | Path,
    *,
    onnx: str | Path | None = None,
    trt: str | Path | None = None,
    exporter: Exporter | str = Exporter.DYNAMO,
    opset: int = DEFAULT_OPSET,
    precision: Precision | str = Precision.FP32,
    fp16: bool = False,
    min_batch: int = 1,
    opt_batch: int = 32,
    max_batch: int = 128,
    workspace_gb: float = 4.0,
    force: bool = False,
    calibration: int = 512,
    validation: int = 1000,
    observer: Observer | str = Observer.MINMAX,
    min_agreement: float = 0.99,
    max_accuracy_drop: float = 0.5,
    tune: TuneMode | str = TuneMode.OFF,
    target_batch: int = 32,
) -> ExportJob:
    """Check every option, both outputs, TensorRT and (for INT8) the run's data before any work, then load the
    model (a compressed directory, or a checkpoint / run directory: the frozen gated network).

    ``precision``: fp32; fp16 (TensorRT engines; the ONNX model stays fp32; ``fp16=True`` is the same); int8 (both
    outputs quantized: ``calibration`` training images, judged on up to ``validation`` test images by
    ``min_agreement`` and ``max_accuracy_drop`` points; ``tune="full"`` keeps in floating point the layers whose INT8
    form is not faster on ONNX Runtime at ``target_batch``).

    An output never replaces a file an earlier export did not write, nor one of the export's inputs; it replaces an
    earlier export (model, report, or their ``.diverged`` twins) only with ``force``."""
    if onnx is None and trt is None:
        raise InputError("give --onnx PATH, --trt PATH or both")
    precision = _precision(precision, fp16)
    exporter = parse_option(Exporter, exporter, "--exporter")
    _check_options(exporter, opset, precision, (min_batch, opt_batch, max_batch, workspace_gb))
    settings = _int8_settings(
        precision, calibration, validation, observer, (min_agreement, max_accuracy_drop), tune, target_batch
    )
    outputs = [Path(p) if p is not None else None for p in (onnx, trt)]
    source = Path(source)
    named = {option: path for option, path in zip(("--onnx", "--trt"), outputs, strict=True) if path is not None}
    check_outputs(named, force=force, inputs=source_files(source))
    for path in named.values():
        check_writable_parent(path)
    if trt is not None:
        require_tensorrt()
    model = load_model(source)
    int8 = Int8Export(settings, int8_data(model, settings)) if settings is not None else None
    engine = (min_batch, opt_batch, max_batch, int(workspace_gb * (1 << 30)))
    return ExportJob(source, model, *outputs, exporter, opset, engine, precision, int8)


def _precision(precision: Precision | str, fp16: bool) -> Precision:
    try:
        chosen = parse_precision(precision)
    except ValueError as err:
        raise InputError(f"--precision: {err}") from None
    if fp16 and chosen is not Precision.FP32 and chosen is not Precision.FP16:
        raise InputError(f"--fp16 and --precision {chosen.value} ask for two precisions")
    return Precision.FP16 if fp16 else chosen


def _check_options(exporter: Exporter, opset: int, precision: Precision, engine: tuple[int, int, int, float]) -> None:
    lowest = DEFAULT_OPSET if exporter is Exporter.DYNAMO else 9
    if not lowest <= opset <= newest_opset():
        raise InputError(f"--opset {opset}: the {exporter} exporter writes opsets {lowest} to {newest_opset()} here")
    if precision is Precision.INT8 and opset < MIN_OPSET:
        raise InputError(f"--precision int8 writes per-channel Q/DQ, which needs --opset {MIN_OPSET} or newer")
    min_batch, opt_batch, max_batch, workspace_gb = engine
    if not 1 <= min_batch <= opt_batch <= max_batch or workspace_gb <= 0:
        raise InputError(
            f"TensorRT needs 1 <= --min-batch <= --opt-batch <= --max-batch and a positive workspace, got "
            f"{min_batch}, {opt_batch}, {max_batch}, {workspace_gb} GB"
        )


def _int8_settings(precision, calibration, validation, observer, thresholds, tune, target_batch):
    """The INT8 settings (None unless int8), every value checked."""
    if precision is not Precision.INT8:
        return None
    tune = parse_option(TuneMode, tune, "--tune")
    if tune is TuneMode.CACHE:
        raise InputError(f"--tune for an int8 export is off or full, got {tune.value!r}")
    observer = parse_option(Observer, observer, "--observer")
    try:
        limits = Int8Thresholds(*thresholds)
    except ValueError as err:
        raise InputError(f"--min-agreement / --max-accuracy-drop: {err}") from None
    return Int8Settings(calibration, validation, observer, limits, tune is TuneMode.FULL, target_batch)
