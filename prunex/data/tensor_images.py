"""Image datasets held in memory as one tensor, augmented a whole batch at a time on the training device.

Augmentation is the papers': zero padding by ``pad`` pixels, a random crop back to the image size (for the
digits, a shift by up to ``pad`` pixels) and, optionally, a horizontal flip. Pixels are stored raw (uint8 or
float) and standardised after augmentation, so the padding is black, as torchvision's ``RandomCrop`` pads.

:class:`DeviceBatches` moves a split to the device once and then draws every batch there: one index-select for
the batch, one gather for all crops and flips, one affine map for the standardisation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset


@dataclass(frozen=True)
class Augmentation:
    """Random crop of the image zero-padded by ``pad`` pixels (a shift by up to ``pad``), and a horizontal flip
    with probability 1/2 when ``flip``."""

    pad: int = 0
    flip: bool = False

    @property
    def active(self) -> bool:
        return self.pad > 0 or self.flip


NO_AUGMENTATION = Augmentation()


def crop_and_flip(raw: Tensor, pad: int, offsets: Tensor, flips: Tensor | None = None) -> Tensor:
    """Crop image n of a batch (N, C, H, W), zero-padded by ``pad``, at rows o_n … o_n + H − 1 and columns
    o'_n … o'_n + W − 1 (``offsets`` (N, 2) = (o, o') in [0, 2·pad]), mirrored where ``flips`` (N,) is set.

    One gather from the padded batch: row y reads padded row o_n + y, column x reads o'_n + x, or o'_n + W − 1 − x
    when flipped. The result is channels-last.
    """
    n, _, h, w = raw.shape
    dev = raw.device
    padded = torch.nn.functional.pad(raw, (pad, pad, pad, pad)) if pad else raw
    cols = torch.arange(w, device=dev)
    if flips is not None:
        cols = torch.where(flips[:, None], w - 1 - cols, cols)
    rows = offsets[:, :1] + torch.arange(h, device=dev)
    cols = offsets[:, 1:] + cols
    batch = torch.arange(n, device=dev)[:, None, None]
    # advanced indexing puts the indexed dims first: (N, H, W, C), i.e. a channels-last (N, C, H, W)
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def augment(raw: Tensor, augmentation: Augmentation, generator: torch.Generator | None = None) -> Tensor:
    """:func:`crop_and_flip` with offsets and flips drawn per image on ``raw``'s device (from ``generator`` or the
    device's default generator)."""
    n, dev = len(raw), raw.device
    offsets = torch.randint(0, 2 * augmentation.pad + 1, (n, 2), device=dev, generator=generator)
    flips = torch.rand(n, device=dev, generator=generator) < 0.5 if augmentation.flip else None
    return crop_and_flip(raw, augmentation.pad, offsets, flips)


class TensorImages(Dataset):
    """Raw images (N, C, H, W) and labels in memory; x = (raw − mean) / std after augmentation.

    ``mean`` and ``std`` are per channel (or one value for all); ``mean`` may be an image (C, H, W), subtracted
    pixel by pixel. Indexing gives single standardised images
    (augmented with the global CPU generator), as a ``Dataset`` should; :class:`DeviceBatches` is the fast path.
    """

    def __init__(
        self,
        raw: Tensor,
        labels: Tensor,
        mean: Sequence[float] | float | Tensor = 0.0,
        std: Sequence[float] | float = 1.0,
        augmentation: Augmentation = NO_AUGMENTATION,
    ) -> None:
        if raw.dim() != 4 or len(raw) != len(labels):
            raise ValueError(f"expected images (N, C, H, W) and N labels, got {tuple(raw.shape)} and {len(labels)}")
        c = raw.shape[1]
        self.raw, self.labels, self.augmentation = raw, labels.long(), augmentation
        mean = torch.as_tensor(mean, dtype=torch.float32)
        if mean.dim() == 3:
            if mean.shape != raw.shape[1:]:
                raise ValueError(f"a mean image must be {tuple(raw.shape[1:])}, got {tuple(mean.shape)}")
            self.mean = mean.unsqueeze(0).clone()
        else:
            self.mean = mean.expand(c).reshape(1, c, 1, 1).clone()
        self.std = torch.as_tensor(std, dtype=torch.float32).expand(c).reshape(1, c, 1, 1).clone()

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def images(self) -> Tensor:
        """All images standardised, without augmentation, (N, C, H, W) float32."""
        return self.standardise(self.raw)

    def standardise(self, raw: Tensor) -> Tensor:
        return (raw.float() - self.mean.to(raw.device)) / self.std.to(raw.device)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = self.raw[i : i + 1]
        if self.augmentation.active:
            x = augment(x, self.augmentation)
        return self.standardise(x)[0].contiguous(), int(self.labels[i])


class DeviceBatches:
    """Batches of a :class:`TensorImages` split drawn on ``device``, in the order of ``sampler`` (e.g. a
    ``DistributedSampler``); the split is copied to the device once. Iterating yields (images, labels)."""

    def __init__(
        self,
        data: TensorImages,
        batch_size: int,
        device: torch.device,
        sampler: Sequence[int] | torch.utils.data.Sampler | None = None,
        drop_last: bool = False,
        augment: bool = True,
        channels_last: bool = False,
    ) -> None:
        self.data, self.batch_size, self.device, self.drop_last = data, batch_size, device, drop_last
        self.sampler = sampler
        self.augmentation = data.augmentation if augment else NO_AUGMENTATION
        self.channels_last = channels_last
        self.raw = data.raw.to(device)
        self.labels = data.labels.to(device)
        self.mean, self.std = data.mean.to(device), data.std.to(device)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = list(self.sampler) if self.sampler is not None else range(len(self.data))
        index = torch.as_tensor(order, dtype=torch.int64).to(self.device, non_blocking=True)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = index[start : start + self.batch_size]
            raw = self.raw.index_select(0, idx)
            if self.augmentation.active:
                raw = augment(raw, self.augmentation)
            x = (raw.float() - self.mean) / self.std
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            yield x.contiguous(memory_format=fmt), self.labels.index_select(0, idx)
