"""The bottom layer's measuring half: the backends prunex times (eager, CUDA graphs, torch.compile, ONNX Runtime,
TensorRT: one registry for bench and the tuner), execution cases, ONNX export, timing, environment capture,
numerical comparison, ATen dispatch counting. It imports nothing from the rest of prunex but
:mod:`prunex.artifacts`' errors.

The names below are imported when first used, so that a torch-free module of this package (``compile_mode``, read
by the CLI's ``--help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Backend": "backends",
    "BACKENDS": "backends",
    "ExportCache": "backends",
    "RunOptions": "backends",
    "prepare": "backends",
    "export_onnx": "onnx_program",
    "BackendUnavailable": "cases",
    "Case": "cases",
    "prepare_compile": "cases",
    "prepare_cuda_graphs": "cases",
    "prepare_eager": "cases",
    "CompileMode": "compile_mode",
    "compare": "comparison",
    "exact_float32": "comparison",
    "DispatchCounter": "dispatch_count",
    "DispatchCounts": "dispatch_count",
    "environment": "environment",
    "COV_WARNING": "timing",
    "LatencyStats": "timing",
    "percentile": "timing",
    "summarise": "timing",
    "time_callable": "timing",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"prunex.runtime.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'prunex.runtime' has no attribute {name!r}")


__all__ = sorted(_HOMES)
