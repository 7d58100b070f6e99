import os

import pytest
import torch
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.models import create_model
from prunex.train import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint

SPEC = {"name": "multiresnet_cifar", "kwargs": {"depth": 8, "k": 2}}


def _save(path, **extra):
    model = create_model(SPEC["name"], **SPEC["kwargs"])
    save_checkpoint(path, {"spec": SPEC, "state_dict": model.state_dict(), **extra})
    return model


def test_round_trip_rebuilds_the_same_model(tmp_path):
    model = _save(tmp_path / "c.pt").eval()
    again, ckpt = model_from_checkpoint(tmp_path / "c.pt")
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    assert ckpt["spec"] == SPEC


def test_a_write_killed_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    _save(path, marker=1)

    def dying_save(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process is killed mid-write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        _save(path, marker=2)
    monkeypatch.undo()
    assert load_checkpoint(path)["marker"] == 1


def test_truncated_file(tmp_path):
    path = tmp_path / "c.pt"
    _save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_files_that_are_not_prunex_checkpoints(tmp_path):
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a prunex checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


class Payload:
    """An object whose unpickling would run code."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_loading_never_executes_pickled_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "prunex.checkpoint", "spec": SPEC, "state_dict": {}, "evil": Payload()}, "evil.pt")
    with pytest.raises(CheckpointError, match="holds Python objects that a checkpoint never holds"):
        load_checkpoint("evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_unknown_model_and_misfitting_weights(tmp_path):
    model = create_model("multiresnet_cifar", depth=8, k=2)
    save_checkpoint(tmp_path / "unknown.pt", {"spec": {"name": "resnet9000", "kwargs": {}}, "state_dict": {}})
    with pytest.raises(CheckpointError, match="does not know.*resnet9000"):
        model_from_checkpoint(tmp_path / "unknown.pt")
    spec = {"name": "multiresnet_cifar", "kwargs": {"depth": 8, "k": 3}}
    save_checkpoint(tmp_path / "misfit.pt", {"spec": spec, "state_dict": model.state_dict()})
    with pytest.raises(CheckpointError, match="do not fit multiresnet_cifar"):
        model_from_checkpoint(tmp_path / "misfit.pt")


@pytest.mark.parametrize("content", [b"", b"garbage" * 10])
def test_cli_reports_a_bad_checkpoint_without_a_traceback(tmp_path, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    result = CliRunner().invoke(app, ["train", "--resume", str(bad)])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output
