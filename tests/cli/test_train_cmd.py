import json

import torch
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.data import load_dataset
from prunex.train import model_from_checkpoint


def test_train_with_no_arguments_reaches_90_percent_on_digits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "maskconnect_cifar-digits"
    assert "checkpoint: runs/maskconnect_cifar-digits/checkpoint.pt" in " ".join(result.output.split())
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 20 and metrics[-1]["test_acc"] >= 0.90
    config = json.loads((run / "config.json").read_text())
    assert config["model_kwargs"] == {"depth": 20, "bottleneck_width": 4, "cardinality": 8, "fan_in": 4}
    # the checkpoint alone reproduces the reported accuracy
    model, _ = model_from_checkpoint(run)
    test = load_dataset("digits", augment=False).test
    with torch.no_grad():
        pred = model(test.images).argmax(1)
    assert int((pred == test.labels).sum()) == round(metrics[-1]["test_acc"] * len(test))
    # a second run next to it gets its own directory
    assert not (tmp_path / "runs" / "maskconnect_cifar-digits-2").exists()


def test_train_help_explains_the_default():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "digits" in result.output and "--resume" in result.output and "torchrun" in result.output
