"""What a dataset loader returns, and the error for a dataset that cannot be read."""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from prunex.artifacts.errors import InputError


class DatasetError(InputError):
    """A dataset that cannot be read: the message names the expected layout."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    in_chans: int
    image_size: int


@dataclass
class LoadedData:
    info: DatasetInfo
    train: Dataset
    test: Dataset
