"""scikit-learn's bundled handwritten digits (UCI, 1,797 8×8 grey images, 10 classes): the offline default.

Fixed split: a seeded permutation puts 1,437 images in train and 360 in test. Pixels (0–16) are scaled to
[0, 1] and standardised with the train split's mean and std; training augmentation is a random shift of up to
one pixel, the uncovered border background.
"""

from __future__ import annotations

import torch

from prunex.data.tensor_images import NO_AUGMENTATION, Augmentation, TensorImages
from prunex.data.types import DatasetInfo, LoadedData, Normalisation

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def load_digits(*, augment: bool = True, normalisation: Normalisation = Normalisation.CHANNEL) -> LoadedData:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(TEST_FRACTION * len(labels))
    test_idx, train_idx = order[:n_test], order[n_test:]
    mean, std = float(images[train_idx].mean()), float(images[train_idx].std())
    if normalisation is Normalisation.PIXEL_MEAN:
        mean, std = images[train_idx].mean(0), 1.0
    info = DatasetInfo("digits", 10, 1, 8, normalisation=normalisation.value)
    shift = Augmentation(pad=1) if augment else NO_AUGMENTATION  # the uncovered border is background (0)
    return LoadedData(
        info,
        TensorImages(images[train_idx], labels[train_idx], mean, std, shift),
        TensorImages(images[test_idx], labels[test_idx], mean, std),
    )
