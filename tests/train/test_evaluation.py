"""Test-set evaluation: loss, top-1 and top-5 accuracy, read back once; top-5 in every run's metrics."""

import json

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
