"""`prunex export`: ONNX (validated with ONNX Runtime) and TensorRT engines (validated on the GPU)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from prunex.artifacts import atomic_write_text
from prunex.exporters.sources import LoadedModel
from prunex.exporters.validate import (
    ValidationReport,
    batch_sources,
    onnxruntime_runner,
    validate,
    validation_batches,
)
from prunex.runtime.onnx_program import export_onnx
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


def export_and_validate_onnx(loaded: LoadedModel, path: Path, *, exporter: str, opset: int) -> ValidationReport:
    example = torch.zeros(1, *loaded.input_shape)
    export_onnx(loaded.module, example, path, exporter=exporter, opset=opset)
    real = real_samples(loaded)
    batches = validation_batches(loaded.input_shape, real)
    return validate("onnxruntime", onnxruntime_runner(str(path)), loaded.module, batches, sources=batch_sources(real))


def export_and_validate_tensorrt(loaded: LoadedModel, spec: EngineSpec, *, exporter: str, opset: int):
    """Build the engine (from an FP16 ONNX model where TensorRT 11 needs one) and validate it."""
    trt = require_tensorrt()
    fp16_onnx = needs_fp16_onnx(trt, spec.fp16)
    example = torch.zeros(1, *loaded.input_shape)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(
            loaded.module,
            example,
            onnx_path,
            exporter=exporter,
            opset=opset,
            dtype=torch.float16 if fp16_onnx else torch.float32,
        )
        build_engine(
            EngineSpec(
                onnx_path,
                spec.engine_path,
                loaded.input_shape,
                spec.min_batch,
                spec.opt_batch,
                spec.max_batch,
                spec.fp16,
                spec.workspace_bytes,
            ),
            trt,
        )
    runner = EngineRunner(spec.engine_path, trt)
    real = real_samples(loaded)
    batches = [b[: spec.max_batch] for b in validation_batches(loaded.input_shape, real)]
    precision = "fp16" if spec.fp16 else "fp32"
    report = validate("tensorrt", runner.numpy_runner(), loaded.module, batches, precision, batch_sources(real))
    return report, {"tensorrt_version": str(trt.__version__), "strongly_typed_fp16_onnx": fp16_onnx}
