"""Latency benchmarking: the harness over the backends of :mod:`prunex.runtime.backends` (eager, CUDA graphs,
torch.compile, ONNX Runtime, TensorRT), and its reports."""

from prunex.benchmarking.run import BenchModel, BenchSettings, run_grid, speedups, versus_reference

__all__ = ["BenchModel", "BenchSettings", "run_grid", "speedups", "versus_reference"]
