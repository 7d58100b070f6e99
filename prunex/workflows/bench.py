"""``prunex bench`` as a function: time gated and compressed models on every backend, write ``bench.json``.

job = prepare_bench(["runs/r"], device="cpu", batches=[1, 32])   # options and output checked, models loaded
result = job.run(on_row=print)                                    # measures, writes OUT atomically
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from prunex.artifacts import atomic_directory, claim_output
from prunex.artifacts import layout as files
from prunex.artifacts.bench_report import BenchReport, BenchRow
from prunex.artifacts.errors import InputError
from prunex.benchmarking.report import plot_latency
from prunex.benchmarking.run import DTYPES, REFERENCE, BenchModel, BenchSettings, run_grid
from prunex.data import DatasetError, labelled_images
from prunex.exporters.sources import LoadedModel, load_pair
from prunex.inspection import draw_pictures
from prunex.models.references import AUTO, build_reference, choose_reference
from prunex.runtime.backends import backend_names, unavailable_reason
from prunex.runtime.cases import CompileMode
from prunex.runtime.choices import Backend, parse_option
from prunex.runtime.devices import pick_device
from prunex.runtime.precision import Precision


@dataclass
class BenchResult:
    out: Path
    result: BenchReport  # what bench.json holds
    plot: Path | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class BenchJob:
    sources: list[Path]
    models: list[BenchModel]
    settings: BenchSettings
    out: Path
    plots: bool

    def run(self, on_row: Callable[[BenchRow], None] | None = None) -> BenchResult:
        warnings: list[str] = []
        with atomic_directory(self.out, replace=True) as tmp:
            result = run_grid(self.models, self.settings, on_row=on_row)
            if not result.measured:
                reasons = sorted({row.reason for row in result.results})
                raise InputError(f"nothing could be measured ({'; '.join(reasons)[:300]}); {self.out} was not written")
            result.write(tmp / files.BENCH_JSON)
            plot = plot_latency(result, tmp / files.BENCH_PLOT) if self.plots else None
            if self.plots:
                for i, source in enumerate(self.sources):
                    gated = [m for m in self.models if m.group == str(source) and m.kind == "gated"]
                    if gated:
                        _, missing = draw_pictures(
                            gated[0].module, tmp / f"learned-{i}-{source.name}", None, ("svg", "png")
                        )
                        if missing and f"no pictures: {missing}" not in warnings:
                            warnings.append(f"no pictures: {missing}")
        return BenchResult(self.out, result, self.out / plot.name if plot else None, warnings)


def _ours(name: str) -> bool:
    return name in (files.BENCH_JSON, files.BENCH_PLOT) or name.startswith("learned-")


def prepare_bench(
    sources: Sequence[str | Path],
    *,
    device: str = "auto",
    backends: Sequence[str] | None = None,
    dtypes: Sequence[str] = ("fp32",),
    batches: Sequence[int] = (1, 32),
    channels_last: bool | None = None,
    warmup: int = 10,
    iters: int = 50,
    min_seconds: float = 0.0,
    out: str | Path | None = None,
    force: bool = False,
    plots: bool = True,
    reference: str = AUTO,
    compile_mode: CompileMode | str = CompileMode.DEPLOY,
) -> BenchJob:
    """Check every option and the output directory before any work, then load each source's models (a run
    directory brings its gated model and every compressed one; a compressed directory itself) and, unless
    ``reference`` is ``none``, the network users would deploy instead (``auto``: the family's; or a registered
    model / ``torchvision:NAME``), timed with the same settings.

    ``out`` defaults to the first free ``bench``, ``bench-2``, …; a given ``out`` holding an earlier benchmark is
    replaced only with ``force`` (and only once the new one has measured something), one holding other files never.
    A grid in which nothing can run on this device (fp16 on the CPU, say) is refused before any work."""
    dev = pick_device(device)
    backends, dtypes = _grid(backends, dtypes)
    if not batches or min(batches) < 1:
        raise InputError(f"--batch takes batch sizes of at least 1, got {list(batches)}")
    if warmup < 0 or iters < 1 or min_seconds < 0:
        raise InputError(f"need warmup >= 0, iters >= 1, min_seconds >= 0; got {warmup}, {iters}, {min_seconds}")
    compile_mode = parse_option(CompileMode, compile_mode, "--compile-mode")
    _check_something_runs(dev, backends, dtypes)
    out = claim_output(None if out is None else Path(out), Path(files.BENCH_DIR), _ours, "prunex bench", force)
    sources = [Path(s) for s in sources]
    models = []
    for source in sources:  # one source = one group: its gated and compressed models and their reference
        loaded = load_pair(source)
        group = [BenchModel(m.name, m.label, str(source), m.module, m.input_shape) for m in loaded]
        group += _reference(reference, loaded[0], str(source))
        if Precision.INT8 in dtypes:
            images, note = _calibration(loaded[0])
            for m in group:
                m.calibration, m.calibration_note = images, note
        models += group
    cl = dev.type == "cuda" if channels_last is None else channels_last
    settings = BenchSettings(dev, backends, list(dtypes), list(batches), cl, warmup, iters, min_seconds, compile_mode)
    return BenchJob(sources, models, settings, out, plots)


INT8_CALIBRATION = 256  # training images each INT8 row of a run is calibrated on


def _calibration(model: LoadedModel) -> tuple[torch.Tensor | None, str]:
    """Training images of the run's dataset to calibrate INT8 rows on, or None and why."""
    try:
        return labelled_images(model.dataset, "train", INT8_CALIBRATION)[0], ""
    except DatasetError as err:
        return None, str(err)


def _grid(backends: Sequence[str] | None, dtypes: Sequence[str]) -> tuple[list[Backend], list[Precision]]:
    """The backends (all when None) and precisions named, as members; InputError naming any unknown word."""
    known = backend_names()
    names = known if backends is None else list(backends)
    unknown = [b for b in names if b not in known] + [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise InputError(
            f"unknown backend or precision: {', '.join(unknown)} (backends: {', '.join(known)}; precisions: "
            f"{', '.join(DTYPES)})"
        )
    if not names:
        raise InputError("--backend names no backend")
    return [Backend(b) for b in names], [Precision(d) for d in dtypes]


def _check_something_runs(dev: torch.device, backends: Sequence[str], dtypes: Sequence[str]) -> None:
    reasons = [unavailable_reason(b, dev, d) for b in backends for d in dtypes]
    if all(reasons):
        grid = f"--backend {','.join(backends)} --precision {','.join(dtypes)}"
        raise InputError(f"nothing to measure on {dev} with {grid}: {'; '.join(dict.fromkeys(reasons))}")


def _reference(choice: str, model: LoadedModel, group: str) -> list[BenchModel]:
    try:
        ref = choose_reference(choice, model.spec)
        module = build_reference(ref) if ref else None
    except (ValueError, TypeError) as err:
        raise InputError(f"--reference: {err}") from err
    if ref is None:
        return []
    return [BenchModel(ref.label, REFERENCE, group, module, model.input_shape)]
