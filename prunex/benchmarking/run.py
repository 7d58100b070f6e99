"""Run a benchmark grid (models × backends × dtypes × batch sizes) in one process and collect comparable rows:
latency, set-up time (compilation, export, engine build), and achieved TFLOP/s against the device's peak."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunex.runtime.backends import ExportCache, RunOptions, parse_backend, prepare, unavailable_reason
from prunex.runtime.cases import BackendUnavailable, Case, CompileMode
from prunex.runtime.environment import environment
from prunex.runtime.flop_count import forward_flops
from prunex.runtime.roofline import Peak, achieved_tflops, device_peak, raised_to
from prunex.runtime.timing import summarise, time_callable

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


@dataclass
class BenchModel:
    name: str  # e.g. "maskconnect_cifar"
    kind: str  # "gated" (frozen, dense-masked, as shipped without prunex), "reference", or a compressed directory
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
    compile_mode: CompileMode = CompileMode.DEPLOY


REFERENCE = "reference"  # the kind of a reference row (the network users would deploy instead)


def run_grid(
    models: list[BenchModel], settings: BenchSettings, on_row: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    peaks = {name: device_peak(settings.device, DTYPES[name]) for name in settings.dtypes}
    flops = {id(m): forward_flops(m.module, m.input_shape) for m in models}
    with ExportCache() as exports:
        options = RunOptions(exports, settings.compile_mode, max(settings.batches))
        rows = _measure(models, settings, options, flops, on_row)
    peaks = add_roofline(rows, peaks)
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
            "compile_mode": settings.compile_mode.value,
        },
        "peaks": {name: peak.as_dict() for name, peak in peaks.items()},
        "results": rows,
        "speedups": speedups(rows),
        "vs_reference": versus_reference(rows),
    }


def add_roofline(rows: list[dict[str, Any]], peaks: dict[str, Peak]) -> dict[str, Peak]:
    """Give every measured row its share of the peak for its dtype (a measured peak first raised to the best rate
    achieved, so no share exceeds 1); the peaks used come back."""
    used = {}
    for name, peak in peaks.items():
        best = max((r["tflops"] for r in rows if r["status"] == "ok" and r["dtype"] == name), default=0.0)
        used[name] = raised_to(peak, best)
    for r in rows:
        if r["status"] == "ok":
            r["peak_tflops"] = used[r["dtype"]].tflops
            r["peak_share"] = r["tflops"] / used[r["dtype"]].tflops
    return used


def _measure(models, settings: BenchSettings, options: RunOptions, flops, on_row) -> list[dict[str, Any]]:
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
                            tic = time.perf_counter()
                            run = prepare(parse_backend(backend), case, options)
                            setup_s = time.perf_counter() - tic
                            samples = time_callable(
                                run,
                                cuda=case.cuda,
                                warmup=settings.warmup,
                                iters=settings.iters,
                                min_seconds=settings.min_seconds,
                            )
                            stats = summarise(samples, batch)
                            row.update(status="ok", setup_s=setup_s, **stats.as_dict())
                            row.update(
                                flops=flops[id(model)],
                                tflops=achieved_tflops(flops[id(model)], batch, stats.median_ms),
                            )
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


CASE_KEYS = ("group", "kind", "backend", "dtype", "batch")


def _paired(rows: list[dict[str, Any]], base_kind: str, skip: tuple[str, ...]):
    """(case fields, row, base row) for every measured row not of a ``skip`` kind whose group has a ``base_kind``
    row measured with the same backend, dtype and batch."""
    index = {tuple(r[k] for k in CASE_KEYS): r for r in rows if r["status"] == "ok"}
    for (group, kind, backend, dtype, batch), row in index.items():
        base = index.get((group, base_kind, backend, dtype, batch))
        if kind not in skip and base is not None:
            yield {"group": group, "kind": kind, "backend": backend, "dtype": dtype, "batch": batch}, row, base


def speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """gated median / compressed median for every compressed kind and (group, backend, dtype, batch) measured for
    both."""
    return [
        {
            **case,
            "gated_median_ms": base["median_ms"],
            "compressed_median_ms": row["median_ms"],
            "speedup": base["median_ms"] / row["median_ms"],
        }
        for case, row, base in _paired(rows, "gated", ("gated", REFERENCE))
    ]


def versus_reference(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """reference median / model median for every gated or compressed row whose group has a reference row measured
    with the same backend, dtype and batch (above 1: faster than what users would deploy instead)."""
    return [
        {
            **case,
            "reference": ref["model"],
            "reference_median_ms": ref["median_ms"],
            "median_ms": row["median_ms"],
            "speedup": ref["median_ms"] / row["median_ms"],
        }
        for case, row, ref in _paired(rows, REFERENCE, (REFERENCE,))
    ]
