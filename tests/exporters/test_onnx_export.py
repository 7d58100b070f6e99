"""Export → validate for every family (CPU, ONNX Runtime), both exporters, and a deliberately broken export."""

import copy
import importlib.util
import json

import onnx
import pytest
import torch
from typer.testing import CliRunner

import prunex.exporters.export as export_module
from prunex.cli.app import app
from prunex.exporters.validate import onnxruntime_runner, validate, validation_batches
from prunex.models import create_model
from prunex.passes import compress
from prunex.runtime.onnx_program import export_onnx
from tests.exporters.minimal_graph import assert_minimal
from tests.passes.helpers import randomise_batchnorm, set_dgconv_gates
from tests.train.helpers import trained_and_compressed_run

FAMILIES = [
    ("resnext_cifar", dict(depth=11, bottleneck_width=4, cardinality=4)),
    ("maskconnect_cifar", dict(depth=11, bottleneck_width=4, cardinality=4, fan_in=2)),
    ("multiresnet_cifar", dict(depth=8, k=2)),
    ("sparsenet_cifar", dict(depth=16, growth=8)),
    ("g_resnext_cifar", dict(depth=11, cardinality=4, bottleneck_width=4)),
]


def _compressed(name, kwargs):
    torch.manual_seed(0)
    model = randomise_batchnorm(create_model(name, **kwargs)).eval()
    if name == "g_resnext_cifar":
        set_dgconv_gates(model, [[1, 0, 1, 0], [0, 1, 1, 0, 1], [1, 1, 0, 0, 1, 0]])
    gm, _ = compress(model, torch.randn(4, 3, 16, 16))
    return model, gm


@pytest.mark.parametrize(("name", "kwargs"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_exports_and_validates_with_a_dynamic_batch(name, kwargs, tmp_path):
    model, gm = _compressed(name, kwargs)
    path = export_onnx(gm, torch.zeros(1, 3, 16, 16), tmp_path / "m.onnx")
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    assert_minimal(path)
    report = validate("onnxruntime", onnxruntime_runner(str(path)), gm, validation_batches((3, 16, 16)))
    assert report.passed, report.message
    assert report.batches == [1, 16, 16]
    # and the ONNX model computes the original gated network's function
    ref = validate("onnxruntime", onnxruntime_runner(str(path)), model, validation_batches((3, 16, 16)))
    assert ref.passed, ref.message


def test_legacy_exporter_and_gated_models_export_too(tmp_path):
    model = randomise_batchnorm(
        create_model(
            "maskconnect_cifar", depth=11, bottleneck_width=4, cardinality=3, connectivity="fixed_random", fan_in=1
        )
    ).eval()
    path = export_onnx(model, torch.zeros(1, 3, 16, 16), tmp_path / "gated.onnx", exporter="legacy")
    report = validate("onnxruntime", onnxruntime_runner(str(path)), model, validation_batches((3, 16, 16)))
    assert report.passed, report.message


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_and_compressed_run(tmp_path_factory.mktemp("exp") / "run")


def test_cli_export_writes_model_and_validation_report(run_dir, tmp_path):
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(app, ["export", str(run_dir / "compressed"), "--onnx", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_suffix(".validation.json").read_text())
    assert report["passed"] and report["target"] == "onnxruntime" and report["exporter"] == "dynamo"
    assert {"max_abs_err", "max_rel_err", "top1_agreement", "batches", "tolerance"} <= set(report)
    assert report["sources"] == ["test images", "test images", "random inputs"]  # the run's own data, then noise
    assert "over batches of 1 and 16 test images and 16 random inputs" in " ".join(result.output.split())


def test_a_diverging_export_fails_validation_and_says_by_how_much(run_dir, tmp_path, monkeypatch):
    real_export = export_module.export_onnx

    def broken_export(module, example, path, **kwargs):  # exports a subtly different network
        tampered = copy.deepcopy(module)
        with torch.no_grad():
            next(p for p in tampered.parameters() if p.dim() == 4).mul_(1.5)
        return real_export(tampered, example, path, **kwargs)

    out = tmp_path / "m.onnx"
    assert CliRunner().invoke(app, ["export", str(run_dir / "compressed"), "--onnx", str(out)]).exit_code == 0
    earlier = out.read_bytes()
    monkeypatch.setattr(export_module, "export_onnx", broken_export)
    result = CliRunner().invoke(
        app, ["export", str(run_dir / "compressed"), "--onnx", str(out), "--force"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 3
    assert "DIVERGES from PyTorch: max |Δ|" in result.output and "tolerance 0.0001" in result.output
    assert out.read_bytes() == earlier  # never replaced by a diverging model, even with --force
    diverged = tmp_path / "m.diverged.onnx"
    assert diverged.is_file() and json.loads(diverged.with_suffix(".validation.json").read_text())["passed"] is False


def test_trt_without_tensorrt_fails_at_once_with_the_install_hint(run_dir, tmp_path):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here: the missing-extra path cannot be exercised")
    result = CliRunner().invoke(
        app, ["export", str(run_dir), "--trt", str(tmp_path / "m.engine")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert 'pip install "prunex[trt]"' in result.output
    assert not (tmp_path / "m.engine").exists()


def test_export_needs_a_target(run_dir):
    result = CliRunner().invoke(app, ["export", str(run_dir)])
    assert result.exit_code != 0 and "--onnx" in result.output
