import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.data import DatasetError, calibration_batch, load_dataset


def test_digits_is_offline_with_a_fixed_split():
    a, b = load_dataset("digits"), load_dataset("digits", augment=False)
    assert (len(a.train), len(a.test)) == (1438, 359)
    assert a.info.num_classes == 10 and a.info.in_chans == 1 and a.info.image_size == 8
    assert torch.equal(a.test[5][0], b.test[5][0]) and a.test[5][1] == b.test[5][1]
    assert sorted({y for _, y in (a.test[i] for i in range(len(a.test)))}) == list(range(10))


def test_digits_augmentation_shifts_by_at_most_one_pixel():
    data = load_dataset("digits")
    torch.manual_seed(0)
    x0 = data.train.images[3]
    shifted = [data.train[3][0] for _ in range(20)]
    assert any(not torch.equal(s, x0) for s in shifted)
    assert torch.equal(data.train.images[3], x0)  # the stored image is never modified


def test_calibration_batch_is_real_test_images():
    batch = calibration_batch("digits", n=16)
    assert batch.shape == (16, 1, 8, 8)
    assert torch.equal(batch[0], load_dataset("digits", augment=False).test[0][0])


@pytest.mark.parametrize(
    ("name", "root", "match"),
    [
        ("cifar10", None, "pass --data-root"),
        ("cifar100", "missing", "cifar-100-python.*does not exist"),
        ("imagefolder", "missing", "train/.*val/"),
        ("mnist", None, "unknown dataset"),
    ],
)
def test_missing_datasets_name_the_expected_layout(tmp_path, name, root, match):
    with pytest.raises(DatasetError, match=match):
        load_dataset(name, tmp_path / root if root else None)


def _fake_cifar10(root):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


def test_cifar_that_fails_its_checksums_is_reported(tmp_path):
    _fake_cifar10(tmp_path)
    with pytest.raises(DatasetError, match="checksums"):
        load_dataset("cifar10", tmp_path)


def test_cifar_in_torchvision_format_loads(tmp_path, monkeypatch):
    _fake_cifar10(tmp_path)
    monkeypatch.setattr(datasets.CIFAR10, "_check_integrity", lambda self: True)  # the fake files have other MD5s
    monkeypatch.setattr(datasets.cifar, "check_integrity", lambda *a, **k: True)
    data = load_dataset("cifar10", tmp_path)
    assert len(data.train) == 20 and len(data.test) == 4
    x, y = data.train[0]
    assert x.shape == (3, 32, 32) and y in range(10)


def test_imagefolder_layout(tmp_path):
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((40, 30, 3), 60 * i, dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    data = load_dataset("imagefolder", tmp_path, image_size=32)
    assert data.info.num_classes == 2 and data.test[0][0].shape == (3, 32, 32)
    (tmp_path / "val" / "bird").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "val" / "bird" / "0.png")
    with pytest.raises(DatasetError, match="same class folders"):
        load_dataset("imagefolder", tmp_path)


def test_cli_dataset_errors_exit_cleanly(tmp_path):
    result = CliRunner().invoke(
        app, ["train", "--dataset", "cifar10", "--data-root", str(tmp_path), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert "cifar-10-batches-py" in result.output and "Traceback" not in result.output
