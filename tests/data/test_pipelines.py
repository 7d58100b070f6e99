"""The papers' pipelines: Mini-ImageNet and ImageNet image folders chosen by --pipeline, per-pixel mean subtraction
(MaskConnect E.1, E.3), and the recipes and networks they pick."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets, transforms
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.data import DatasetError, load_dataset, readable_test_images
from prunex.train import build_config, model_from_checkpoint
from prunex.train.config import ConfigError
from tests.data.test_datasets import _fake_cifar10


def _folder(root, size=(100, 90), per_class=3):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / cls / f"{i}.png")
    return root


def test_mini_imagenet_pipeline_subtracts_the_mean_84_image_and_crops_64(tmp_path):
    root = _folder(tmp_path / "mini")
    data = load_dataset("imagefolder", root, pipeline="mini-imagenet")
    assert (data.info.image_size, data.info.pipeline, data.info.normalisation) == (64, "mini-imagenet", "pixel-mean")
    scale = transforms.Compose([transforms.Resize((84, 84)), transforms.ToTensor()])
    train = sorted((root / "train").rglob("*.png"))
    mean = torch.stack([scale(Image.open(p).convert("RGB")) for p in train]).mean(0)
    first_val = sorted((root / "val" / "a").glob("*.png"))[0]
    expected = transforms.CenterCrop(64)(scale(Image.open(first_val).convert("RGB")) - mean)
    torch.testing.assert_close(data.test[0][0], expected)  # test: the centre 64×64 crop of the mean-subtracted image
    torch.manual_seed(0)
    draws = [data.train[0][0] for _ in range(6)]
    assert all(d.shape == (3, 64, 64) for d in draws)
    assert any(not torch.equal(d, draws[0]) for d in draws)  # random crops / flips


def test_imagenet_pipeline_is_the_default_and_refuses_a_mean_image(tmp_path):
    root = _folder(tmp_path / "imagenet", per_class=1)
    data = load_dataset("imagefolder", root, image_size=48)
    assert (data.info.pipeline, data.info.normalisation) == ("imagenet", "channel")
    assert data.test[0][0].shape == (3, 48, 48)
    with pytest.raises(DatasetError, match="mini-imagenet"):
        load_dataset("imagefolder", root, normalisation="pixel-mean")
    with pytest.raises(DatasetError, match="image folders only"):
        load_dataset("digits", pipeline="mini-imagenet")
    with pytest.raises(DatasetError, match="mini-imagenet"):
        load_dataset("imagefolder", root, pipeline="tiny-imagenet")


def test_imagenet_training_augments_as_fb_resnet_torch_does(tmp_path):
    """Random resized crop, colour jitter ±0.4, PCA lighting noise σ = 0.1, standardisation, flip — in that order."""
    from prunex.data.imagefolder import PCA_EIGVAL, PCA_EIGVEC, Lighting

    data = load_dataset("imagefolder", _folder(tmp_path / "imagenet", per_class=1), image_size=32)
    steps = data.train.transform.transforms
    kinds = [type(t).__name__ for t in steps]
    assert kinds == ["RandomResizedCrop", "ColorJitter", "ToTensor", "Lighting", "Normalize", "RandomHorizontalFlip"]
    jitter = steps[1]
    assert jitter.brightness == jitter.contrast == jitter.saturation == (0.6, 1.4) and jitter.hue is None
    assert steps[3].std == 0.1
    x = torch.rand(3, 4, 5)
    noisy = Lighting(0.1, torch.Generator().manual_seed(3))(x)
    alpha = torch.randn(3, generator=torch.Generator().manual_seed(3)) * 0.1
    shift = [sum(PCA_EIGVEC[c][j] * float(alpha[j]) * PCA_EIGVAL[j] for j in range(3)) for c in range(3)]
    for c in range(3):  # every pixel of channel c moves by the same Σ_j V[c, j] α_j λ_j
        torch.testing.assert_close(noisy[c] - x[c], torch.full((4, 5), shift[c]))


def test_cifar_pixel_mean_subtracts_the_training_mean_image(tmp_path, monkeypatch):
    _fake_cifar10(tmp_path)
    monkeypatch.setattr(datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(datasets.cifar, "check_integrity", lambda *a, **k: True)
    data = load_dataset("cifar10", tmp_path, normalisation="pixel-mean", augment=False)
    raw = data.train.raw.float()
    torch.testing.assert_close(data.train.images, (raw - raw.mean(0)) / 255)
    torch.testing.assert_close(data.test.images, (data.test.raw.float() - raw.mean(0)) / 255)
    assert data.info.normalisation == "pixel-mean"
    channel = load_dataset("cifar10", tmp_path, augment=False)
    assert not torch.allclose(channel.train.images, data.train.images)


def test_recipes_follow_the_dataset_and_pipeline():
    mini = build_config({"model": "maskconnect_cifar", "dataset": "imagefolder", "pipeline": "mini-imagenet"})
    assert mini.model_kwargs == {"stem_pool": True} and mini.batch_size == 256 and mini.weight_decay == 5e-4
    assert [p.epochs for p in mini.phases] == [120, 100, 50, 50] and mini.normalisation == "pixel-mean"
    imagenet = build_config({"model": "maskconnect_imagenet", "dataset": "imagefolder"})
    assert [p.epochs for p in imagenet.phases] == [30, 30, 30, 30] and imagenet.weight_decay == 1e-4
    assert imagenet.normalisation is None and imagenet.model_kwargs == {}
    cifar = build_config({"model": "resnext_cifar", "dataset": "cifar100"})
    assert cifar.normalisation == "pixel-mean" and cifar.batch_size == 128
    assert build_config({"model": "sparsenet_cifar", "dataset": "cifar100"}).normalisation is None  # channel
    sparse = build_config({"model": "sparsenet_imagenet", "dataset": "imagefolder"})
    assert [p.epochs for p in sparse.phases] == [90] and sparse.phases[0].milestones == pytest.approx((1 / 3, 2 / 3))
    assert build_config({"model": "sparsenet_cifar", "dataset": "cifar10"}).phases[0].epochs == 300
    with pytest.raises(ConfigError, match="Mini-ImageNet"):
        build_config({"model": "sparsenet_cifar", "dataset": "imagefolder", "pipeline": "mini-imagenet"})
    with pytest.raises(ConfigError, match="image folder"):
        build_config({"dataset": "digits", "pipeline": "mini-imagenet"})


@pytest.mark.parametrize(("pipeline", "size", "pooled"), [("mini-imagenet", 64, True), ("imagenet", 48, False)])
def test_train_on_an_image_folder_picks_the_pipeline_its_flag_names(tmp_path, pipeline, size, pooled):
    root = _folder(tmp_path / "data", size=(96, 96), per_class=2)
    out = tmp_path / "run"
    small = ["-a", "depth=11", "-a", "bottleneck_width=2", "-a", "cardinality=2", "-a", "fan_in=1"]
    if pipeline == "imagenet":  # 48-pixel crops instead of 224 keep the run short
        (tmp_path / "size.toml").write_text("image_size = 48\n")
        small += ["--config", str(tmp_path / "size.toml")]
    args = ["train", "--dataset", "imagefolder", "--data-root", str(root), "--pipeline", pipeline, "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--recipe", "quick", "--epochs", "4", "-b", "4", "-q", *small])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["pipeline"] == pipeline and config["model_kwargs"].get("stem_pool", False) is pooled
    model, ckpt = model_from_checkpoint(out)
    assert isinstance(model.stem[-1], torch.nn.MaxPool2d) is pooled
    batch, name = readable_test_images(ckpt["dataset"], 3)  # compress / export verify on the training pipeline
    assert name == "imagefolder" and batch.shape == (3, 3, size, size)
