"""Latency measurement: warm-up, then timed iterations; min / mean / median / p90 / p95 / p99, throughput, and the
coefficient of variation (trtexec warns above 2.5 %).

On CUDA each iteration is timed with CUDA events on the current stream; on the CPU with ``perf_counter``.
:func:`time_interleaved` times several callables in alternating rounds, so that what they are compared on (a
shared machine whose speed drifts by tens of percent within minutes) is the same for all of them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

COV_WARNING = 0.025


@dataclass(frozen=True)
class LatencyStats:
    iterations: int
    min_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    std_ms: float
    cov: float
    throughput: float  # samples per second at the median latency

    @property
    def unstable(self) -> bool:
        return self.cov > COV_WARNING

    def as_dict(self) -> dict:
        return {**asdict(self), "cov_warning": self.unstable}


def percentile(sorted_ms: list[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted samples."""
    if len(sorted_ms) == 1:
        return sorted_ms[0]
    pos = (len(sorted_ms) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (pos - lo)


def summarise(samples_ms: list[float], batch: int) -> LatencyStats:
    s = sorted(samples_ms)
    mean = statistics.fmean(s)
    std = statistics.pstdev(s) if len(s) > 1 else 0.0
    median = statistics.median(s)
    return LatencyStats(
        len(s),
        s[0],
        mean,
        median,
        percentile(s, 0.90),
        percentile(s, 0.95),
        percentile(s, 0.99),
        std,
        std / mean if mean else 0.0,
        batch / (median / 1e3) if median else float("inf"),
    )


def _timed_call(fn: Callable[[], object], cuda: bool) -> float:
    if cuda:
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        fn()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end)
    tic = time.perf_counter()
    fn()
    return (time.perf_counter() - tic) * 1e3


def time_callable(
    fn: Callable[[], object], *, cuda: bool, warmup: int = 10, iters: int = 50, min_seconds: float = 0.0
) -> list[float]:
    """Per-iteration latencies in ms (at least ``iters`` runs and ``min_seconds`` of timed work)."""
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < iters or time.perf_counter() - start < min_seconds:
        samples.append(_timed_call(fn, cuda))
    return samples


PAUSE_S = 0.02  # on the CPU, before each burst: the previous runtime's spinning worker threads go to sleep


def time_interleaved(
    fns: list[Callable[[], object]],
    *,
    cuda: bool,
    warmup: int = 10,
    iters: int = 50,
    min_seconds: float = 0.0,
    burst: int = 5,
    pause_s: float = PAUSE_S,
) -> list[list[float]]:
    """Per-iteration latencies in ms of each of ``fns``, timed in rounds: every round runs each one ``burst``
    times after one untimed call (and, on the CPU, a pause), so each gets at least ``iters`` samples and all of
    them are measured across the same stretch of time (``min_seconds`` of timed work in all)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    if cuda:
        torch.cuda.synchronize()
    samples: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    while min(map(len, samples)) < iters or time.perf_counter() - start < min_seconds:
        for fn, out in zip(fns, samples, strict=True):
            if not cuda and pause_s > 0:
                time.sleep(pause_s)
            fn()
            out.extend(_timed_call(fn, cuda) for _ in range(burst))
    return samples
