"""Inference backends to time: torch eager, torch + CUDA graphs, torch.compile, ONNX Runtime, TensorRT.

Each ``prepare_*`` returns a zero-argument callable that runs one batch on a fixed input, or raises
:class:`BackendUnavailable` with the reason (shown in the report instead of a number).
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from prunex.runtime.cases import BackendUnavailable, Case

BACKENDS = ("eager", "cuda-graphs", "compile", "onnxruntime", "tensorrt")


class ExportCache:
    """ONNX exports per (module, dtype), shared by the ONNX Runtime and TensorRT backends of one run; a context
    manager whose temporary directory goes when it closes."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="prunex-bench-")
        self.dir = Path(self._tmp.name)
        self.paths: dict[tuple[int, torch.dtype], Path] = {}

    def __enter__(self) -> ExportCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._tmp.cleanup()

    def onnx(self, case: Case) -> Path:
        from prunex.exporters.onnx_export import export_onnx

        key = (id(case.module), case.dtype)
        if key not in self.paths:
            path = self.dir / f"model{len(self.paths)}.onnx"
            module = copy.deepcopy(case.module).cpu().float()
            self.paths[key] = export_onnx(module, torch.zeros(1, *case.input_shape), path, dtype=case.dtype)
        return self.paths[key]


def prepare_onnxruntime(case: Case, exports: ExportCache) -> Callable[[], object]:
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if case.cuda:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable(
                f"onnxruntime here has only {', '.join(ort.get_available_providers())} (no CUDAExecutionProvider)"
            )
        providers = ["CUDAExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(exports.onnx(case)), options, providers=providers)
    feed = {session.get_inputs()[0].name: case.input().cpu().contiguous().numpy()}
    return lambda: session.run(None, feed)


def prepare_tensorrt(case: Case, exports: ExportCache, max_batch: int) -> Callable[[], object]:
    from prunex.exporters.tensorrt_engine import (
        EngineRunner,
        EngineSpec,
        TensorRTUnavailable,
        build_engine,
        needs_fp16_onnx,
        require_tensorrt,
    )

    if not case.cuda:
        raise BackendUnavailable("TensorRT needs --device cuda")
    try:
        trt = require_tensorrt()
    except TensorRTUnavailable as err:
        raise BackendUnavailable(str(err)) from None
    fp16 = case.dtype == torch.float16
    onnx_case = Case(
        case.module,
        case.input_shape,
        case.batch,
        torch.float16 if needs_fp16_onnx(trt, fp16) else torch.float32,
        torch.device("cpu"),
        False,
    )
    onnx_path = exports.onnx(onnx_case)
    engine = onnx_path.with_name(f"{onnx_path.stem}-{'fp16' if fp16 else 'fp32'}.engine")
    if not engine.exists():
        build_engine(EngineSpec(onnx_path, engine, case.input_shape, 1, max_batch, max_batch, fp16), trt)
    runner, x = EngineRunner(engine, trt), case.input()
    return lambda: runner(x)


def unavailable_reason(backend: str, device: torch.device, dtype: torch.dtype) -> str | None:
    """Why ``backend`` cannot run before trying (None if it may)."""
    if backend not in BACKENDS:
        return f"unknown backend (choose from {', '.join(BACKENDS)})"
    if device.type == "cpu" and dtype == torch.float16:
        return "fp16 is not benchmarked on the CPU"
    if backend in ("cuda-graphs", "tensorrt") and device.type != "cuda":
        return f"{backend} needs --device cuda"
    return None
