"""ImageNet / Mini-ImageNet style folders: ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg, read through
one of two pipelines (:class:`~prunex.data.types.ImagePipeline`):

- ``imagenet``: random resized crop and horizontal flip; test: resize to 8/7 of the size and centre crop; ImageNet
  standardisation.
- ``mini-imagenet`` (MaskConnect E.3): every image scaled to 84×84 (84/64 of ``image_size``), the training split's
  mean image subtracted, a random 64×64 crop or its flip; test: the centre crop.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision import datasets, transforms

from prunex.data.types import DatasetError, DatasetInfo, ImagePipeline, LoadedData, Normalisation

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LAYOUT = "ROOT/train/<class>/<image> and ROOT/val/<class>/<image> (ROOT/test/ is accepted for val)"


def read_image(path: str) -> Image.Image:
    """An RGB image, or a DatasetError naming the file that cannot be read."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DatasetError(f"imagefolder: cannot read {path}: {err}") from None


def load_imagefolder(
    root: Path | None,
    *,
    image_size: int | None = None,
    augment: bool = True,
    pipeline: ImagePipeline = ImagePipeline.IMAGENET,
    normalisation: Normalisation | None = None,
) -> LoadedData:
    """Train and test splits of an image folder; ``image_size`` defaults to 224 (imagenet) or 64 (mini-imagenet),
    ``normalisation`` to the pipeline's own (channel; pixel-mean)."""
    if root is None:
        raise DatasetError(f"imagefolder is read from a local directory: pass --data-root ROOT with {LAYOUT}")
    mini = pipeline is ImagePipeline.MINI_IMAGENET
    image_size = image_size or (64 if mini else 224)
    normalisation = normalisation or (Normalisation.PIXEL_MEAN if mini else Normalisation.CHANNEL)
    if normalisation is Normalisation.PIXEL_MEAN and not mini:
        raise DatasetError("pixel-mean normalisation needs fixed-size images: use --pipeline mini-imagenet")
    train_dir = root / "train"
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise DatasetError(
            f"imagefolder: {root} lacks {'train/' if not train_dir.is_dir() else 'val/'}; expected {LAYOUT}"
        )
    if mini:
        scaled = round(image_size * 84 / 64)
        resize = [transforms.Resize((scaled, scaled)), transforms.ToTensor()]
        if normalisation is Normalisation.PIXEL_MEAN:
            normalise = [SubtractImage(mean_image(train_dir, transforms.Compose(resize)))]
        else:
            normalise = [transforms.Normalize(MEAN, STD)]
        crop = [transforms.RandomCrop(image_size), transforms.RandomHorizontalFlip()] if augment else []
        train_tf = resize + normalise + (crop or [transforms.CenterCrop(image_size)])
        test_tf = resize + normalise + [transforms.CenterCrop(image_size)]
    else:
        normalise = [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
        test_crop = [transforms.Resize(image_size * 8 // 7), transforms.CenterCrop(image_size)]
        augmented = [transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip()]
        train_tf = (augmented if augment else test_crop) + normalise
        test_tf = test_crop + normalise
    try:
        train = datasets.ImageFolder(str(train_dir), transform=transforms.Compose(train_tf), loader=read_image)
        test = datasets.ImageFolder(str(test_dir), transform=transforms.Compose(test_tf), loader=read_image)
    except (FileNotFoundError, RuntimeError) as err:
        raise DatasetError(f"imagefolder: {err}; expected {LAYOUT}") from None
    if train.classes != test.classes:
        raise DatasetError(
            f"imagefolder: train/ has {len(train.classes)} classes but {test_dir.name}/ has {len(test.classes)}; "
            "both need the same class folders"
        )
    info = DatasetInfo("imagefolder", len(train.classes), 3, image_size, normalisation.value, pipeline.value)
    return LoadedData(info, train, test)


class SubtractImage:
    """x − mean, for a (C, H, W) tensor image and a mean image of the same shape."""

    def __init__(self, mean: torch.Tensor) -> None:
        self.mean = mean

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.mean


def mean_image(train_dir: Path, scale: transforms.Compose) -> torch.Tensor:
    """The mean of the training images after ``scale`` (one pass over the split)."""
    images = datasets.ImageFolder(str(train_dir), transform=scale, loader=read_image)
    if not len(images):
        raise DatasetError(f"imagefolder: {train_dir} holds no images")
    total = None
    for x, _ in images:
        total = x.clone() if total is None else total.add_(x)
    return total / len(images)
