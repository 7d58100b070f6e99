"""The inference backends prunex times: one vocabulary for ``prunex bench`` and for the latency-aware compiler.

:class:`Backend` is the choice a user makes (``--backend`` / ``--target-backend``); :data:`BACKENDS` is the table
of what each needs and how a :class:`~prunex.runtime.cases.Case` is prepared on it: a zero-argument callable
that runs one batch on a fixed input, or :class:`~prunex.runtime.cases.BackendUnavailable` with the reason.
ONNX Runtime and TensorRT run an ONNX export of the case's module, made once per (module, dtype) by an
:class:`ExportCache`.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from prunex.runtime.cases import BackendUnavailable, Case, prepare_compile, prepare_cuda_graphs, prepare_eager
from prunex.runtime.choices import Backend, Exporter, choice_names, parse_choice
from prunex.runtime.compile_mode import CompileMode
from prunex.runtime.precision import Precision, parse_precision


def backend_names() -> list[str]:
    return choice_names(Backend)


def parse_backend(name: Backend | str) -> Backend:
    """The backend ``name`` spells; ValueError listing the choices otherwise."""
    return parse_choice(Backend, name, "backend")


class ExportCache:
    """ONNX exports per (module, dtype), shared by the ONNX Runtime and TensorRT cases of one run; a context
    manager whose temporary directory goes when it closes. ``exporter``: ``dynamo`` (what ``prunex export``
    writes) or ``legacy`` (TorchScript: the same ONNX graph for a single layer, in milliseconds instead of
    seconds, which is what tuning many small candidates needs)."""

    def __init__(self, exporter: Exporter | str = Exporter.DYNAMO) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="prunex-onnx-")
        self.dir = Path(self._tmp.name)
        self.exporter = parse_choice(Exporter, exporter, "exporter")
        self.paths: dict[tuple[int, torch.dtype, Precision], Path] = {}

    def __enter__(self) -> ExportCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._tmp.cleanup()

    def onnx(self, case: Case) -> Path:
        """The case's module as ONNX in its dtype; an INT8 case quantized with its calibration images."""
        from prunex.runtime.onnx_program import export_onnx

        key = (id(case.module), case.dtype, case.precision)
        if case.precision is Precision.INT8 and key not in self.paths:
            from prunex.runtime.onnx_int8 import QuantizationError, quantize_int8

            float_case = Case(case.module, case.input_shape, case.batch, torch.float32, case.device, False)
            path = self.dir / f"model{len(self.paths)}-int8.onnx"
            try:
                self.paths[key] = quantize_int8(self.onnx(float_case), path, case.calibration.cpu().float().numpy())
            except QuantizationError as err:
                raise BackendUnavailable(f"int8 quantization failed: {err}") from err
        if key not in self.paths:
            path = self.dir / f"model{len(self.paths)}.onnx"
            module = copy.deepcopy(case.module).cpu().float()
            with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice, once per layer
                warnings.simplefilter("ignore")
                example = torch.zeros(1, *case.input_shape)
                self.paths[key] = export_onnx(module, example, path, dtype=case.dtype, exporter=self.exporter)
        return self.paths[key]


@dataclass(frozen=True)
class RunOptions:
    """What preparing a case may need besides the case: the compile mode, the largest batch a TensorRT engine
    is built for, and where ONNX exports go."""

    exports: ExportCache
    compile_mode: CompileMode = CompileMode.DEPLOY
    max_batch: int = 1


def onnxruntime_providers(cuda: bool) -> list[str]:
    """The ONNX Runtime execution providers a case runs on (raises BackendUnavailable without CUDA's)."""
    import onnxruntime as ort

    if not cuda:
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise BackendUnavailable(
            f"onnxruntime here has only {', '.join(ort.get_available_providers())} (no CUDAExecutionProvider)"
        )
    return ["CUDAExecutionProvider"]


def prepare_onnxruntime(case: Case, options: RunOptions) -> Callable[[], object]:
    """An ONNX Runtime session of the case's export, as many intra-op threads as torch uses."""
    import onnxruntime as ort

    providers = onnxruntime_providers(case.cuda)
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(options.exports.onnx(case)), session_options, providers=providers)
    feed = {session.get_inputs()[0].name: case.input().cpu().contiguous().numpy()}
    return lambda: session.run(None, feed)


def prepare_tensorrt(case: Case, options: RunOptions) -> Callable[[], object]:
    """A TensorRT engine of the case's export (built once, for batches 1 … ``max_batch``)."""
    from prunex.runtime.tensorrt_engine import (
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
    precision = case.precision
    onnx_dtype = torch.float16 if needs_fp16_onnx(trt, precision) else case.dtype
    onnx_path = options.exports.onnx(
        Case(case.module, case.input_shape, case.batch, onnx_dtype, torch.device("cpu"), False, case.calibration)
    )
    engine = onnx_path.with_name(f"{onnx_path.stem}-{precision.value}.engine")
    if not engine.exists():
        batch = max(options.max_batch, case.batch)
        build_engine(EngineSpec(onnx_path, engine, case.input_shape, 1, batch, batch, precision), trt)
    runner, x = EngineRunner(engine, trt), case.input()
    return lambda: runner(x)


def _runtime_version(module: str) -> Callable[[], str]:
    def version() -> str:
        try:
            return f"{module} {__import__(module).__version__}"
        except ImportError:
            return f"{module} not installed"

    return version


@dataclass(frozen=True)
class BackendSpec:
    """One row of :data:`BACKENDS`."""

    needs_cuda: bool
    prepare: Callable[[Case, RunOptions], Callable[[], object]]
    runtime: Callable[[], str]  # the runtime and its version: part of a tuning cache key


BACKENDS: dict[Backend, BackendSpec] = {
    Backend.EAGER: BackendSpec(False, lambda case, _: prepare_eager(case), _runtime_version("torch")),
    Backend.CUDA_GRAPHS: BackendSpec(True, lambda case, _: prepare_cuda_graphs(case), _runtime_version("torch")),
    Backend.COMPILE: BackendSpec(
        False, lambda case, o: prepare_compile(case, o.compile_mode), _runtime_version("torch")
    ),
    Backend.ONNXRUNTIME: BackendSpec(False, prepare_onnxruntime, _runtime_version("onnxruntime")),
    Backend.TENSORRT: BackendSpec(True, prepare_tensorrt, _runtime_version("tensorrt")),
}


def prepare(backend: Backend, case: Case, options: RunOptions) -> Callable[[], object]:
    return BACKENDS[backend].prepare(case, options)


QUANTIZING = (Backend.ONNXRUNTIME, Backend.TENSORRT)  # the backends that run INT8 Q/DQ models


def unavailable_reason(backend: Backend | str, device: torch.device, precision: Precision | str) -> str | None:
    """Why ``backend`` cannot run on ``device`` in ``precision``, before trying (None if it may)."""
    try:
        backend, precision = parse_backend(backend), parse_precision(precision)
    except ValueError as err:
        return str(err)
    if device.type == "cpu" and precision is Precision.FP16:
        return "fp16 is not benchmarked on the CPU"
    if precision is Precision.INT8 and backend not in QUANTIZING:
        return f"int8 runs on {' and '.join(b.value for b in QUANTIZING)} (quantized ONNX), not {backend.value}"
    if BACKENDS[backend].needs_cuda and device.type != "cuda":
        return f"{backend.value} needs --device cuda"
    return None
