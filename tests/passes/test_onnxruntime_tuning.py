"""Tuning for ONNX Runtime: each candidate layer and each whole network is timed as an ONNX Runtime session, the
timings are cached under a key that names the runtime, and the tuned network still exports and validates."""

import json

import pytest
from typer.testing import CliRunner

import prunex
from prunex.cli.app import app
from prunex.passes import tuning
from prunex.passes.tuning import TuneTarget, device_fingerprint
from prunex.runtime.backends import Backend
from tests.train.helpers import trained_and_compressed_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_and_compressed_run(tmp_path_factory.mktemp("ort") / "run")


@pytest.fixture
def measured(monkeypatch):
    """How many timings were taken (every one goes through time_callable)."""
    calls = []
    original = tuning.time_callable

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(tuning, "time_callable", counting)
    return calls


def _tuned(run, out, cache, mode="full"):
    target = TuneTarget(batch=2, backend="onnxruntime")
    return prunex.compress_run(run, out=out, force=True, tune=mode, target=target, tuning_cache=cache, calibration=8)


def test_onnxruntime_times_candidates_caches_them_and_the_result_exports(run, tmp_path, measured):
    cache = tmp_path / "tuning.json"
    first = _tuned(run, tmp_path / "tuned", cache)
    decisions = first.report.lowering
    assert decisions and len(measured) >= len(decisions)  # every choice measured, each candidate once
    assert {d.kind for d in decisions} >= {"conv", "network"}
    network = [d for d in decisions if d.kind == "network"][0]
    assert {"tuned", "dense"} <= set(network.times_ms) and first.report.network == network.chosen
    learned = {"conv": lambda d: f"groups={d.learned.split()[0]}", "branches": lambda d: "merged"}
    retuned = any(d.chosen != learned[d.kind](d) for d in decisions if d.kind in learned)
    assert ("untuned" in network.times_ms) == retuned  # the same network is never timed twice
    assert first.report.options.target.backend == "onnxruntime"
    keys = json.loads(cache.read_text())["entries"]
    assert all("onnxruntime " in k and "CPUExecutionProvider" in k and "onnxruntime fp32 batch 2" in k for k in keys)

    measured.clear()
    second = _tuned(run, tmp_path / "again", cache, mode="cache")
    assert not measured  # everything came from the cache
    assert all(d.from_cache for d in second.report.lowering)
    assert [d.chosen for d in second.report.lowering] == [d.chosen for d in decisions]

    outcome = list(prunex.export(tmp_path / "again", onnx=tmp_path / "m.onnx"))[0]
    assert outcome.report.passed and outcome.path == tmp_path / "m.onnx"


@pytest.mark.slow
def test_a_damaged_cache_is_set_aside_and_measured_again(run, tmp_path, measured):
    cache = tmp_path / "tuning.json"
    _tuned(run, tmp_path / "tuned", cache)
    data = json.loads(cache.read_text())
    key = next(iter(data["entries"]))
    data["entries"][key] = {label: -1.0 for label in data["entries"][key]}  # no timing is negative
    cache.write_text(json.dumps(data))
    measured.clear()
    result = _tuned(run, tmp_path / "again", cache, mode="cache")
    assert measured and not any(d.from_cache for d in result.report.lowering)
    assert any("set aside" in w or "damaged" in w for w in result.warnings)
    assert all(min(t.values()) >= 0 for t in json.loads(cache.read_text())["entries"].values())


def test_the_cache_key_names_the_runtime_its_version_and_provider():
    import onnxruntime

    ort_key = device_fingerprint(TuneTarget(backend="onnxruntime"))
    assert f"onnxruntime {onnxruntime.__version__}" in ort_key and "CPUExecutionProvider" in ort_key
    assert "onnxruntime" not in device_fingerprint(TuneTarget(backend=Backend.EAGER))
    assert TuneTarget(backend="onnxruntime").describe() != TuneTarget().describe()


def test_tensorrt_target_without_tensorrt_is_one_line_before_any_work(tmp_path):
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    missing = tmp_path / "no-such-run"  # nothing is read: the target is checked first
    result = CliRunner().invoke(app, ["compress", str(missing), "--tune", "full", "--target-backend", "tensorrt"])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "tensorrt" in lines[0].lower() and "Traceback" not in result.output
    assert not missing.exists()


def test_a_backend_no_runtime_knows_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="eager, cuda-graphs, compile, onnxruntime, tensorrt"):
        TuneTarget(backend="openvino")
    with pytest.raises(ValueError, match="needs --target-device cuda"):
        TuneTarget(backend="cuda-graphs")
