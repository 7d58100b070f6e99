"""`benchmarks/gpu_check.sh OUT`: every step of the GPU check runs (tiny, on the CPU, with GPU_CHECK_SMOKE=1)
and leaves its JSON under OUT, with a summary of each step's status."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_gpu_check_writes_every_result_under_one_directory(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "GPU_CHECK_SMOKE": "1"}
    done = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["smoke"] is True
    assert [s["step"] for s in summary["steps"]] == ["train-speed", "models", "bench", "tuned"]
    assert all(s["status"] == 0 for s in summary["steps"]), summary
    bench = json.loads((out / "bench.json").read_text())
    kinds = {(r["group"].rsplit("/", 1)[-1], r["kind"]) for r in bench["results"] if r["status"] == "ok"}
    for model in ("g_resnext", "maskconnect", "multiresnet"):
        assert {(model, "gated"), (model, "reference")} <= kinds
    assert {r["batch"] for r in bench["results"]} == {1, 32}
    tuned = json.loads((out / "tuned-report.json").read_text())
    assert tuned["options"]["tune"] == "full" and tuned["lowering"]
    assert json.loads((out / "train_speed.json").read_text())
