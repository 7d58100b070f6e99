"""Execution cases: a module at a batch size, dtype, device and memory format, prepared to run one batch at a time
eagerly, under CUDA graphs or under torch.compile (what both the benchmark and the latency-aware compiler time)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from prunex.runtime.compile_mode import CompileMode
from prunex.runtime.precision import Precision


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (the message says why)."""


@dataclass
class Case:
    """One thing to time: a module at a batch size, dtype and device."""

    module: nn.Module
    input_shape: tuple[int, int, int]
    batch: int
    dtype: torch.dtype
    device: torch.device
    channels_last: bool
    calibration: torch.Tensor | None = None  # images to calibrate INT8 on: an fp32 case quantized (ONNX backends)

    @property
    def precision(self) -> Precision:
        if self.calibration is not None:
            return Precision.INT8
        return Precision.FP16 if self.dtype == torch.float16 else Precision.FP32

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def input(self) -> torch.Tensor:
        x = torch.randn(self.batch, *self.input_shape, generator=torch.Generator().manual_seed(0))
        x = x.to(self.device, self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def placed_module(self) -> nn.Module:
        """A copy on the case's device and dtype (the source module is shared by other cases)."""
        m = copy.deepcopy(self.module).to(self.device, self.dtype).eval()
        return m.to(memory_format=torch.channels_last) if self.channels_last else m


def _no_grad(fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        with torch.inference_mode():
            return fn()

    return run


def prepare_eager(case: Case) -> Callable[[], object]:
    module, x = case.placed_module(), case.input()
    return _no_grad(lambda: module(x))


def prepare_cuda_graphs(case: Case) -> Callable[[], object]:
    if not case.cuda:
        raise BackendUnavailable("CUDA graphs need --device cuda")
    module, static = case.placed_module(), case.input()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.inference_mode():
        for _ in range(3):
            module(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        module(static)
    return graph.replay


def prepare_compile(case: Case, mode: CompileMode = CompileMode.DEPLOY) -> Callable[[], object]:
    """``torch.compile`` as deployed: compiled (and, with freezing, frozen) on its first call here, so a failure is
    reported now and compilation is not timed. Freezing needs gradients off while compiling; it then treats the
    module's weights as constants."""
    from torch._inductor import config as inductor_config

    module, x = case.placed_module(), case.input()
    try:
        with inductor_config.patch(freezing=mode.freezing), torch.no_grad():
            compiled = torch.compile(module, mode=mode.torch_mode(case.cuda), dynamic=False)
            compiled(x)
            compiled(x)  # CUDA graphs record on the second call
    except Exception as err:  # inductor needs a C++ compiler (CPU) or Triton (GPU)
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise BackendUnavailable(f"torch.compile failed: {reason}") from err

    def run():
        with torch.no_grad():
            return compiled(x)

    return run
