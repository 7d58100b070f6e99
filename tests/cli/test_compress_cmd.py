import json

import pytest
import torch
from typer.testing import CliRunner

import prunex.passes.pipeline as pipeline_module
from prunex.artifacts.compressed_model import load_compressed
from prunex.artifacts.compression_report import read_report
from prunex.cli.app import app
from prunex.passes.graph import freeze
from prunex.train import model_from_checkpoint, train
from tests.passes.helpers import bias_breaker
from tests.train.helpers import tiny_config

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "mc"
    cfg = tiny_config(run, model_kwargs=dict(depth=11, bottleneck_width=4, cardinality=4, fan_in=1))
    train(cfg)
    return run


def test_compress_writes_a_verified_model_and_report(trained, tmp_path):
    out = tmp_path / "c"
    result = runner.invoke(app, ["compress", str(trained), "--out", str(out)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "synthetic test images" in result.output and "compressed model" in result.output
    report = read_report(out / "report.json")
    assert [p.name for p in report.passes][:3] == ["frozen", "fold_gate_constants", "eliminate_dead_blocks"]
    assert report.calibration.startswith("32 synthetic test images")
    loaded = load_compressed(out)
    model, _ = model_from_checkpoint(trained)
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        ref = freeze(model)(x)
        assert float((loaded(x) - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    assert report.totals.params_after == sum(p.numel() for p in loaded.parameters())

    again = runner.invoke(app, ["compress", str(trained), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    forced = runner.invoke(app, ["compress", str(trained), "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output


def test_a_failing_pass_writes_only_a_diff_report(trained, tmp_path, monkeypatch):
    original = pipeline_module.default_passes
    monkeypatch.setattr(
        pipeline_module, "default_passes", lambda options, *rest: [*original(options, *rest), bias_breaker("head.fc")]
    )
    out = tmp_path / "c"
    result = runner.invoke(app, ["compress", str(trained), "--out", str(out)])
    assert result.exit_code == 3
    failure = json.loads((out / "failure.json").read_text())
    assert failure["failed_pass"] == "broken" and failure["first_diverging_layer"] == "head.fc"
    assert not (out / "model.json").exists() and not (out / "report.json").exists()


def test_bad_checkpoints_are_reported(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    result = runner.invoke(app, ["compress", str(tmp_path / "junk.pt")])
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["compress", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such checkpoint" in " ".join(result.output.split())
