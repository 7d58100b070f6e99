import json

import pytest
import torch
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.data import load_dataset
from prunex.train import model_from_checkpoint


@pytest.mark.slow
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


def test_a_short_default_run_trains_the_default_model_and_a_second_run_gets_its_own_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "runs" / "maskconnect_cifar-digits", tmp_path / "runs" / "maskconnect_cifar-digits-2"
    default = {"depth": 20, "bottleneck_width": 4, "cardinality": 8, "fan_in": 4}
    small = {"depth": 11, "bottleneck_width": 2, "cardinality": 2, "fan_in": 1}  # same model and dataset, smaller
    checkpoints = []
    for run, kwargs, args in ((first, default, []), (second, small, [f"-a{k}={v}" for k, v in small.items()])):
        result = CliRunner().invoke(app, ["train", "--epochs", "4", "-q", *args])
        assert result.exit_code == 0, result.output
        config = json.loads((run / "config.json").read_text())
        assert config["model"] == "maskconnect_cifar" and config["model_kwargs"] == kwargs
        phases = ["learn-connectivity", "fine-tune-1", "fine-tune-2", "fine-tune-3"]
        assert [p["name"] for p in config["phases"]] == phases
        assert len((run / "metrics.jsonl").read_text().splitlines()) == 4
        checkpoints.append((run / "checkpoint.pt").read_bytes())
    assert (first / "checkpoint.pt").read_bytes() == checkpoints[0]  # the second run left the first alone


def test_train_help_explains_the_default():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "digits" in result.output and "--resume" in result.output and "torchrun" in result.output


def test_branch_parallel_without_enough_processes_is_one_line_before_any_work(tmp_path):
    run = tmp_path / "run"
    args = [
        "train",
        "--model",
        "multiresnet_cifar",
        "--dataset",
        "synthetic",
        "--branch-parallel",
        "2",
        "--out",
        str(run),
    ]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "--branch-parallel 2 needs at least 2 processes" in result.output
    assert "Traceback" not in result.output and not run.exists()
