"""INT8 export: symmetric Q/DQ for every family, calibrated on the run's own data, judged as a classifier against
the fp32 model, written only when it passes; and each way it can be refused is one line with nothing lost."""

import hashlib
import importlib
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from prunex.cli.app import app
from prunex.cli.views.export import int8_lines
from prunex.runtime.int8_observer import Observer
from prunex.runtime.onnx_int8 import QuantizeSpec, quantize_int8, quantized_layers, zero_points
from prunex.runtime.onnx_program import export_onnx
from tests.cli.test_user_errors import assert_one_line_error, snapshot
from tests.exporters.test_onnx_export import FAMILIES, _compressed
from tests.train.helpers import trained_and_compressed_run


@pytest.mark.parametrize(("name", "kwargs"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_family_quantizes_to_symmetric_int8_qdq_with_a_dynamic_batch(name, kwargs, tmp_path):
    _, gm = _compressed(name, kwargs)
    fp32 = export_onnx(gm, torch.zeros(1, 3, 16, 16), tmp_path / "fp32.onnx", exporter="legacy", opset=17)
    calibration = torch.randn(32, 3, 16, 16).numpy()
    int8 = quantize_int8(fp32, tmp_path / "int8.onnx", calibration, QuantizeSpec(Observer.MINMAX))
    model = onnx.load(str(int8))
    points = zero_points(model)
    assert points and all(zp.dtype == np.int8 and not zp.any() for zp in points.values())  # what TensorRT takes
    layers = [n for n in onnx.load(str(fp32)).graph.node if n.op_type in ("Conv", "Gemm")]
    assert sorted(quantized_layers(int8)) == sorted(n.name for n in layers)  # every conv and linear layer
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    for batch in (1, 16):
        out = session.run(None, {"input": torch.randn(batch, 3, 16, 16).numpy()})[0]
        assert out.shape == (batch, 10) and np.isfinite(out).all()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_and_compressed_run(tmp_path_factory.mktemp("int8") / "run")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


INT8 = (
    "--precision",
    "int8",
    "--calibration",
    "64",
    "--validation",
    "96",
    "--observer",
    "minmax",
    "--exporter",
    "legacy",
)
LENIENT = ("--min-agreement", "0.9", "--max-accuracy-drop", "10")  # a one-epoch model on synthetic data


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    """The run's compressed model exported in INT8 (the CLI's defaults but for the sizes), and what it printed."""
    out = tmp_path_factory.mktemp("int8-export") / "m.onnx"
    result = invoke("export", run / "compressed", "--onnx", out, *INT8, *LENIENT)
    assert result.exit_code == 0, result.output
    return out, result


def test_int8_export_calibrates_on_the_run_s_data_and_reports_like_a_classifier(exported):
    out, result = exported
    report = json.loads(out.with_suffix(".validation.json").read_text())
    assert report["passed"] and report["precision"] == "int8" and report["target"] == "onnxruntime"
    assert report["images"] == 96 and report["source"] == "synthetic test split"  # held out, not calibration
    assert report["int8"]["calibration_images"] == 64 and report["int8"]["observer"] == "minmax"
    assert report["top1_agreement"] >= 0.9 and 0 < report["max_rel_err"] < 1
    assert report["accuracy_drop_points"] == pytest.approx(100 * (report["accuracy_fp32"] - report["accuracy_int8"]))
    assert report["int8"]["quantized_layers"] and report["int8"]["kept_float"] == []
    assert all(not zp.any() for zp in zero_points(onnx.load(str(out))).values())
    flat = " ".join(result.output.split())
    assert "top-1 agreement" in flat and "fp32 →" in flat and "of the output scale" in flat


def test_an_int8_model_that_fails_its_check_goes_to_diverged_and_the_earlier_export_stays(
    run, exported, tmp_path, monkeypatch
):
    out = tmp_path / "m.onnx"
    for name in ("m.onnx", "m.validation.json"):  # an earlier export of this path
        shutil.copy(exported[0].with_name(name), tmp_path / name)
    report = json.loads((tmp_path / "m.validation.json").read_text())
    (tmp_path / "m.validation.json").write_text(json.dumps({**report, "onnx": str(out)}))
    before = hashlib.sha256(out.read_bytes()).hexdigest()
    int8_module = importlib.import_module("prunex.exporters.int8")  # the package re-exports names over modules
    real = int8_module.onnxruntime_runner

    def wrong_answers(path, providers=None):  # an INT8 model that ranks the classes backwards
        run_model = real(path, providers)
        return lambda x: -run_model(x)

    monkeypatch.setattr(int8_module, "onnxruntime_runner", wrong_answers)
    result = invoke("export", run / "compressed", "--onnx", out, *INT8, "--force")
    assert result.exit_code == 3, result.output
    assert "FAILS" in result.output and "agreement" in result.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == before
    failed = json.loads((tmp_path / "m.diverged.validation.json").read_text())
    assert not failed["passed"] and failed["top1_agreement"] < 0.99 and (tmp_path / "m.diverged.onnx").is_file()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--exporter", "legacy", "--opset", "11"], ["--opset 13"]),
        (["--tune", "cache"], ["--tune", "off or full"]),
        (["--fp16"], ["two precisions"]),
        (["--trt", "e.plan"], ["tensorrt"]),
    ],
)
def test_int8_options_that_cannot_work_are_one_line_before_any_work(run, tmp_path, options, words):
    before = snapshot(run)
    args = [a if a != "e.plan" else tmp_path / a for a in options]
    result = invoke("export", run / "compressed", "--onnx", tmp_path / "m.onnx", "--precision", "int8", *args)
    assert_one_line_error(result, 2, *words)
    assert snapshot(run) == before and not list(tmp_path.iterdir())


