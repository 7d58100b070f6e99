"""Synthetic images for smoke tests: each class is a fixed random template plus Gaussian noise (learnable)."""

from __future__ import annotations

import torch

from prunex.data.tensor_images import TensorImages
from prunex.data.types import DatasetInfo, LoadedData

NUM_CLASSES, IN_CHANS, TRAIN_SIZE, TEST_SIZE, NOISE = 10, 3, 512, 256, 0.5


def load_synthetic(*, image_size: int = 16) -> LoadedData:
    g = torch.Generator().manual_seed(0)
    templates = torch.randn(NUM_CLASSES, IN_CHANS, image_size, image_size, generator=g)

    def split(n: int) -> TensorImages:
        labels = torch.arange(n) % NUM_CLASSES
        images = templates[labels] + NOISE * torch.randn(n, IN_CHANS, image_size, image_size, generator=g)
        return TensorImages(images, labels)

    return LoadedData(DatasetInfo("synthetic", NUM_CLASSES, IN_CHANS, image_size), split(TRAIN_SIZE), split(TEST_SIZE))
