"""Run a benchmark grid (models × backends × dtypes × batch sizes) in one process and collect comparable rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunex.bench.backends import ExportCache, prepare_onnxruntime, prepare_tensorrt, unavailable_reason
from prunex.runtime.cases import BackendUnavailable, Case, prepare_compile, prepare_cuda_graphs, prepare_eager
from prunex.runtime.environment import environment
from prunex.runtime.timing import summarise, time_callable

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


@dataclass
class BenchModel:
    name: str  # e.g. "maskconnect_cifar"
    kind: str  # "gated" (frozen, dense-masked, as shipped without prunex) or a compressed directory's name
    group: str  # models of one run share a group; speed-ups compare gated and compressed within it
    module: nn.Module
    input_shape: tuple[int, int, int]


@dataclass
class BenchSettings:
    device: torch.device
    backends: list[str]
    dtypes: list[str]
    batches: list[int]
    channels_last: bool
    warmup: int = 10
    iters: int = 50
    min_seconds: float = 0.0


def _prepare(backend: str, case: Case, exports: ExportCache, max_batch: int) -> Callable[[], object]:
    if backend == "eager":
        return prepare_eager(case)
    if backend == "cuda-graphs":
        return prepare_cuda_graphs(case)
    if backend == "compile":
        return prepare_compile(case)
    if backend == "onnxruntime":
        return prepare_onnxruntime(case, exports)
    return prepare_tensorrt(case, exports, max_batch)


def run_grid(
    models: list[BenchModel], settings: BenchSettings, on_row: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    with ExportCache() as exports:
        rows = _measure(models, settings, exports, on_row)
    return {
        "environment": environment(settings.device),
        "settings": {
            "device": str(settings.device),
            "backends": settings.backends,
            "dtypes": settings.dtypes,
            "batches": settings.batches,
            "channels_last": settings.channels_last,
            "warmup": settings.warmup,
            "iters": settings.iters,
            "min_seconds": settings.min_seconds,
        },
        "results": rows,
        "speedups": speedups(rows),
    }


def _measure(models, settings: BenchSettings, exports: ExportCache, on_row) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for model in models:
        for backend in settings.backends:
            for dtype_name in settings.dtypes:
                dtype = DTYPES[dtype_name]
                for batch in settings.batches:
                    row = {
                        "model": model.name,
                        "kind": model.kind,
                        "group": model.group,
                        "backend": backend,
                        "dtype": dtype_name,
                        "batch": batch,
                    }
                    reason = unavailable_reason(backend, settings.device, dtype)
                    if reason is None:
                        case = Case(
                            model.module, model.input_shape, batch, dtype, settings.device, settings.channels_last
                        )
                        try:
                            run = _prepare(backend, case, exports, max(settings.batches))
                            samples = time_callable(
                                run,
                                cuda=case.cuda,
                                warmup=settings.warmup,
                                iters=settings.iters,
                                min_seconds=settings.min_seconds,
                            )
                            row.update(status="ok", **summarise(samples, batch).as_dict())
                        except BackendUnavailable as err:
                            reason = str(err)
                        except (torch.OutOfMemoryError, MemoryError) as err:
                            reason = _out_of_memory(err, batch, settings.device)
                        except RuntimeError as err:
                            if "out of memory" not in str(err) and "can't allocate memory" not in str(err):
                                raise
                            reason = _out_of_memory(err, batch, settings.device)
                    if reason is not None:
                        row.update(status="unavailable", reason=reason)
                    rows.append(row)
                    if on_row:
                        on_row(row)
    return rows


def _out_of_memory(err: BaseException, batch: int, device: torch.device) -> str:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return f"out of memory at batch {batch} ({str(err).splitlines()[0][:120]})"


def speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """gated median / compressed median for every compressed kind and (group, backend, dtype, batch) measured for
    both."""
    index = {(r["group"], r["kind"], r["backend"], r["dtype"], r["batch"]): r for r in rows if r["status"] == "ok"}
    out = []
    for (group, kind, backend, dtype, batch), row in index.items():
        base = index.get((group, "gated", backend, dtype, batch))
        if kind != "gated" and base is not None:
            out.append(
                {
                    "group": group,
                    "kind": kind,
                    "backend": backend,
                    "dtype": dtype,
                    "batch": batch,
                    "gated_median_ms": base["median_ms"],
                    "compressed_median_ms": row["median_ms"],
                    "speedup": base["median_ms"] / row["median_ms"],
                }
            )
    return out
