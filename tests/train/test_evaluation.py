"""Test-set evaluation: loss, top-1 and top-5 accuracy, read back once; top-5 in every run's metrics."""

import json

import pytest
import torch
from torch import nn

from prunex.train.distributed import DistContext
from prunex.train.epochs import EpochRunner, top_k_correct

LOGITS = torch.tensor(
    [
        [9.0, 8, 7, 6, 5, 4],  # label 0: top-1 and top-5
        [9.0, 8, 7, 6, 5, 4],  # label 4: top-5 only (the 5th largest)
        [9.0, 8, 7, 6, 5, 4],  # label 5: neither
        [1.0, 2, 3, 4, 5, 6],  # label 1: top-5 only (the 5th largest of this row)
    ]
)
LABELS = torch.tensor([0, 4, 5, 1])


class Fixed(nn.Module):
    """Returns the rows of ``LOGITS`` the batch's first column indexes."""

    def forward(self, x):
        return LOGITS[x[:, 0].long()]


def test_top_k_counts_the_rows_whose_label_is_among_the_k_largest():
    assert int(top_k_correct(LOGITS, LABELS, 1)) == 1
    assert int(top_k_correct(LOGITS, LABELS, 5)) == 3
    assert int(top_k_correct(LOGITS, LABELS, 6)) == 4


def test_evaluation_reports_top_5_only_with_five_classes_or_more():
    runner = EpochRunner(Fixed(), DistContext(0, 1, 0, torch.device("cpu")), channels_last=False, use_amp=False)
    batches = [(torch.tensor([[0.0], [1.0]]), LABELS[:2]), (torch.tensor([[2.0], [3.0]]), LABELS[2:])]
    result = runner.evaluate(batches)
    assert (result.accuracy, result.top5) == (0.25, 0.75)
    expected_loss = nn.functional.cross_entropy(LOGITS, LABELS).item()
    assert abs(result.loss - expected_loss) < 1e-6
    few = EpochRunner(nn.Linear(1, 3), DistContext(0, 1, 0, torch.device("cpu")), channels_last=False, use_amp=False)
    assert few.evaluate([(torch.zeros(2, 1), torch.tensor([0, 1]))]).top5 is None


def test_a_run_writes_top_5_into_its_metrics(tmp_path):
    from tests.train.helpers import trained_and_compressed_run

    run = trained_and_compressed_run(tmp_path / "run")
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(m["test_acc"] <= m["test_top5"] <= 1 for m in metrics)


def test_ten_crop_testing_scores_the_mean_softmax_of_the_ten_crops(tmp_path):
    """Against a hand computation: resize the short side to 8/7 of the size, standardise, take torchvision's ten
    crops of each image, average the model's softmax over them."""
    from PIL import Image
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from prunex.data import load_dataset
    from prunex.data.imagefolder import MEAN, STD
    from tests.data.test_pipelines import _folder

    root = _folder(tmp_path / "images", per_class=3)
    data = load_dataset("imagefolder", root, image_size=32, ten_crop=True)
    assert data.test[0][0].shape == (10, 3, 32, 32)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 5), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    runner = EpochRunner(model, DistContext(0, 1, 0, torch.device("cpu")), channels_last=False, use_amp=False)
    result = runner.evaluate(DataLoader(data.test, batch_size=4))
    scale = transforms.Compose([transforms.Resize(36), transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    losses, hits = [], []
    for path, label in data.test.samples:
        crops = transforms.TenCrop(32)(scale(Image.open(path).convert("RGB")))
        with torch.no_grad():
            p = torch.stack([model(c[None]).softmax(1)[0] for c in crops]).mean(0)
        losses.append(-float(p[label].log()))
        hits.append(int(p.argmax()) == label)
    assert result.loss == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    assert result.accuracy == sum(hits) / len(hits) and result.top5 is None  # two classes


def test_ten_crop_is_refused_for_sets_whose_test_images_are_the_network_s_size():
    from prunex.data import DatasetError, load_dataset

    with pytest.raises(DatasetError, match="ten-crop testing crops image folders"):
        load_dataset("digits", ten_crop=True)
