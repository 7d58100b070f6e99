"""Latency-aware lowering: pick, by measurement on the target, the fastest of a layer's exact realisations.

A conv with G groups is equally exactly a conv with any coarser G' dividing G (the extra blocks hold zeros), the
dense conv (G' = 1), or G separate convs on channel slices; k parallel branches run merged or separately. On
GPUs latency is not monotone in G (grouped convs up to 8.8× slower than dense for some shapes), so the choice is
measured: per layer signature (shape, batch, dtype, memory format), each candidate is timed on the target
device and backend, and the timings are kept in a persistent cache keyed by the device and library versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from prunex.artifacts.compression_report import LoweringDecision
from prunex.artifacts.tuning_cache import TuningCache
from prunex.runtime.backends import (
    BACKENDS,
    Backend,
    ExportCache,
    RunOptions,
    onnxruntime_providers,
    parse_backend,
    prepare,
)
from prunex.runtime.cases import Case
from prunex.runtime.choices import Exporter, TuneMode, parse_choice
from prunex.runtime.environment import environment
from prunex.runtime.precision import Precision, parse_precision
from prunex.runtime.timing import summarise, time_callable

NOISE_MARGIN = 0.03  # another realisation must be this much faster to replace the learned one
Timer = Callable[[nn.Module, tuple[int, ...]], float]  # (module, input shape incl. batch) -> median ms


@dataclass(frozen=True)
class TuneTarget:
    """Where the compiled network will run."""

    device: str = "cpu"
    dtype: Precision = Precision.FP32  # fp32 or fp16 (a word is converted here)
    batch: int = 1
    channels_last: bool = False
    backend: Backend = Backend.EAGER  # every backend `prunex bench` times (a name is converted here)

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend", parse_backend(self.backend))
        object.__setattr__(self, "dtype", parse_precision(self.dtype))
        if self.dtype not in (Precision.FP32, Precision.FP16):
            raise ValueError(f"tuning dtype must be fp32 or fp16, got {self.dtype.value!r}")
        on_cuda = self.device.split(":")[0] == "cuda"
        if self.dtype is Precision.FP16 and not on_cuda:
            raise ValueError(f"--target-dtype fp16 tunes for a CUDA device (--target-device cuda), not {self.device}")
        if BACKENDS[self.backend].needs_cuda and not on_cuda:
            raise ValueError(f"--target-backend {self.backend.value} needs --target-device cuda, not {self.device}")
        if self.backend is Backend.TENSORRT:
            from prunex.runtime.tensorrt_engine import require_tensorrt

            require_tensorrt()  # TensorRTUnavailable (an InputError) says what is missing, before any work

    def describe(self) -> str:
        """``eager fp32 batch 1`` (`` NHWC`` when channels-last): the target part of a tuning cache key."""
        return f"{self.backend.value} {self.dtype.value} batch {self.batch}{' NHWC' if self.channels_last else ''}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "backend": self.backend.value, "dtype": self.dtype.value}


def device_fingerprint(target: TuneTarget) -> str:
    """Device name, the runtime that runs the target backend and the library versions that decide which kernels
    run (ONNX Runtime: its version, execution provider and thread count)."""
    env = environment(torch.device(target.device))
    parts = [env.get("gpu") or env["cpu"], f"torch {env['torch']}"]
    if "cudnn" in env:
        parts += [f"cuda {env['cuda']}", f"cudnn {env['cudnn']}"]
    else:
        parts.append(f"{env['threads']} threads")
    if target.backend in (Backend.ONNXRUNTIME, Backend.TENSORRT):
        parts.append(BACKENDS[target.backend].runtime())
    if target.backend is Backend.ONNXRUNTIME:
        parts.append(onnxruntime_providers(target.device.startswith("cuda"))[0])
    return " | ".join(parts)


def measured_timer(target: TuneTarget, warmup: int = 5, iters: int = 20) -> Timer:
    """Median latency of a module on the target device / dtype / backend; ONNX Runtime and TensorRT time an
    ONNX export of the module (the TorchScript exporter: milliseconds per layer, the same graph)."""
    device, dtype = (
        torch.device(target.device),
        {Precision.FP32: torch.float32, Precision.FP16: torch.float16}[target.dtype],
    )

    def timer(module: nn.Module, shape: tuple[int, ...]) -> float:
        case = Case(module, tuple(shape[1:]), shape[0], dtype, device, target.channels_last)
        with ExportCache(Exporter.LEGACY) as exports:  # one per module: candidates are built and dropped one by one
            run = prepare(target.backend, case, RunOptions(exports, max_batch=shape[0]))
            samples = time_callable(run, cuda=case.cuda, warmup=warmup, iters=iters)
        return summarise(samples, shape[0]).median_ms

    return timer


class DecisionKind(StrEnum):
    """What a decision chose the realisation of: one conv, a set of parallel branches, or the whole network."""

    CONV = "conv"
    BRANCHES = "branches"
    NETWORK = "network"


class Realisation(Protocol):
    """One exact way to run a layer (a conv's grouping, branches merged or not); ``label`` names it in the tuning
    cache and the report."""

    @property
    def label(self) -> str: ...


R = TypeVar("R", bound=Realisation)


@dataclass
class Decision:
    """One choice: what was learned, what was chosen (by label) and the times it was chosen on."""

    kind: DecisionKind
    layer: str
    learned: str  # e.g. "32 groups" or "4 branches"
    chosen: str
    times_ms: dict[str, float]
    from_cache: bool
    choice: Realisation | None = field(default=None, repr=False, compare=False)  # ``chosen`` as the typed value

    def record(self) -> LoweringDecision:
        """The decision as the compression report holds it."""
        times = dict(self.times_ms)
        return LoweringDecision(self.kind.value, self.layer, self.learned, self.chosen, times, self.from_cache)


class Tuner:
    """Chooses among candidate realisations by measured time, through the cache."""

    def __init__(
        self,
        target: TuneTarget,
        *,
        mode: TuneMode | str = TuneMode.CACHE,
        cache: TuningCache | None = None,
        timer: Timer | None = None,
    ) -> None:
        mode = parse_choice(TuneMode, mode, "tune mode")
        if mode is TuneMode.OFF:
            raise ValueError("a tuner measures (tune mode cache or full); tune mode off has none")
        self.target, self.mode = target, mode
        self.cache = cache if cache is not None else TuningCache()
        self.timer = timer or measured_timer(target)
        self.fingerprint = device_fingerprint(target) if timer is None else "injected timer"
        self.decisions: list[Decision] = []

    def choose(
        self,
        kind: DecisionKind,
        layer: str,
        learned: str,
        signature: str,
        shape: tuple[int, ...],
        candidates: dict[R, Callable[[], nn.Module]],
        prefer: R | None = None,
    ) -> R:
        """The fastest candidate; ``candidates`` build the modules to time (only when not cached).

        ``prefer`` (the learned realisation) is kept unless another is more than 3 % faster: differences inside
        the measurement noise do not trade the learned structure (and its lower MAC count) away.
        """
        by_label = {c.label: c for c in candidates}
        key = TuningCache.key(self.fingerprint, self.target.describe(), signature)
        cached = self.cache.get(key) if self.mode is TuneMode.CACHE else None
        if cached is not None and set(cached) == set(by_label):
            times, hit = cached, True
        else:
            times = {c.label: self.timer(build(), shape) for c, build in candidates.items()}
            self.cache.put(key, times)
            hit = False
        chosen = min(times, key=times.__getitem__)
        if prefer is not None and prefer.label in times and times[chosen] >= (1 - NOISE_MARGIN) * times[prefer.label]:
            chosen = prefer.label
        self.decisions.append(Decision(kind, layer, learned, chosen, dict(times), hit, by_label[chosen]))
        return by_label[chosen]
