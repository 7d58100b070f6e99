"""One entry point for every dataset: ``load_dataset(name, root)`` → train / test splits and their shape."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from prunex.data.types import DatasetError, LoadedData


def _digits(root: Path | None, image_size: int | None, augment: bool) -> LoadedData:
    from prunex.data.digits import load_digits

    return load_digits(augment=augment)


def _synthetic(root: Path | None, image_size: int | None, augment: bool) -> LoadedData:
    from prunex.data.synthetic import load_synthetic

    return load_synthetic(image_size=image_size or 16)


def _cifar10(root: Path | None, image_size: int | None, augment: bool) -> LoadedData:
    from prunex.data.cifar import load_cifar

    return load_cifar(root, 10, augment=augment)


def _cifar100(root: Path | None, image_size: int | None, augment: bool) -> LoadedData:
    from prunex.data.cifar import load_cifar

    return load_cifar(root, 100, augment=augment)


def _imagefolder(root: Path | None, image_size: int | None, augment: bool) -> LoadedData:
    from prunex.data.imagefolder import load_imagefolder

    return load_imagefolder(root, image_size=image_size or 224, augment=augment)


DATASETS: dict[str, Callable[[Path | None, int | None, bool], LoadedData]] = {
    "digits": _digits,
    "synthetic": _synthetic,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "imagefolder": _imagefolder,
}


def default_workers() -> int:
    """Loader worker processes for datasets read from disk: one per core, at most 8."""
    return min(8, os.cpu_count() or 1)


def load_dataset(
    name: str, root: str | Path | None = None, *, image_size: int | None = None, augment: bool = True
) -> LoadedData:
    """Train and test splits of a dataset; ``augment`` applies the training augmentation to the train split."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name](Path(root).expanduser() if root is not None else None, image_size, augment)


def image_shape(info: dict | None) -> tuple[int, int, int]:
    """(C, H, W) of the images a checkpoint's dataset record describes (CIFAR's 3×32×32 when it says nothing)."""
    info = info if isinstance(info, dict) else {}
    chans, size = info.get("in_chans", 3), info.get("image_size", 32)
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 4096 for v in (chans, size)):
        raise DatasetError(f"the dataset record gives no usable image shape ({chans!r} channels, {size!r} px)")
    return (chans, size, size)


def readable_test_images(info: dict | None, n: int) -> tuple[torch.Tensor | None, str]:
    """Up to ``n`` test images of the dataset a checkpoint names (``info``: its "dataset" entry), or None and why."""
    info = info if isinstance(info, dict) else {}
    if not isinstance(info.get("name"), str) or not info["name"]:
        return None, "the checkpoint names no dataset"
    try:
        return calibration_batch(info["name"], info.get("root"), n), info["name"]
    except DatasetError as err:
        return None, f"{info['name']} is not readable here: {err}"


def calibration_batch(name: str, root: str | Path | None = None, n: int = 32) -> torch.Tensor:
    """The first ``n`` test images (no augmentation): real inputs for verifying compiled models."""
    data = load_dataset(name, root, augment=False)
    n = min(n, len(data.test))
    return torch.stack([data.test[i][0] for i in range(n)])
