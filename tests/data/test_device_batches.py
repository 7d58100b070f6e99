"""In-memory datasets: augmentation of a whole batch at once is the papers' per-image augmentation, and the
device loader yields the sampler's batches."""

import itertools

import torch
from torch.utils.data import DistributedSampler
from torchvision.transforms import functional as TF

from prunex.data import load_dataset
from prunex.data.tensor_images import Augmentation, DeviceBatches, TensorImages, augment, crop_and_flip


def test_crop_and_flip_is_torchvisions_padded_crop_and_flip_image_by_image():
    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=gen)
    offsets = torch.randint(0, 9, (6, 2), generator=gen)
    flips = torch.tensor([True, False, True, False, False, True])
    out = crop_and_flip(raw, 4, offsets, flips)
    assert out.is_contiguous(memory_format=torch.channels_last)
    for n in range(6):
        expected = TF.crop(TF.pad(raw[n], [4]), int(offsets[n, 0]), int(offsets[n, 1]), 32, 32)
        if flips[n]:
            expected = TF.hflip(expected)
        assert torch.equal(out[n], expected)


def test_a_one_pixel_crop_is_a_shift_with_a_zero_border():
    raw = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    for dy, dx in itertools.product((-1, 0, 1), repeat=2):
        shifted = crop_and_flip(raw, 1, torch.tensor([[1 - dy, 1 - dx]]))[0, 0]
        expected = torch.roll(raw[0, 0], (dy, dx), (0, 1))
        if dy:
            expected[0 if dy > 0 else -1] = 0
        if dx:
            expected[:, 0 if dx > 0 else -1] = 0
        assert torch.equal(shifted, expected), (dy, dx)


def test_random_augmentation_uses_every_offset_and_both_orientations():
    raw = torch.arange(16.0).view(1, 1, 4, 4).expand(400, 1, 4, 4)
    out = augment(raw, Augmentation(pad=1, flip=True), torch.Generator().manual_seed(0))
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) == 18  # 9 offsets × 2 orientations


def test_device_batches_follow_the_sampler_and_standardise():
    data = load_dataset("digits", augment=False)
    sampler = DistributedSampler(data.train, num_replicas=2, rank=1, shuffle=True, seed=3)
    sampler.set_epoch(4)
    loader = DeviceBatches(data.train, 50, torch.device("cpu"), sampler, drop_last=True)
    order = list(sampler)
    batches = list(loader)
    assert len(batches) == len(loader) == len(order) // 50
    x, y = batches[2]
    for i, idx in enumerate(order[100:150]):
        image, label = data.train[idx]
        assert torch.equal(x[i], image) and int(y[i]) == label


def test_cifar_style_uint8_images_are_standardised_per_channel():
    raw = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    data = TensorImages(raw, torch.tensor([0, 1]), mean=[255.0, 127.5, 0.0], std=[1.0, 127.5, 255.0])
    x, _ = next(iter(DeviceBatches(data, 2, torch.device("cpu"))))
    assert x.dtype == torch.float32
    assert torch.equal(x[0, :, 0, 0], torch.tensor([0.0, 1.0, 1.0]))
