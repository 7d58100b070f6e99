"""``prunex compress`` as a function: a run's checkpoint → a verified compressed model in its directory.

    job = prepare_compress("runs/r")          # checks every option and the output directory, loads the model
    result = job.run()                        # compiles, verifies every pass, writes RUN/compressed/ atomically

Nothing is written until every pass is verified; a failed verification raises
:class:`~prunex.passes.PassVerificationError` after writing its diff report (``failure.json`` in a directory that
holds no model, else ``OUT.failure.json`` beside it, so an earlier model stays).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn

from prunex.artifacts import atomic_directory, atomic_write_text, check_replaceable
from prunex.artifacts import layout as files
from prunex.artifacts.compressed_model import save_compressed
from prunex.artifacts.compression_report import CompressionReport, ReferenceRecord
from prunex.artifacts.errors import InputError
from prunex.artifacts.model_spec import ModelSpec
from prunex.artifacts.tuning_cache import check_tuning_cache
from prunex.data import image_shape, readable_test_images
from prunex.inspection import draw_pictures
from prunex.models.from_checkpoint import model_from_checkpoint
from prunex.models.references import default_reference, reference_cost
from prunex.passes import CompressOptions, PassVerificationError, default_passes
from prunex.passes import compress as compile_model
from prunex.passes.runner import PassRecord
from prunex.passes.tuning import TuneTarget
from prunex.runtime.choices import TuneMode, parse_option
from prunex.runtime.devices import pick_device


def calibration_inputs(ckpt: dict[str, Any], n: int) -> tuple[torch.Tensor, str]:
    """Up to ``n`` real test images of the checkpoint's dataset plus as many random ones, and where they came from."""
    info = ckpt.get("dataset") or {}
    noise = torch.randn(n, *image_shape(info), generator=torch.Generator().manual_seed(0))
    real, source = readable_test_images(info, n)
    if real is None:
        return noise, f"random ({source})"
    return torch.cat([real, noise[: len(real)]]), f"{len(real)} {source} test images + {len(real)} random"


def _ours(name: str) -> bool:
    return name in files.COMPRESSED_FILES or name == files.FAILURE or files.is_picture(name)


def holds_compressed_model(out: Path, force: bool) -> bool:
    """Whether ``out`` holds a compressed model — which only ``force`` lets a new one replace; a directory holding
    files compress did not write is never replaced."""
    check_replaceable(out, _ours, "prunex compress")
    taken = [f for f in files.COMPRESSED_FILES if (out / f).exists()]
    if taken and not force:
        raise InputError(f"{out} already holds a compressed model ({', '.join(taken)}); pass --force to replace it")
    return bool(taken)


def write_failure(out: Path, holds_model: bool, report: dict[str, Any]) -> Path:
    text = json.dumps(report, indent=2) + "\n"
    if holds_model:
        return atomic_write_text(out.parent / f"{out.name}.{files.FAILURE}", text)
    with atomic_directory(out, replace=True) as tmp:
        atomic_write_text(tmp / files.FAILURE, text)
    return out / files.FAILURE


@dataclass
class CompressResult:
    out: Path
    model: fx.GraphModule
    report: CompressionReport
    pictures: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class CompressJob:
    """Everything checked and loaded; :meth:`run` does the work."""

    checkpoint: Path
    out: Path
    model: nn.Module
    ckpt: dict[str, Any]
    calibration: torch.Tensor
    source: str  # what the calibration images are, in words
    options: CompressOptions
    holds_model: bool
    plots: bool

    @property
    def spec(self) -> ModelSpec:
        """How the gated model was built, as its checkpoint says."""
        return ModelSpec.from_dict(self.ckpt["spec"])

    @property
    def steps(self) -> int:
        """Passes the run goes through (freeze and the realisation choice included), for a progress bar."""
        passes = default_passes(self.options, example_shape=tuple(self.calibration.shape[1:]))
        return len(passes) + 1 + (self.options.tune is not TuneMode.OFF)

    def run(self, on_pass: Callable[[PassRecord], None] | None = None) -> CompressResult:
        with atomic_directory(self.out, replace=True) as tmp:
            try:
                gm, report = compile_model(
                    self.model,
                    self.calibration[:1],
                    calibration=self.calibration,
                    options=self.options,
                    on_pass=on_pass,
                )
            except PassVerificationError as err:
                path = write_failure(self.out, self.holds_model, err.report)
                kept = f"; the compressed model in {self.out} is unchanged" if self.holds_model else ""
                raise PassVerificationError(f"{err}\ndiff report: {path}{kept}", err.report) from None
            report.reference = _reference_cost(self.spec, report.input_chw)
            report.checkpoint, report.calibration = str(self.checkpoint), self.source
            meta = {
                "source": self.spec.to_dict(),
                "input_shape": report.input_shape,
                "dataset": self.ckpt.get("dataset"),
                "totals": asdict(report.totals),
            }
            save_compressed(gm, tmp, meta)
            report.write(tmp / files.REPORT)
            warnings = list(report.warnings)
            pictures: list[Path] = []
            if self.plots:
                pictures, missing = draw_pictures(self.model, tmp, report, ("svg", "png"))
                warnings += [f"no pictures: {missing}"] if missing else []
        return CompressResult(self.out, gm, report, [self.out / p.name for p in pictures], warnings)


def _reference_cost(spec: ModelSpec, input_shape: tuple[int, ...]) -> ReferenceRecord | None:
    """What the network ``prunex bench`` times beside this one costs at the same input (None if it has none)."""
    reference = default_reference(spec)
    if reference is None:
        return None
    cost = reference_cost(reference, input_shape)
    return ReferenceRecord(cost.label, cost.params, cost.macs)


def prepare_compress(
    checkpoint: str | Path,
    *,
    out: str | Path | None = None,
    force: bool = False,
    fold_bn: bool = True,
    merge: bool = True,
    tolerance: float = 1e-4,
    calibration: int = 32,
    tune: TuneMode | str = TuneMode.OFF,
    target: TuneTarget | None = None,
    tuning_cache: str | Path | None = None,
    plots: bool = False,
) -> CompressJob:
    """Check every option and the output directory (default ``RUN/compressed``) before any work, load the model."""
    tune = parse_option(TuneMode, tune, "--tune")
    if tolerance < 0 or calibration < 1:
        raise InputError(f"tolerance must be >= 0 and calibration >= 1, got {tolerance} and {calibration}")
    target = target or TuneTarget()
    if tune is not TuneMode.OFF:
        pick_device(target.device)  # a missing CUDA device is reported before any work
        check_tuning_cache(tuning_cache)  # a path that is not a prunex tuning cache is refused, never moved
    checkpoint = Path(checkpoint)
    model, ckpt = model_from_checkpoint(checkpoint)
    out = Path(out) if out is not None else files.RunDirectory.of(checkpoint).compressed
    holds_model = holds_compressed_model(out, force)
    x, source = calibration_inputs(ckpt, calibration)
    options = CompressOptions(
        fold_bn=fold_bn,
        merge_branches=merge,
        tolerance=tolerance,
        tune=tune,
        target=target,
        tuning_cache=str(tuning_cache) if tuning_cache else None,
    )
    return CompressJob(checkpoint, out, model, ckpt, x, source, options, holds_model, plots)


def compress_run(checkpoint: str | Path, **options: Any) -> CompressResult:
    """``prunex compress CHECKPOINT``: :func:`prepare_compress` (same keyword arguments), then run it."""
    on_pass = options.pop("on_pass", None)
    return prepare_compress(checkpoint, **options).run(on_pass)
