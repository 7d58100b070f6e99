"""What `prunex export` and `prunex bench` accept: a compressed model directory, a training checkpoint (the gated
network frozen as it would ship without prunex), or a run directory holding either."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from prunex.artifacts import layout as files
from prunex.artifacts.compressed_model import load_compressed, read_metadata
from prunex.artifacts.errors import InputError
from prunex.artifacts.model_spec import ModelSpec
from prunex.data import image_shape


@dataclass
class LoadedModel:
    label: str  # "compressed" or "gated"
    module: nn.Module
    input_shape: tuple[int, int, int]  # (C, H, W)
    path: Path
    dataset: dict[str, Any] | None
    name: str  # registered model name
    spec: ModelSpec  # how the (gated) model was built


def _shape(dataset: dict[str, Any] | None, fallback: list | None) -> tuple[int, int, int]:
    if fallback and len(fallback) == 4 and all(isinstance(d, int) and 0 < d <= 4096 for d in fallback[1:]):
        return tuple(fallback[1:])
    return image_shape(dataset)


def load_compressed_model(directory: Path, label: str = "compressed") -> LoadedModel:
    meta = read_metadata(directory)
    try:
        spec = ModelSpec.from_dict(meta["source"]) if "source" in meta else ModelSpec("?")
    except ValueError as err:
        raise InputError(f"{directory / files.MODEL_SPEC}: its 'source' is not a model spec ({err})") from None
    return LoadedModel(
        label,
        load_compressed(directory),
        _shape(meta.get("dataset"), meta.get("input_shape")),
        directory,
        meta.get("dataset"),
        spec.name,
        spec,
    )


def load_gated_model(checkpoint: Path) -> LoadedModel:
    from prunex.models.from_checkpoint import model_from_checkpoint
    from prunex.passes.graph import freeze

    model, ckpt = model_from_checkpoint(checkpoint)
    spec = ModelSpec.from_dict(ckpt["spec"])
    return LoadedModel(
        "gated", freeze(model), _shape(ckpt.get("dataset"), None), checkpoint, ckpt.get("dataset"), spec.name, spec
    )


def source_files(path: str | Path) -> list[Path]:
    """The files :func:`load_model` reads for ``path`` (and ``path`` itself), which no output may replace."""
    path = Path(path)
    if path.is_dir() and files.is_compressed_dir(path):
        return [path, path / files.MODEL_SPEC, path / files.MODEL_WEIGHTS, path / files.REPORT]
    if path.is_dir():
        return [path, path / files.CHECKPOINT]
    return [path]


def load_model(path: str | Path) -> LoadedModel:
    """A compressed directory → the compressed network; a checkpoint or run directory → the frozen gated one."""
    path = Path(path)
    if path.is_dir() and files.is_compressed_dir(path):
        return load_compressed_model(path)
    return load_gated_model(path)


def load_pair(path: str | Path) -> list[LoadedModel]:
    """For a run directory or checkpoint: the gated model and every compressed version in the run directory
    (``compressed``, ``compressed-tuned``, … labelled by directory name)."""
    path = Path(path)
    if path.is_dir() and files.is_compressed_dir(path):
        return [load_compressed_model(path)]
    models = [load_gated_model(path)]
    run_dir = files.RunDirectory.of(path).path
    for sub in sorted(run_dir.glob("compressed*")):
        if sub.is_dir() and files.is_compressed_dir(sub):
            models.append(load_compressed_model(sub, sub.name))
    return models
