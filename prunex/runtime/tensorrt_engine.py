"""TensorRT engines from ONNX, against the documented TensorRT 10 / 11 Python API.

TensorRT 10: an FP32 ONNX model and ``BuilderFlag.FP16`` for FP16; for INT8 a Q/DQ ONNX model and
``BuilderFlag.INT8`` (explicit quantization in a weakly typed network). TensorRT 11 removed the precision flags and
implicit quantization and always builds strongly typed networks, so FP16 means an FP16 ONNX model (prunex exports
one from PyTorch in half precision) and INT8 a Q/DQ model (symmetric, zero-point 0), each built as is. Both: an
optimization profile for the batch range, a timing cache kept next to the engine, and a workspace limit. Inference
binds torch CUDA tensors by name (``execute_async_v3``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from prunex.artifacts.errors import InputError
from prunex.runtime.precision import Precision

INSTALL_HINT = 'TensorRT is an optional extra: pip install "prunex[trt]" (NVIDIA wheels, needs a CUDA GPU)'


class TensorRTUnavailable(InputError):
    """TensorRT or a CUDA device is missing; the message says how to get them."""


def require_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except ImportError:
        raise TensorRTUnavailable(f"tensorrt is not installed. {INSTALL_HINT}") from None
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("TensorRT needs a CUDA device and none is visible")
    return tensorrt


def major_version(trt: ModuleType) -> int:
    return int(str(trt.__version__).split(".")[0])


def needs_fp16_onnx(trt: ModuleType, precision: Precision) -> bool:
    """TensorRT 11 builds FP16 only from an FP16 model (strong typing); TensorRT 10 from FP32 + a flag."""
    return precision is Precision.FP16 and major_version(trt) >= 11


@dataclass(frozen=True)
class EngineSpec:
    onnx_path: Path
    engine_path: Path
    input_shape: tuple[int, int, int]  # (C, H, W)
    min_batch: int = 1
    opt_batch: int = 32
    max_batch: int = 128
    precision: Precision = Precision.FP32  # INT8: the ONNX model holds Q/DQ nodes
    workspace_bytes: int = 4 << 30

    @property
    def timing_cache_path(self) -> Path:
        return self.engine_path.with_suffix(".timing-cache")


def build_engine(spec: EngineSpec, trt: ModuleType | None = None) -> Path:
    """Parse the ONNX model and write a serialized engine; returns its path."""
    trt = trt or require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = major_version(trt) >= 11  # always on in 11 (the flag is accepted); weak typing in 10
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(spec.onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {spec.onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_bytes)
    if not strongly_typed and spec.precision is not Precision.FP32:  # TensorRT 10 only
        config.set_flag(trt.BuilderFlag.FP16 if spec.precision is Precision.FP16 else trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    c, h, w = spec.input_shape
    profile.set_shape(name, (spec.min_batch, c, h, w), (spec.opt_batch, c, h, w), (spec.max_batch, c, h, w))
    config.add_optimization_profile(profile)
    cache_bytes = spec.timing_cache_path.read_bytes() if spec.timing_cache_path.exists() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {spec.onnx_path}")
    spec.engine_path.parent.mkdir(parents=True, exist_ok=True)
    spec.engine_path.write_bytes(bytes(serialized))
    spec.timing_cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return spec.engine_path


class EngineRunner:
    """Runs a serialized engine on torch CUDA tensors (one input, one output)."""

    def __init__(self, engine_path: Path, trt: ModuleType | None = None) -> None:
        self.trt = trt or require_tensorrt()
        self.runtime = self.trt.Runtime(self.trt.Logger(self.trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = self.trt.TensorIOMode.INPUT
        self.input = next(n for n in names if self.engine.get_tensor_mode(n) == mode)
        self.output = next(n for n in names if self.engine.get_tensor_mode(n) != mode)
        self.stream = torch.cuda.Stream()

    def _dtype(self, name: str) -> torch.dtype:
        return torch.float16 if self.engine.get_tensor_dtype(name) == self.trt.DataType.HALF else torch.float32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to("cuda", self._dtype(self.input)).contiguous()
        self.context.set_input_shape(self.input, tuple(x.shape))
        out = torch.empty(
            tuple(self.context.get_tensor_shape(self.output)), device="cuda", dtype=self._dtype(self.output)
        )
        self.context.set_tensor_address(self.input, x.data_ptr())
        self.context.set_tensor_address(self.output, out.data_ptr())
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        return out

    def numpy_runner(self) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: self(torch.from_numpy(x)).float().cpu().numpy()