def test_a_calibration_set_that_cannot_be_read_is_one_line(run, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(run / "compressed", work)
    spec = json.loads((work / "model.json").read_text())
    spec["dataset"] = {**spec["dataset"], "name": "cifar10", "root": str(tmp_path / "nowhere")}
    (work / "model.json").write_text(json.dumps(spec))
    result = invoke("export", work, "--onnx", tmp_path / "m.onnx", "--precision", "int8")
    assert_one_line_error(result, 2, "INT8 calibration reads the run's own data", "cifar10")
    assert not (tmp_path / "m.onnx").exists()


def _tiny_int8_job(tmp_path):
    from prunex.exporters.int8 import Int8Data
    from prunex.exporters.sources import LoadedModel

    _, gm = _compressed(*FAMILIES[0])
    loaded = LoadedModel("compressed", gm, (3, 16, 16), tmp_path, None, FAMILIES[0][0], {})
    images = torch.randn(32, 3, 16, 16)
    with torch.no_grad():
        labels = gm(images).argmax(1)
    return loaded, Int8Data(torch.randn(32, 3, 16, 16).numpy(), images, labels, "random images")


@pytest.mark.parametrize("network", ["int8 (tuned)", "none (fp32)"])
def test_tuning_leaves_in_floating_point_the_layers_int8_does_not_make_faster(tmp_path, network):
    """Layers are timed in both forms (here: every other one is faster in INT8), then the networks end to end;
    the report names what stays in floating point, and a float network that wins end to end is written as such."""
    from prunex.exporters.int8 import Int8Settings, quantized_onnx

    loaded, data = _tiny_int8_job(tmp_path)
    layer_calls = []

    def timer(cases):
        if len(cases) == 2:  # one layer: its float form, its INT8 form
            layer_calls.append(cases)
            return [1.0, 0.5] if len(layer_calls) % 2 else [1.0, 2.0]
        names = [path.name for path, _ in cases]
        assert names == ["every-layer.onnx", "tuned.onnx", "fp32.onnx"]
        return [3.0, 2.0, 2.5] if network == "int8 (tuned)" else [3.0, 2.0, 1.0]

    settings = Int8Settings(calibration=32, validation=32, observer=Observer.MINMAX, tune=True, target_batch=4)
    made = quantized_onnx(loaded, tmp_path / "m.onnx", data, settings, exporter="legacy", opset=17, timer=timer)
    layers = [c.layer for c in made.layers]
    assert len(layers) == len(layer_calls) > 2 and all(x.shape[0] == 4 for c in layer_calls for _, x in c)
    assert made.network == network
    if network == "int8 (tuned)":
        assert made.kept_float == layers[1::2] and sorted(made.quantized) == sorted(layers[0::2])
        assert sorted(quantized_layers(tmp_path / "m.onnx")) == sorted(layers[0::2])
    else:
        assert made.kept_float == layers and made.quantized == []
        assert not any(n.op_type == "QuantizeLinear" for n in onnx.load(str(tmp_path / "m.onnx")).graph.node)
    report = made.as_dict()
    assert report["tuning"]["network"] == network and len(report["tuning"]["layers"]) == len(layers)
    assert all(entry["module"] for entry in report["tuning"]["layers"])  # named as the PyTorch modules
    lines = int8_lines(made)  # what `prunex export` says of it
    assert lines[0].startswith(f"int8: {len(made.quantized)} layers quantized (minmax observer, 32 images)")
    assert f"{len(layers[0::2])} of {len(layers)} layers ran faster" in lines[1]  # the timer favours every other
    assert lines[2].endswith(f"kept {network}") and int8_lines(None) == []
    assert ("written in floating point" in lines[-1]) == (network != "int8 (tuned)")
