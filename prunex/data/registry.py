"""One entry point for every dataset: ``load_dataset(name, root)`` → train / test splits and their shape."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import torch

from prunex.data.types import DatasetError, ImagePipeline, LoadedData, Normalisation


@dataclass(frozen=True)
class Preprocessing:
    """Choices a dataset's pipeline takes: ``None`` is the dataset's own default."""

    image_size: int | None = None
    augment: bool = True
    normalisation: Normalisation | None = None
    pipeline: ImagePipeline | None = None  # image folders only
    ten_crop: bool = False  # image folders only: test images as their ten crops (fb.resnet.torch's TenCrop)


def _digits(root: Path | None, pre: Preprocessing) -> LoadedData:
    from prunex.data.digits import load_digits

    return load_digits(augment=pre.augment, normalisation=pre.normalisation or Normalisation.CHANNEL)


def _synthetic(root: Path | None, pre: Preprocessing) -> LoadedData:
    from prunex.data.synthetic import load_synthetic

    if pre.normalisation not in (None, Normalisation.CHANNEL):
        raise DatasetError("synthetic images are drawn already standardised; they take no other normalisation")
    return load_synthetic(image_size=pre.image_size or 16)


def _cifar10(root: Path | None, pre: Preprocessing) -> LoadedData:
    from prunex.data.cifar import load_cifar

    return load_cifar(root, 10, augment=pre.augment, normalisation=pre.normalisation or Normalisation.CHANNEL)


def _cifar100(root: Path | None, pre: Preprocessing) -> LoadedData:
    from prunex.data.cifar import load_cifar

    return load_cifar(root, 100, augment=pre.augment, normalisation=pre.normalisation or Normalisation.CHANNEL)


def _imagefolder(root: Path | None, pre: Preprocessing) -> LoadedData:
    from prunex.data.imagefolder import load_imagefolder

    return load_imagefolder(
        root,
        image_size=pre.image_size,
        augment=pre.augment,
        pipeline=pre.pipeline or ImagePipeline.IMAGENET,
        normalisation=pre.normalisation,
        ten_crop=pre.ten_crop,
    )


DATASETS: dict[str, Callable[[Path | None, Preprocessing], LoadedData]] = {
    "digits": _digits,
    "synthetic": _synthetic,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "imagefolder": _imagefolder,
}


def default_workers() -> int:
    """Loader worker processes for datasets read from disk: one per core, at most 8."""
    return min(8, os.cpu_count() or 1)


def _choice(kind: type[StrEnum], value: str | None):
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(c.value for c in kind)
        raise DatasetError(f"{kind.__name__.lower()} must be one of {allowed}, got {value!r}") from None


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    image_size: int | None = None,
    augment: bool = True,
    normalisation: Normalisation | str | None = None,
    pipeline: ImagePipeline | str | None = None,
    ten_crop: bool = False,
) -> LoadedData:
    """Train and test splits of a dataset; ``augment`` applies the training augmentation to the train split;
    ``normalisation`` and (image folders) ``pipeline`` default to the dataset's own; ``ten_crop`` (image folders)
    gives every test image as its ten crops, a (10, C, H, W) tensor."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if pipeline is not None and name != "imagefolder":
        raise DatasetError(f"a pipeline is chosen for image folders only; {name} has its own")
    if ten_crop and name != "imagefolder":
        raise DatasetError(
            f"ten-crop testing crops image folders' larger test images (as ImageNet is tested); the {name} test "
            "images are already the network's size"
        )
    normalisation, pipeline = _choice(Normalisation, normalisation), _choice(ImagePipeline, pipeline)
    pre = Preprocessing(image_size, augment, normalisation, pipeline, ten_crop)
    return DATASETS[name](Path(root).expanduser() if root is not None else None, pre)


def image_shape(info: dict | None) -> tuple[int, int, int]:
    """(C, H, W) of the images a checkpoint's dataset record describes (CIFAR's 3×32×32 when it says nothing)."""
    info = info if isinstance(info, dict) else {}
    chans, size = info.get("in_chans", 3), info.get("image_size", 32)
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 4096 for v in (chans, size)):
        raise DatasetError(f"the dataset record gives no usable image shape ({chans!r} channels, {size!r} px)")
    return (chans, size, size)


def _recorded_dataset(info: dict | None) -> tuple[str, LoadedData]:
    """The dataset a checkpoint's record names (``info``: its "dataset" entry), loaded without augmentation and
    preprocessed as in training, with its name; DatasetError says why it cannot be."""
    info = info if isinstance(info, dict) else {}
    name = info.get("name")
    if not isinstance(name, str) or not name:
        raise DatasetError("the checkpoint names no dataset")
    try:
        data = load_dataset(
            name,
            info.get("root"),
            image_size=info.get("image_size"),
            augment=False,
            normalisation=info.get("normalisation"),
            pipeline=info.get("pipeline"),
        )
    except DatasetError as err:
        raise DatasetError(f"{name} is not readable here: {err}") from err
    return name, data


def labelled_images(info: dict | None, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``n`` images of the ``split`` ("train" or "test") of the dataset a checkpoint names (``info``: its
    "dataset" entry), preprocessed as the model's test inputs (no augmentation), and their labels: a seeded random
    choice, so that image folders (stored class by class) give every class. DatasetError says why they cannot be
    read."""
    name, data = _recorded_dataset(info)
    images = {"train": data.train, "test": data.test}[split]
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[: max(0, n)].tolist()
    if not pick:
        raise DatasetError(f"the {split} split of {name} holds no images")
    samples = [images[i] for i in pick]
    return torch.stack([x for x, _ in samples]), torch.tensor([y for _, y in samples], dtype=torch.long)


def readable_test_images(info: dict | None, n: int) -> tuple[torch.Tensor | None, str]:
    """Up to ``n`` test images of the dataset a checkpoint names (``info``: its "dataset" entry), or None and why."""
    try:
        name, data = _recorded_dataset(info)
    except DatasetError as err:
        return None, str(err)
    return torch.stack([data.test[i][0] for i in range(min(n, len(data.test)))]), name


def calibration_batch(
    name: str,
    root: str | Path | None = None,
    n: int = 32,
    *,
    image_size: int | None = None,
    normalisation: Normalisation | str | None = None,
    pipeline: ImagePipeline | str | None = None,
) -> torch.Tensor:
    """The first ``n`` test images (no augmentation), preprocessed as in training: real inputs for verifying
    compiled models."""
    data = load_dataset(
        name, root, image_size=image_size, augment=False, normalisation=normalisation, pipeline=pipeline
    )
    n = min(n, len(data.test))
    return torch.stack([data.test[i][0] for i in range(n)])
