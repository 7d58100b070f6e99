"""``prunex train --nproc-per-node N``: every mistake that can be seen before the processes start is one line, exit 2,
with no process started; otherwise the same arguments go to N processes of torch.distributed's runner."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.train import load_checkpoint

TINY = ["--dataset", "synthetic", "--model", "maskconnect_cifar", "-a", "depth=11", "-a", "bottleneck_width=4"]
TINY += ["-a", "cardinality=4", "-a", "fan_in=2", "--epochs", "4", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture
def launched(monkeypatch):
    """The command lines the launcher would have run (it answers as if they exited with ``launched.code``)."""
    calls = []

    def fake_run(command, check=False):
        calls.append(command)
        return subprocess.CompletedProcess(command, fake_run.code)

    fake_run.code = 0
    monkeypatch.setattr("prunex.workflows.train.subprocess.run", fake_run)
    return fake_run, calls


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--nproc-per-node", "3", "--model", "multiresnet_cifar", "--branch-parallel", "2"], "does not divide the 3"),
        (["--nproc-per-node", "2", "--branch-parallel", "2"], "no multi-residual blocks"),
        (["--nproc-per-node", "2", "--epochs", "0"], "--epochs"),
    ],
)
def test_a_layout_mistake_is_one_line_before_any_process_starts(launched, tmp_path, args, words):
    _, calls = launched
    result = invoke("train", "--out", tmp_path / "r", *args)
    assert result.exit_code == 2 and words in " ".join(result.stderr.split()), result.output
    assert calls == [] and not (tmp_path / "r").exists()


def test_an_output_that_holds_a_run_is_refused_before_launch(launched, tmp_path):
    _, calls = launched
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    result = invoke("train", "--nproc-per-node", "2", "--out", tmp_path / "r", *TINY)
    assert result.exit_code == 2 and "config.json" in result.stderr and calls == []


def test_the_processes_get_the_same_arguments_and_their_exit_status_is_returned(launched, tmp_path):
    fake_run, calls = launched
    result = invoke("train", "--nproc-per-node", "2", "--out", tmp_path / "r", "--no-amp", *TINY)
    assert result.exit_code == 0, result.output
    (command,) = calls
    runner = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    assert command[: len(runner) + 3] == [*runner, "-m", "prunex", "train"]
    child = command[len(runner) + 3 :]
    assert "--nproc-per-node" not in child and "--no-amp" in child
    pairs = {(child[i], child[i + 1]) for i in range(len(child) - 1)}
    assert {("--out", str(tmp_path / "r")), ("--dataset", "synthetic"), ("--epochs", "4")} <= pairs
    assert [child[i + 1] for i, a in enumerate(child) if a == "--model-arg"] == [
        "depth=11",
        "bottleneck_width=4",
        "cardinality=4",
        "fan_in=2",
    ]
    fake_run.code = 1
    assert invoke("train", "--nproc-per-node", "2", "--out", tmp_path / "s", *TINY).exit_code == 1


@pytest.mark.slow
def test_two_processes_train_one_run(tmp_path):
    result = invoke("train", "--nproc-per-node", "2", "--out", tmp_path / "r", *TINY)
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(tmp_path / "r")
    assert ckpt["train_state"]["epoch"] == 4 and len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 4
