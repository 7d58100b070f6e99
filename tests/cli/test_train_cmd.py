import json

import pytest
import torch
from typer.testing import CliRunner

from prunex.artifacts.compression_report import read_report
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


@pytest.mark.slow  # ~20 s; run directories are checked by default in tests/train/test_training.py
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


def test_a_users_own_network_learns_its_grouping_and_its_checkpoint_rebuilds_it(tmp_path):
    from prunex.nn.dgconv import DGConv2d

    weights = tmp_path / "mine.pt"
    from tests.models.user_builder import small_cnn

    torch.manual_seed(5)
    mine = small_cnn(num_classes=10)
    torch.save(mine.state_dict(), weights)
    run = tmp_path / "run"
    args = ["train", "--model", "tests.models.user_builder:small_cnn", "--learn-groups", "spatial", "--weights"]
    result = CliRunner().invoke(
        app, [*args, str(weights), "--dataset", "synthetic", "--epochs", "2", "-q", "-o", str(run)]
    )
    assert result.exit_code == 0, result.output
    model, ckpt = model_from_checkpoint(run)
    assert ckpt["spec"]["learn_groups"]["where"] == [] and ckpt["config"]["learn_groups"] == "spatial"
    assert [type(m) for m in model.modules()].count(DGConv2d) == 1  # the 16 -> 32 conv; the first reads 3 channels
    assert [p["gate_lr"] > 0 for p in ckpt["config"]["phases"]][0]  # the DGConv recipe: gates learn
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    from prunex.train.new_model import build_new_model

    start = build_new_model("tests.models.user_builder:small_cnn", {"num_classes": 10}, str(weights))
    assert all(torch.equal(a, b) for a, b in zip(start.state_dict().values(), mine.state_dict().values(), strict=True))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "torchvision:nosuchnet"], "torchvision has no classification model 'nosuchnet'"),
        (["--model", "no_such_module:build"], "cannot import 'no_such_module'"),
        (["--model", "torchvision:resnet18", "--weights", "missing.pt"], "--weights missing.pt: no such file"),
        (["--model", "torchvision:mobilenet_v3_small", "--learn-groups", "features.0.*"], "can learn its grouping"),
    ],
)
def test_outside_networks_that_cannot_be_built_are_one_line_before_any_work(args, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", *args, "--dataset", "synthetic", "-o", "run"], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and words in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_weights_that_do_not_fit_are_one_line(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    args = ["train", "--model", "torchvision:resnet18", "--weights", str(bad), "--dataset", "synthetic"]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "run")], env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "cannot load it into the model" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # a torchvision ResNet-18 through train, compress, export and inspect (~90 s)
def test_a_torchvision_network_goes_through_every_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "torchvision-resnet18-synthetic"
    train = ["train", "--model", "torchvision:resnet18", "--learn-groups", "spatial", "--dataset", "synthetic"]
    result = CliRunner().invoke(app, [*train, "--epochs", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(app, ["compress", str(run)]).exit_code == 0
    report = read_report(run / "compressed" / "report.json")
    assert len(report.groups) == 16 and report.totals.end_to_end_max_rel_err <= 1e-5
    exported = CliRunner().invoke(app, ["export", str(run / "compressed"), "--onnx", str(tmp_path / "m.onnx")])
    assert exported.exit_code == 0, exported.output
    assert json.loads((tmp_path / "m.validation.json").read_text())["passed"]
    inspected = CliRunner().invoke(app, ["inspect", str(run)])
    assert inspected.exit_code == 0 and (run / "inspect" / "summary.json").exists()
