"""Latency-aware lowering: pick, by measurement on the target, the fastest of a layer's exact realisations.

A conv with G groups is equally exactly a conv with any coarser G' dividing G (the extra blocks hold zeros), the
dense conv (G' = 1), or G separate convs on channel slices; k parallel branches run merged or separately. On
GPUs latency is not monotone in G (grouped convs up to 8.8× slower than dense for some shapes), so the choice is
measured: per layer signature (shape, batch, dtype, memory format), each candidate is timed on the target
device and backend, and the timings are kept in a persistent cache keyed by the device and library versions.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunex.artifacts import InputError, atomic_write_text
from prunex.bench.backends import Case, prepare_cuda_graphs, prepare_eager
from prunex.bench.environment import environment
from prunex.bench.harness import summarise, time_callable

MODES = ("off", "cache", "full")
NOISE_MARGIN = 0.03  # another realisation must be this much faster to replace the learned one
TIMING_BACKENDS = ("eager", "cuda-graphs")
Timer = Callable[[nn.Module, tuple[int, ...]], float]  # (module, input shape incl. batch) -> median ms


@dataclass(frozen=True)
class TuneTarget:
    """Where the compiled network will run."""

    device: str = "cpu"
    dtype: str = "fp32"
    batch: int = 1
    channels_last: bool = False
    backend: str = "eager"

    def __post_init__(self) -> None:
        if self.backend not in TIMING_BACKENDS:
            raise ValueError(f"tuning backend must be one of {TIMING_BACKENDS}, got {self.backend!r}")
        if self.dtype not in ("fp32", "fp16"):
            raise ValueError(f"tuning dtype must be fp32 or fp16, got {self.dtype!r}")


def default_cache_path() -> Path:
    root = os.environ.get("PRUNEX_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "prunex")
    return Path(root) / "tuning.json"


def device_fingerprint(target: TuneTarget) -> str:
    """Device name and the library versions that decide which kernels run."""
    env = environment(torch.device(target.device))
    parts = [env.get("gpu") or env["cpu"], f"torch {env['torch']}"]
    if "cudnn" in env:
        parts += [f"cuda {env['cuda']}", f"cudnn {env['cudnn']}"]
    else:
        parts.append(f"{env['threads']} threads")
    return " | ".join(parts)


class TuningCache:
    """Measured candidate times: {fingerprint + target + layer signature: {candidate: ms}} in one JSON file.

    A cache file that cannot be used — not UTF-8, not JSON, not that shape, negative or non-finite times, a
    directory, unreadable — is never fatal: it is moved aside (``tuning.json.damaged-<time>``) when possible, its
    timings are measured again, and :attr:`warnings` says what happened. A cache that cannot be written is left as
    it was (with a warning).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.entries: dict[str, dict[str, float]] = {}
        self.warnings: list[str] = []
        self.writable = True
        if self.path.exists():
            try:
                self.entries = self._read()
            except (OSError, UnicodeDecodeError, ValueError) as err:
                self._set_aside(str(err).splitlines()[0] if str(err) else type(err).__name__)

    def _read(self) -> dict[str, dict[str, float]]:
        data = json.loads(self.path.read_bytes().decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"a JSON object was expected, not {type(data).__name__}")
        for key, timings in data.items():
            if not isinstance(timings, dict) or not timings:
                raise ValueError(f"entry {key[:60]!r} is not a table of timings")
            for name, ms in timings.items():
                if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
                    raise ValueError(f"entry {key[:60]!r} has the timing {name} = {ms!r}")
        return data

    def _set_aside(self, reason: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.rename(self.path, aside)
            where = f"moved to {aside}"
        except OSError as err:
            self.writable = False
            where = f"left in place (cannot move it: {err.strerror or err}); it will not be written"
        self.warnings.append(f"tuning cache {self.path} is unusable ({reason}); {where}; its timings are re-measured")

    @staticmethod
    def key(fingerprint: str, target: TuneTarget, signature: str) -> str:
        t = target
        return (
            f"{fingerprint} || {t.backend} {t.dtype} batch {t.batch}{' NHWC' if t.channels_last else ''} || {signature}"
        )

    def get(self, key: str) -> dict[str, float] | None:
        return self.entries.get(key)

    def put(self, key: str, timings: dict[str, float]) -> None:
        self.entries[key] = timings

    def save(self) -> None:
        if not self.writable:
            return
        try:
            atomic_write_text(self.path, json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
        except (OSError, InputError) as err:
            self.warnings.append(f"tuning cache {self.path} was not saved: {getattr(err, 'strerror', None) or err}")


def measured_timer(target: TuneTarget, warmup: int = 5, iters: int = 20) -> Timer:
    """Median latency of a module on the target device / dtype / backend."""
    device, dtype = torch.device(target.device), {"fp32": torch.float32, "fp16": torch.float16}[target.dtype]

    def timer(module: nn.Module, shape: tuple[int, ...]) -> float:
        case = Case(module, tuple(shape[1:]), shape[0], dtype, device, target.channels_last)
        run = prepare_cuda_graphs(case) if target.backend == "cuda-graphs" else prepare_eager(case)
        return summarise(time_callable(run, cuda=case.cuda, warmup=warmup, iters=iters), shape[0]).median_ms

    return timer


@dataclass
class Decision:
    kind: str  # "conv" or "branches"
    layer: str
    learned: str  # e.g. "32 groups" or "4 branches"
    chosen: str
    times_ms: dict[str, float]
    from_cache: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tuner:
    """Chooses among candidate realisations by measured time, through the cache."""

    def __init__(
        self, target: TuneTarget, *, mode: str = "cache", cache: TuningCache | None = None, timer: Timer | None = None
    ) -> None:
        if mode not in ("cache", "full"):
            raise ValueError(f"a tuner measures in mode 'cache' or 'full', got {mode!r}")
        self.target, self.mode = target, mode
        self.cache = cache if cache is not None else TuningCache()
        self.timer = timer or measured_timer(target)
        self.fingerprint = device_fingerprint(target) if timer is None else "injected timer"
        self.decisions: list[Decision] = []

    def choose(
        self,
        kind: str,
        layer: str,
        learned: str,
        signature: str,
        shape: tuple[int, ...],
        candidates: dict[str, Callable[[], nn.Module]],
        prefer: str | None = None,
    ) -> str:
        """The fastest candidate name; ``candidates`` build the modules to time (only when not cached).

        ``prefer`` (the learned realisation) is kept unless another is more than 3 % faster: differences inside
        the measurement noise do not trade the learned structure (and its lower MAC count) away.
        """
        key = TuningCache.key(self.fingerprint, self.target, signature)
        cached = self.cache.get(key) if self.mode == "cache" else None
        if cached is not None and set(cached) == set(candidates):
            times, hit = cached, True
        else:
            times = {name: self.timer(build(), shape) for name, build in candidates.items()}
            self.cache.put(key, times)
            hit = False
        chosen = min(times, key=times.__getitem__)
        if prefer in times and times[chosen] >= (1 - NOISE_MARGIN) * times[prefer]:
            chosen = prefer
        self.decisions.append(Decision(kind, layer, learned, chosen, dict(times), hit))
        return chosen


# -- conv realisations ----------------------------------------------------------------------------------------
def coarser_group_counts(conv: nn.Conv2d) -> list[int]:
    """Every G' that divides G (G' = 1 is the dense conv)."""
    g = conv.groups
    return [d for d in range(g, 0, -1) if g % d == 0]


def coarsen(conv: nn.Conv2d, groups: int) -> nn.Conv2d:
    """The same conv with ``groups`` (dividing conv.groups) groups: each coarse block holds f = G/G' fine blocks on
    its diagonal and zeros elsewhere."""
    g, f = conv.groups, conv.groups // groups
    so, si = conv.out_channels // g, conv.in_channels // g
    out = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        groups,
        conv.bias is not None,
        conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        out.weight.zero_()
        for i in range(g):
            col = (i % f) * si
            out.weight[i * so : (i + 1) * so, col : col + si] = conv.weight[i * so : (i + 1) * so]
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out.eval()


class SplitConv(nn.Module):
    """G separate convs on the G channel slices, concatenated (used to time the split realisation)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        g, so, si = conv.groups, conv.out_channels // conv.groups, conv.in_channels // conv.groups
        self.si = si
        self.parts = nn.ModuleList()
        for i in range(g):
            part = nn.Conv2d(
                si,
                so,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                conv.dilation,
                1,
                conv.bias is not None,
                conv.padding_mode,
            )
            with torch.no_grad():
                part.weight.copy_(conv.weight[i * so : (i + 1) * so])
                if conv.bias is not None:
                    part.bias.copy_(conv.bias[i * so : (i + 1) * so])
            self.parts.append(part)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([p(x.narrow(1, i * self.si, self.si)) for i, p in enumerate(self.parts)], 1)


MAX_SPLIT = 16  # beyond this many groups, separate convs are not a sensible candidate


def conv_signature(conv: nn.Conv2d, shape: tuple[int, ...]) -> str:
    return (
        f"conv {conv.in_channels}->{conv.out_channels} k{tuple(conv.kernel_size)} s{tuple(conv.stride)} "
        f"p{tuple(conv.padding)} d{tuple(conv.dilation)} g{conv.groups} bias={conv.bias is not None} "
        f"in {tuple(shape[1:])}"
    )


def conv_candidates(conv: nn.Conv2d) -> dict[str, Callable[[], nn.Module]]:
    out: dict[str, Callable[[], nn.Module]] = {
        f"groups={g}" if g > 1 else "dense": (lambda g=g: coarsen(conv, g)) for g in coarser_group_counts(conv)
    }
    if 1 < conv.groups <= MAX_SPLIT:
        out["split"] = lambda: SplitConv(copy.deepcopy(conv)).eval()
    return out
