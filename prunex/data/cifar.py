"""CIFAR-10 / CIFAR-100 from a local directory in torchvision's format (never downloaded).

Training augmentation as in the papers: 4-pixel zero padding, random 32×32 crop, horizontal flip; per-channel
standardisation, or the training split's mean image subtracted (``pixel-mean``, MaskConnect E.1; pixels in
[0, 1]). The images are held in memory as one uint8 tensor (:class:`TensorImages`), so training draws
and augments whole batches on its device.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import datasets

from prunex.data.tensor_images import NO_AUGMENTATION, Augmentation, TensorImages
from prunex.data.types import DatasetError, DatasetInfo, LoadedData, Normalisation

STATS = {  # per-channel mean / std of the training images
    10: ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    100: ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
FOLDERS = {
    10: ("cifar-10-batches-py", "data_batch_1 … data_batch_5, test_batch, batches.meta"),
    100: ("cifar-100-python", "train, test, meta"),
}


def layout(classes: int) -> str:
    folder, files = FOLDERS[classes]
    return f"ROOT/{folder}/ holding {files} (the python version from https://www.cs.toronto.edu/~kriz/cifar.html)"


def load_cifar(
    root: Path | None, classes: int, *, augment: bool = True, normalisation: Normalisation = Normalisation.CHANNEL
) -> LoadedData:
    name = f"cifar{classes}"
    if root is None:
        raise DatasetError(f"{name} is read from a local directory: pass --data-root ROOT with {layout(classes)}")
    folder = root / FOLDERS[classes][0]
    if not folder.is_dir():
        raise DatasetError(f"{name}: {folder} does not exist; expected {layout(classes)}")
    cls = datasets.CIFAR10 if classes == 10 else datasets.CIFAR100
    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise DatasetError(
            f"{name}: the files in {folder} are missing or do not match CIFAR's checksums ({err}); "
            f"expected {layout(classes)}"
        ) from None

    def images(split) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous(), torch.as_tensor(split.targets)

    train_images, test_images = images(train), images(test)
    if normalisation is Normalisation.PIXEL_MEAN:
        # NOTE: Krizhevsky et al. subtract the mean image before padding and cropping; the batch pipeline crops raw
        # uint8 images on the device and subtracts after, so a shifted crop meets the mean of the pixels it lands on
        # (CIFAR's mean image is smooth) and the zero border is black, not the mean.
        mean, std = train_images[0].float().mean(0), 255.0
    else:
        mean, std = ([255 * v for v in stat] for stat in STATS[classes])  # of the uint8 pixels
    augmentation = Augmentation(pad=4, flip=True) if augment else NO_AUGMENTATION
    return LoadedData(
        DatasetInfo(name, classes, 3, 32, normalisation=normalisation.value),
        TensorImages(*train_images, mean, std, augmentation),
        TensorImages(*test_images, mean, std),
    )
