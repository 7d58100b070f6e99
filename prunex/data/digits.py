"""scikit-learn's bundled handwritten digits (UCI, 1,797 8×8 grey images, 10 classes): the offline default.

Fixed split: a seeded permutation puts 1,437 images in train and 360 in test. Pixels (0–16) are scaled to
[0, 1] and standardised with the train split's mean and std; training augmentation is a random shift of up to
one pixel.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from prunex.data.registry import DatasetInfo, LoadedData

SPLIT_SEED = 0
TEST_FRACTION = 0.2


class TensorImages(Dataset):
    """Images (N, C, H, W) and labels held in memory; optional random shift by up to ``shift`` pixels, the
    uncovered border filled with ``fill`` (the background value)."""

    def __init__(self, images: Tensor, labels: Tensor, shift: int = 0, fill: float = 0.0) -> None:
        self.images, self.labels, self.shift, self.fill = images, labels, shift, fill

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self.images[i]
        if self.shift:
            dy, dx = torch.randint(-self.shift, self.shift + 1, (2,)).tolist()
            x = torch.roll(x, (dy, dx), (1, 2))
            if dy:
                x[:, (0 if dy > 0 else dy) : (dy if dy > 0 else None)] = self.fill
            if dx:
                x[:, :, (0 if dx > 0 else dx) : (dx if dx > 0 else None)] = self.fill
        return x, int(self.labels[i])


def load_digits(*, augment: bool = True) -> LoadedData:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(TEST_FRACTION * len(labels))
    test_idx, train_idx = order[:n_test], order[n_test:]
    mean, std = images[train_idx].mean(), images[train_idx].std()
    images = (images - mean) / std
    info = DatasetInfo("digits", 10, 1, 8)
    return LoadedData(
        info,
        TensorImages(images[train_idx], labels[train_idx], shift=1 if augment else 0, fill=float(-mean / std)),
        TensorImages(images[test_idx], labels[test_idx]),
    )
