"""``prunex export --precision int8``: the compressed network quantized after training, calibrated on the run's own
data, validated as a classifier against its fp32 self, and (with tuning) INT8 only where that is faster.

Calibration reads the training split of the dataset the checkpoint records, preprocessed as the model's inputs
(``--calibration N`` images); validation the test split (never the calibration images). The quantizer is ONNX
Runtime's (:mod:`prunex.runtime.onnx_int8`): docs/design.md says why.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prunex.artifacts.errors import InputError
from prunex.data import DatasetError, labelled_images
from prunex.exporters.int8_tuning import NOISE_MARGIN, LayerChoice, Timer, choose_layers, onnxruntime_timer
from prunex.exporters.int8_validation import Int8Thresholds, Int8Validation, validate_int8
from prunex.exporters.sources import LoadedModel
from prunex.exporters.validate import onnxruntime_runner
from prunex.runtime.backends import Backend
from prunex.runtime.choices import Exporter
from prunex.runtime.int8_observer import Observer
from prunex.runtime.onnx_int8 import QuantizeSpec, layer_labels, quantize_int8, quantized_layers
from prunex.runtime.onnx_program import export_onnx


@dataclass(frozen=True)
class Int8Settings:
    calibration: int = 512  # training images the observers see
    validation: int = 1000  # held-out test images the result is judged on (at most the split)
    observer: Observer = Observer.MINMAX
    thresholds: Int8Thresholds = Int8Thresholds()
    tune: bool = False  # keep in floating point the layers whose INT8 form is not faster (ONNX Runtime)
    target_batch: int = 32  # the batch tuning times at

    def __post_init__(self) -> None:
        if self.calibration < 1 or self.validation < 1 or self.target_batch < 1:
            raise InputError(
                f"--calibration, --validation and --target-batch must be at least 1, got {self.calibration}, "
                f"{self.validation}, {self.target_batch}"
            )


@dataclass
class Int8Data:
    """The run's own images: calibration (training split) and held-out validation images with labels."""

    calibration: np.ndarray
    images: torch.Tensor
    labels: torch.Tensor
    source: str  # "digits test split"


def int8_data(loaded: LoadedModel, settings: Int8Settings) -> Int8Data:
    """Read the run's images through the checkpoint's dataset record; one clear InputError when they cannot be."""
    try:
        calibration, _ = labelled_images(loaded.dataset, "train", settings.calibration)
        images, labels = labelled_images(loaded.dataset, "test", settings.validation)
    except DatasetError as err:
        raise InputError(f"INT8 calibration reads the run's own data and cannot: {err}") from err
    if tuple(images.shape[1:]) != tuple(loaded.input_shape):
        raise InputError(
            f"the dataset's images are {list(images.shape[1:])} but the model takes {list(loaded.input_shape)}"
        )
    name = (loaded.dataset or {}).get("name", "dataset")
    return Int8Data(calibration.numpy(), images, labels, f"{name} test split")


@dataclass
class Int8Model:
    """A quantized ONNX model and how it was made."""

    path: Path
    observer: Observer
    calibration_images: int
    quantized: list[str]  # layers (ONNX node names) running in INT8
    kept_float: list[str]  # layers left in floating point by tuning
    layers: list[LayerChoice] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # node name → the PyTorch module it came from
    network_ms: dict[str, float] = field(default_factory=dict)  # fp32 / int8 (every layer) / int8 (tuned)
    network: str = "int8 (every layer)"  # which network was kept

    def label(self, node: str) -> str:
        return self.labels.get(node, node)

    def as_dict(self) -> dict[str, Any]:
        return {
            "observer": self.observer.value,
            "calibration_images": self.calibration_images,
            "quantized_layers": [self.label(n) for n in self.quantized],
            "kept_float": [self.label(n) for n in self.kept_float],
            "tuning": {
                "layers": [{**c.as_dict(), "module": self.label(c.layer)} for c in self.layers],
                "network_ms": self.network_ms,
                "network": self.network,
            }
            if self.layers
            else None,
        }


def quantized_onnx(
    loaded: LoadedModel,
    out: Path,
    data: Int8Data,
    settings: Int8Settings,
    *,
    exporter: Exporter | str = Exporter.DYNAMO,
    opset: int = 18,
    timer: Timer | None = None,
) -> Int8Model:
    """Export ``loaded`` to float ONNX and write its INT8 Q/DQ version to ``out`` (with tuning: INT8 only where
    faster). Every intermediate model stays in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="prunex-int8-") as tmp:
        example = torch.zeros(1, *loaded.input_shape)
        fp32 = export_onnx(loaded.module, example, Path(tmp) / "fp32.onnx", exporter=exporter, opset=opset)
        made = Path(tmp) / "int8.onnx"
        quantize_int8(fp32, made, data.calibration, QuantizeSpec(settings.observer))
        model = Int8Model(
            made, settings.observer, len(data.calibration), quantized_layers(made), [], labels=layer_labels(fp32)
        )
        if settings.tune:
            _tune(model, fp32, data, settings, timer or onnxruntime_timer())
        shutil.copyfile(made, out)
    model.path = out
    return model


def _tune(model: Int8Model, fp32: Path, data: Int8Data, settings: Int8Settings, timer: Timer) -> None:
    """Keep in float the layers not faster in INT8, then time the networks this leaves end to end (every layer
    INT8, the tuned one, none) and keep the fastest: the tuned one unless another is more than the margin faster."""
    model.layers = choose_layers(fp32, model.path, model.quantized, settings.target_batch, timer)
    slower = tuple(c.layer for c in model.layers if not c.int8)
    every = model.path.with_name("every-layer.onnx")
    model.path.replace(every)
    candidates = {"int8 (every layer)": (every, ())}
    if slower and len(slower) < len(model.layers):
        tuned = quantize_int8(
            fp32, model.path.with_name("tuned.onnx"), data.calibration, QuantizeSpec(settings.observer, slower)
        )
        candidates["int8 (tuned)"] = (tuned, slower)
    candidates["none (fp32)"] = (fp32, tuple(model.quantized))
    x = np.random.default_rng(0).standard_normal((settings.target_batch, *data.images.shape[1:])).astype(np.float32)
    times = dict(zip(candidates, timer([(path, x) for path, _ in candidates.values()]), strict=True))
    preferred = "int8 (tuned)" if "int8 (tuned)" in times else "int8 (every layer)" if not slower else "none (fp32)"
    best = min(times, key=times.__getitem__)
    chosen = best if times[best] < (1 - NOISE_MARGIN) * times[preferred] else preferred
    path, kept_float = candidates[chosen]
    shutil.copyfile(path, model.path)
    model.network_ms, model.network = times, chosen
    model.quantized = [n for n in model.quantized if n not in kept_float]
    model.kept_float = list(kept_float)


def validate_onnx_int8(loaded: LoadedModel, path: Path, data: Int8Data, settings: Int8Settings) -> Int8Validation:
    """The quantized model at ``path`` under ONNX Runtime (its int8 kernels) against the fp32 PyTorch model."""
    run = onnxruntime_runner(str(path))
    return validate_int8(
        Backend.ONNXRUNTIME, run, loaded.module, data.images, data.labels, settings.thresholds, data.source
    )


@dataclass(frozen=True)
class Int8Export:
    """What an INT8 export needs besides the model: its settings and the run's images (read before any work)."""

    settings: Int8Settings
    data: Int8Data
