"""What a dataset loader returns, and the error for a dataset that cannot be read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from torch.utils.data import Dataset

from prunex.artifacts.errors import InputError


class DatasetError(InputError):
    """A dataset that cannot be read: the message names the expected layout."""


class Normalisation(StrEnum):
    """How pixels are normalised: ``channel``: (x − μ_c) / σ_c with the training split's per-channel statistics;
    ``pixel-mean``: x − the training split's mean image (Krizhevsky et al.; MaskConnect E.1, E.3)."""

    CHANNEL = "channel"
    PIXEL_MEAN = "pixel-mean"


class ImagePipeline(StrEnum):
    """An image folder's pipeline. ``imagenet``: random resized crops of ``image_size`` and flips, test resize to
    8/7 and centre crop, channel standardisation. ``mini-imagenet`` (MaskConnect E.3): images scaled to 84×84
    (for 64-pixel crops; 84/64 of ``image_size`` in general), random crops and flips, centre crop at test."""

    IMAGENET = "imagenet"
    MINI_IMAGENET = "mini-imagenet"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    in_chans: int
    image_size: int
    normalisation: str = Normalisation.CHANNEL.value
    pipeline: str | None = None  # image folders only: an ImagePipeline value


@dataclass
class LoadedData:
    info: DatasetInfo
    train: Dataset
    test: Dataset
