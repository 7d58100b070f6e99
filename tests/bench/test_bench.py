import json

import pytest
from typer.testing import CliRunner

from prunex.bench.run import speedups
from prunex.cli.app import app
from prunex.runtime.timing import COV_WARNING, percentile, summarise, time_callable
from tests.train.helpers import trained_and_compressed_run


def test_summary_statistics():
    samples = [float(x) for x in range(1, 101)]  # 1 … 100 ms
    s = summarise(samples, batch=4)
    assert (s.min_ms, s.median_ms, s.mean_ms) == (1.0, 50.5, 50.5)
    assert s.p90_ms == pytest.approx(90.1) and s.p99_ms == pytest.approx(99.01)
    assert s.throughput == pytest.approx(4 / 0.0505)
    assert s.unstable and not summarise([10.0] * 20, 1).unstable
    assert summarise([10.0, 10.0 * (1 + 4 * COV_WARNING)], 1).unstable  # CoV = 2·COV / (1 + 2·COV)
    assert percentile([5.0], 0.99) == 5.0


def test_time_callable_warms_up_then_times_at_least_iters():
    calls = []
    samples = time_callable(lambda: calls.append(1), cuda=False, warmup=3, iters=7)
    assert len(samples) == 7 and len(calls) == 10 and all(s >= 0 for s in samples)


def test_speedups_pair_gated_and_compressed_of_the_same_run():
    rows = [
        {
            "group": "r",
            "kind": "gated",
            "backend": "eager",
            "dtype": "fp32",
            "batch": 1,
            "status": "ok",
            "median_ms": 4.0,
        },
        {
            "group": "r",
            "kind": "compressed",
            "backend": "eager",
            "dtype": "fp32",
            "batch": 1,
            "status": "ok",
            "median_ms": 2.0,
        },
        {
            "group": "s",
            "kind": "compressed",
            "backend": "eager",
            "dtype": "fp32",
            "batch": 1,
            "status": "ok",
            "median_ms": 1.0,
        },
    ]
    assert speedups(rows) == [
        {
            "group": "r",
            "kind": "compressed",
            "backend": "eager",
            "dtype": "fp32",
            "batch": 1,
            "gated_median_ms": 4.0,
            "compressed_median_ms": 2.0,
            "speedup": 2.0,
        }
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_and_compressed_run(tmp_path_factory.mktemp("bench") / "run")


def test_cli_bench_on_cpu_writes_json_with_every_field(run_dir, tmp_path):
    out = tmp_path / "b"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(run_dir),
            "--device",
            "cpu",
            "--backend",
            "eager,onnxruntime,cuda-graphs",
            "--batch",
            "1,4",
            "--warmup",
            "1",
            "--iters",
            "3",
            "--out",
            str(out),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    env = data["environment"]
    assert {"device", "cpu", "threads", "torch", "onnxruntime", "python"} <= set(env)
    assert data["settings"]["batches"] == [1, 4] and data["settings"]["warmup"] == 1
    ok = [r for r in data["results"] if r["status"] == "ok"]
    assert {(r["kind"], r["backend"], r["batch"]) for r in ok} == {
        (k, b, n) for k in ("gated", "compressed") for b in ("eager", "onnxruntime") for n in (1, 4)
    }
    for r in ok:
        assert {
            "min_ms",
            "mean_ms",
            "median_ms",
            "p90_ms",
            "p95_ms",
            "p99_ms",
            "throughput",
            "cov",
            "cov_warning",
            "iterations",
        } <= set(r)
        assert r["min_ms"] <= r["median_ms"] <= r["p99_ms"] and r["iterations"] >= 3
    skipped = [r for r in data["results"] if r["status"] != "ok"]
    assert skipped and all(r["backend"] == "cuda-graphs" and "--device cuda" in r["reason"] for r in skipped)
    assert len(data["speedups"]) == 4 and all(s["speedup"] > 0 for s in data["speedups"])
    assert "cuda-graphs not measured" in result.output
    assert (out / "bench.png").exists()


def test_cli_bench_rejects_unknown_backends(run_dir, tmp_path):
    result = CliRunner().invoke(app, ["bench", str(run_dir), "--backend", "tvm", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "tvm" in result.output


def test_torch_compile_backend_on_cpu(run_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(run_dir / "compressed"),
            "--device",
            "cpu",
            "--backend",
            "compile",
            "--batch",
            "2",
            "--iters",
            "3",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert rows[0]["status"] == "ok", rows[0]
