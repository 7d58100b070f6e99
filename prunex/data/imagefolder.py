"""ImageNet / Mini-ImageNet style folders: ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg, read through
one of two pipelines (:class:`~prunex.data.types.ImagePipeline`):

- ``imagenet`` (fb.resnet.torch, which MaskConnect, Multi-ResNet and SparseNet train with): random resized crop,
  colour jitter (brightness, contrast, saturation ±0.4), AlexNet's PCA lighting noise (σ = 0.1), ImageNet
  standardisation, horizontal flip; test: resize to 8/7 of the size and centre crop.
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
# The principal components of ImageNet's RGB pixels (fb.resnet.torch, after Krizhevsky et al.): eigenvalues and
# eigenvectors (columns), for the lighting noise.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
JITTER = 0.4  # brightness, contrast and saturation factors drawn from [0.6, 1.4]
LIGHTING_STD = 0.1
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
    ten_crop: bool = False,
) -> LoadedData:
    """Train and test splits of an image folder; ``image_size`` defaults to 224 (imagenet) or 64 (mini-imagenet),
    ``normalisation`` to the pipeline's own (channel; pixel-mean); ``ten_crop``: each test image is resized as for
    the centre crop and given as its ten crops (:class:`TenCrops`)."""
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
        test_tf = resize + normalise + [TenCrops(image_size) if ten_crop else transforms.CenterCrop(image_size)]
    else:
        normalise = [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
        test_crop = [transforms.Resize(image_size * 8 // 7), transforms.CenterCrop(image_size)]
        train_tf = imagenet_augmentation(image_size) if augment else test_crop + normalise
        test_tf = test_crop + normalise
        if ten_crop:
            test_tf = [transforms.Resize(image_size * 8 // 7), *normalise, TenCrops(image_size)]
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


class TenCrops:
    """A (C, H, W) tensor → its ten ``size`` × ``size`` crops stacked, (10, C, size, size): the four corners and the
    centre, then the same of the horizontally flipped image (torchvision's ``TenCrop``, as fb.resnet.torch tests)."""

    def __init__(self, size: int) -> None:
        self.crop = transforms.TenCrop(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.crop(x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.crop.size})"


def imagenet_augmentation(image_size: int) -> list:
    """fb.resnet.torch's training transforms, in its order: random resized crop, colour jitter, lighting noise,
    standardisation, horizontal flip."""
    return [
        transforms.RandomResizedCrop(image_size),
        transforms.ColorJitter(brightness=JITTER, contrast=JITTER, saturation=JITTER),
        transforms.ToTensor(),
        Lighting(LIGHTING_STD),
        transforms.Normalize(MEAN, STD),
        transforms.RandomHorizontalFlip(),
    ]


class Lighting:
    """AlexNet's PCA lighting noise on a (3, H, W) RGB tensor: x_c += Σ_j V[c, j] · α_j · λ_j with α ~ N(0, σ²)
    drawn once per image, λ and V the eigenvalues and eigenvectors of ImageNet's pixel covariance."""

    def __init__(self, std: float, generator: torch.Generator | None = None) -> None:
        self.std, self.generator = std, generator
        self.eigval = torch.tensor(PCA_EIGVAL)
        self.eigvec = torch.tensor(PCA_EIGVEC)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.std == 0:
            return x
        alpha = torch.randn(3, generator=self.generator) * self.std
        rgb = self.eigvec @ (alpha * self.eigval)
        return x + rgb.to(x.dtype)[:, None, None]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(std={self.std})"


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
