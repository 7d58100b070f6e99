"""Latency benchmarking: backends (eager, CUDA graphs, torch.compile, ONNX Runtime, TensorRT), the harness,
environment capture, and reports."""

from prunex.benchmarking.backends import BACKENDS
from prunex.benchmarking.run import BenchModel, BenchSettings, run_grid, speedups, versus_reference
from prunex.runtime.cases import BackendUnavailable
from prunex.runtime.timing import LatencyStats, summarise, time_callable

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "BenchModel",
    "BenchSettings",
    "LatencyStats",
    "run_grid",
    "speedups",
    "summarise",
    "time_callable",
    "versus_reference",
]
