"""ImageNet / mini-ImageNet style folders: ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg.

Training: random resized crop and horizontal flip; test: resize to 8/7 of the size and centre crop; ImageNet
standardisation.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from torchvision import datasets, transforms

from prunex.data.types import DatasetError, DatasetInfo, LoadedData

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LAYOUT = "ROOT/train/<class>/<image> and ROOT/val/<class>/<image> (ROOT/test/ is accepted for val)"


def read_image(path: str) -> Image.Image:
    """An RGB image, or a DatasetError naming the file that cannot be read."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DatasetError(f"imagefolder: cannot read {path}: {err}") from None


def load_imagefolder(root: Path | None, *, image_size: int = 224, augment: bool = True) -> LoadedData:
    if root is None:
        raise DatasetError(f"imagefolder is read from a local directory: pass --data-root ROOT with {LAYOUT}")
    train_dir = root / "train"
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise DatasetError(
            f"imagefolder: {root} lacks {'train/' if not train_dir.is_dir() else 'val/'}; expected {LAYOUT}"
        )
    normalise = [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    if augment:
        train_tf = [transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip()]
    else:
        train_tf = [transforms.Resize(image_size * 8 // 7), transforms.CenterCrop(image_size)]
    test_tf = [transforms.Resize(image_size * 8 // 7), transforms.CenterCrop(image_size)]
    try:
        train = datasets.ImageFolder(
            str(train_dir), transform=transforms.Compose(train_tf + normalise), loader=read_image
        )
        test = datasets.ImageFolder(str(test_dir), transform=transforms.Compose(test_tf + normalise), loader=read_image)
    except (FileNotFoundError, RuntimeError) as err:
        raise DatasetError(f"imagefolder: {err}; expected {LAYOUT}") from None
    if train.classes != test.classes:
        raise DatasetError(
            f"imagefolder: train/ has {len(train.classes)} classes but {test_dir.name}/ has {len(test.classes)}; "
            "both need the same class folders"
        )
    return LoadedData(DatasetInfo("imagefolder", len(train.classes), 3, image_size), train, test)
