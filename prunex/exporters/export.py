"""`prunex export`: ONNX (validated with ONNX Runtime) and TensorRT engines (validated on the GPU)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from prunex.artifacts import atomic_write_text
from prunex.exporters.int8 import Int8Export, Int8Model
from prunex.exporters.int8_validation import validate_int8
from prunex.exporters.sources import LoadedModel
from prunex.exporters.validate import (
    ValidationReport,
    batch_sources,
    onnxruntime_runner,
    validate,
    validation_batches,
)
from prunex.runtime.backends import Backend
from prunex.runtime.choices import Exporter
from prunex.runtime.onnx_program import export_onnx
from prunex.runtime.precision import Precision
from prunex.runtime.tensorrt_engine import EngineRunner, EngineSpec, build_engine, needs_fp16_onnx, require_tensorrt


def real_samples(loaded: LoadedModel, n: int = 16) -> torch.Tensor | None:
    """Test images of the model's dataset when they can be read here."""
    from prunex.data import readable_test_images

    return readable_test_images(loaded.dataset, n)[0]


def written_opset(path: Path) -> int:
    """The default-domain opset the exporter actually wrote (it can fall back from the one asked for)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def write_report(path: Path, report: ValidationReport, extra: dict[str, Any]) -> Path:
    return atomic_write_text(path, json.dumps({**extra, **report.as_dict()}, indent=2) + "\n")


def export_and_validate_onnx(
    loaded: LoadedModel, path: Path, *, exporter: Exporter | str, opset: int
) -> ValidationReport:
    example = torch.zeros(1, *loaded.input_shape)
    export_onnx(loaded.module, example, path, exporter=exporter, opset=opset)
    real = real_samples(loaded)
    batches = validation_batches(loaded.input_shape, real)
    return validate(
        Backend.ONNXRUNTIME, onnxruntime_runner(str(path)), loaded.module, batches, sources=batch_sources(real)
    )


def export_and_validate_tensorrt(
    loaded: LoadedModel,
    spec: EngineSpec,
    *,
    exporter: Exporter | str,
    opset: int,
    int8: Int8Export | None = None,
    quantized: Int8Model | None = None,
):
    """Build the engine (from an FP16 ONNX model where TensorRT 11 needs one, from the ``quantized`` Q/DQ model for
    INT8) and validate it: against PyTorch to a tolerance, or for INT8 (``int8``: its settings and data) as a
    classifier on held-out images."""
    trt = require_tensorrt()
    fp16_onnx = needs_fp16_onnx(trt, spec.precision)
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        if spec.precision is Precision.INT8:
            onnx_path, extra = quantized.path, {"int8": quantized.as_dict()}
        else:
            dtype = torch.float16 if fp16_onnx else torch.float32
            export_onnx(
                loaded.module,
                torch.zeros(1, *loaded.input_shape),
                onnx_path,
                exporter=exporter,
                opset=opset,
                dtype=dtype,
            )
        build_engine(replace(spec, onnx_path=onnx_path), trt)
    runner = EngineRunner(spec.engine_path, trt)
    extra.update(tensorrt_version=str(trt.__version__), strongly_typed_fp16_onnx=fp16_onnx)
    if spec.precision is Precision.INT8:
        data, settings = int8.data, int8.settings
        run = runner.numpy_runner()
        batch = min(spec.max_batch, 64)
        report = validate_int8(
            Backend.TENSORRT, run, loaded.module, data.images, data.labels, settings.thresholds, data.source, batch
        )
        return report, extra
    real = real_samples(loaded)
    batches = [b[: spec.max_batch] for b in validation_batches(loaded.input_shape, real)]
    precision = spec.precision.value
    report = validate(Backend.TENSORRT, runner.numpy_runner(), loaded.module, batches, precision, batch_sources(real))
    return report, extra
