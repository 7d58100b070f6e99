"""Latency benchmarking: backends (eager, CUDA graphs, torch.compile, ONNX Runtime, TensorRT), the harness,
environment capture, and reports."""

from prunex.bench.backends import BACKENDS, BackendUnavailable
from prunex.bench.harness import LatencyStats, summarise, time_callable
from prunex.bench.run import BenchModel, BenchSettings, run_grid, speedups

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
]
