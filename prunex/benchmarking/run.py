"""Run a benchmark grid (models × backends × dtypes × batch sizes) in one process and collect comparable rows:
latency, set-up time (compilation, export, engine build), and achieved TFLOP/s against the device's peak."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunex.artifacts.bench_report import (
    BenchReport,
    BenchRow,
    CaseKey,
    PeakRecord,
    RowStatus,
    Speedup,
    VersusFp32,
    VersusReference,
)
from prunex.runtime.backends import ExportCache, RunOptions, parse_backend, prepare, unavailable_reason
from prunex.runtime.cases import BackendUnavailable, Case, CompileMode
from prunex.runtime.environment import environment
from prunex.runtime.flop_count import forward_flops
from prunex.runtime.precision import Precision
from prunex.runtime.roofline import Peak, achieved_tflops, device_peak, raised_to
from prunex.runtime.timing import summarise, time_interleaved

# the arithmetic each precision's model runs in (int8: an fp32 model, quantized by the backend)
DTYPES = {Precision.FP32: torch.float32, Precision.FP16: torch.float16, Precision.INT8: torch.float32}


@dataclass
class BenchModel:
    name: str  # e.g. "maskconnect_cifar"
    kind: str  # "gated" (frozen, dense-masked, as shipped without prunex), "reference", or a compressed directory
    group: str  # models of one run share a group; speed-ups compare gated and compressed within it
    module: nn.Module
    input_shape: tuple[int, int, int]
    calibration: torch.Tensor | None = None  # images of the run's data to calibrate INT8 on (None: unreadable)
    calibration_note: str = ""  # why there are none


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

    def as_dict(self) -> dict[str, Any]:
        """The settings as ``bench.json`` records them."""
        return {
            "device": str(self.device),
            "backends": self.backends,
            "dtypes": self.dtypes,
            "batches": self.batches,
            "channels_last": self.channels_last,
            "warmup": self.warmup,
            "iters": self.iters,
            "min_seconds": self.min_seconds,
            "compile_mode": self.compile_mode.value,
        }


REFERENCE = "reference"  # the kind of a reference row (the network users would deploy instead)


def run_grid(
    models: list[BenchModel], settings: BenchSettings, on_row: Callable[[BenchRow], None] | None = None
) -> BenchReport:
    by_dtype = {dtype: device_peak(settings.device, dtype) for dtype in {DTYPES[name] for name in settings.dtypes}}
    peaks = {name: by_dtype[DTYPES[name]] for name in settings.dtypes}
    if Precision.INT8 in peaks:  # INT8 rows are shares of the float peak of the arithmetic they replace
        base = peaks[Precision.INT8]
        peaks[Precision.INT8] = Peak(base.tflops, f"the fp32 peak: {base.source}", base.measured)
    flops = {id(m): forward_flops(m.module, m.input_shape) for m in models}
    with ExportCache() as exports:
        options = RunOptions(exports, settings.compile_mode, max(settings.batches))
        rows = _measure(models, settings, options, flops, on_row)
    peaks = add_roofline(rows, peaks)
    return BenchReport(
        environment=environment(settings.device),
        settings=settings.as_dict(),
        peaks={name: PeakRecord(peak.tflops, peak.source, peak.measured) for name, peak in peaks.items()},
        results=rows,
        speedups=speedups(rows),
        vs_reference=versus_reference(rows),
        vs_fp32=versus_fp32(rows),
    )


def add_roofline(rows: list[BenchRow], peaks: dict[str, Peak]) -> dict[str, Peak]:
    """Give every measured row its share of the peak for its dtype (a measured peak first raised to the best rate
    achieved, so no share exceeds 1); the peaks used come back."""
    used = {}
    for name, peak in peaks.items():
        best = max((r.tflops for r in rows if r.ok and r.dtype == name), default=0.0)
        used[name] = raised_to(peak, best)
    for r in rows:
        if r.ok:
            r.peak_tflops = used[r.dtype].tflops
            r.peak_share = r.tflops / used[r.dtype].tflops
    return used


def _measure(models, settings: BenchSettings, options: RunOptions, flops, on_row) -> list[BenchRow]:
    """Every (backend, dtype, batch) cell: each model prepared, then all of them timed in alternating rounds, so
    the speed-ups of a cell compare measurements of the same minutes. Rows come back model by model."""
    measured: list[tuple[int, BenchRow]] = []
    for backend in settings.backends:
        for dtype_name in settings.dtypes:
            for batch in settings.batches:
                cell = _measure_cell(models, settings, options, flops, (backend, dtype_name, batch))
                measured += cell
                for _, row in cell:
                    if on_row:
                        on_row(row)
    return [row for _, row in sorted(measured, key=lambda m: m[0])]


def _measure_cell(models, settings: BenchSettings, options, flops, cell: tuple[str, str, int]):
    """(model index, row) for each model in one (backend, dtype, batch) cell."""
    backend, dtype_name, batch = cell
    rows, runs = [], []
    unavailable = unavailable_reason(backend, settings.device, dtype_name)
    int8 = Precision(dtype_name) is Precision.INT8
    for i, model in enumerate(models):
        row = BenchRow(
            model=model.name, kind=model.kind, group=model.group, backend=backend, dtype=dtype_name, batch=batch
        )
        rows.append((i, row))
        reason = unavailable
        if reason is None and int8 and model.calibration is None:
            reason = f"int8 needs calibration images of the run's data: {model.calibration_note or 'none given'}"
        if reason is None:
            dtype, calibration = DTYPES[dtype_name], model.calibration if int8 else None
            case = Case(
                model.module, model.input_shape, batch, dtype, settings.device, settings.channels_last, calibration
            )
            tic = time.perf_counter()
            run, reason = _prepared(backend, case, options)
            if run is not None:
                row.setup_s = time.perf_counter() - tic
                runs.append((model, row, run))
        if reason is not None:
            row.reason = reason
    if runs:
        _time_together(runs, settings, flops, batch)
    return rows


def _time_together(runs, settings: BenchSettings, flops, batch: int) -> None:
    """Time the prepared runners of one cell in alternating rounds and fill in their rows."""
    try:
        timed = time_interleaved(
            [run for *_, run in runs],
            cuda=settings.device.type == "cuda",
            warmup=settings.warmup,
            iters=settings.iters,
            min_seconds=settings.min_seconds,
        )
    except Exception as err:  # noqa: BLE001 - running out of memory while timing is every row's reason
        reason = _failure(err, batch, settings.device)
        for _, row, _ in runs:
            row.setup_s, row.reason = None, reason
        return
    for (model, row, _), samples in zip(runs, timed, strict=True):
        stats = summarise(samples, batch)
        for name, value in stats.as_dict().items():
            setattr(row, name, value)
        row.status, row.flops = RowStatus.OK, flops[id(model)]
        row.tflops = achieved_tflops(row.flops, batch, stats.median_ms)


def _prepared(backend: str, case: Case, options: RunOptions):
    """(the runner, None), or (None, why it cannot run)."""
    try:
        return prepare(parse_backend(backend), case, options), None
    except BackendUnavailable as err:
        return None, str(err)
    except Exception as err:  # noqa: BLE001 - only running out of memory is a row's reason; the rest propagates
        return None, _failure(err, case.batch, case.device)


def _failure(err: Exception, batch: int, device: torch.device) -> str:
    """The reason for an out-of-memory error; anything else is raised again."""
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return _out_of_memory(err, batch, device)
    if isinstance(err, RuntimeError) and ("out of memory" in str(err) or "can't allocate memory" in str(err)):
        return _out_of_memory(err, batch, device)
    raise err


def _out_of_memory(err: BaseException, batch: int, device: torch.device) -> str:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return f"out of memory at batch {batch} ({str(err).splitlines()[0][:120]})"


def _paired(rows: list[BenchRow], base_of: Callable[..., CaseKey | None]):
    """(row, base row) for every measured row whose base — the case ``base_of(group, kind, backend, dtype, batch)``
    names, None for none — was measured too."""
    index = {r.case: r for r in rows if r.ok}
    for case, row in index.items():
        key = base_of(*case)
        base = index.get(key) if key is not None else None
        if base is not None:
            yield row, base


def speedups(rows: list[BenchRow]) -> list[Speedup]:
    """gated median / compressed median for every compressed kind and (group, backend, dtype, batch) measured for
    both."""
    return [
        Speedup(*row.case, base.median_ms, row.median_ms, base.median_ms / row.median_ms)
        for row, base in _paired(
            rows, lambda g, kind, b, d, n: None if kind in ("gated", REFERENCE) else (g, "gated", b, d, n)
        )
    ]


def versus_reference(rows: list[BenchRow]) -> list[VersusReference]:
    """reference median / model median for every gated or compressed row whose group has a reference row measured
    with the same backend, dtype and batch (above 1: faster than what users would deploy instead)."""
    return [
        VersusReference(*row.case, ref.model, ref.median_ms, row.median_ms, ref.median_ms / row.median_ms)
        for row, ref in _paired(rows, lambda g, kind, b, d, n: None if kind == REFERENCE else (g, REFERENCE, b, d, n))
    ]


def versus_fp32(rows: list[BenchRow]) -> list[VersusFp32]:
    """fp32 median / row median for every row of another precision (fp16, int8) whose model was also measured in
    fp32 on the same backend and batch (above 1: the lower precision is faster)."""
    return [
        VersusFp32(*row.case, base.median_ms, row.median_ms, base.median_ms / row.median_ms)
        for row, base in _paired(
            rows, lambda g, k, b, d, n: None if d == Precision.FP32 else (g, k, b, Precision.FP32, n)
        )
    ]
