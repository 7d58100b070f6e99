import io
import json
from dataclasses import asdict

import pytest
from typer.testing import CliRunner

from prunex.artifacts.bench_report import BenchReport, BenchRow, RowStatus
from prunex.benchmarking.run import speedups
from prunex.cli.app import app
from prunex.runtime.timing import COV_WARNING, percentile, summarise, time_callable, time_interleaved
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


def test_interleaved_timing_alternates_short_bursts_so_every_callable_sees_the_same_minutes():
    calls: list[str] = []
    samples = time_interleaved(
        [lambda: calls.append("a"), lambda: calls.append("b")], cuda=False, warmup=2, iters=6, burst=3, pause_s=0
    )
    assert [len(s) for s in samples] == [6, 6]
    rounds = calls[4:]  # after the warm-up of each (a a b b): one untimed call, then the burst, in turn
    assert rounds == ["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["b"] * 4
    assert calls[:4] == ["a", "a", "b", "b"]


def _rows(dicts):
    """Rows as bench measures them, from their case and median (``status`` ok)."""
    return [BenchRow(model="m", **{**d, "status": RowStatus(d["status"])}) for d in dicts]


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
    assert [asdict(s) for s in speedups(_rows(rows))] == [
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
            "eager,cuda-graphs",  # onnxruntime rows: tests/architecture (the export cache) and tests/exporters
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
        (k, "eager", n) for k in ("gated", "compressed", "reference") for n in (1, 4)
    }  # the reference (the plain ResNeXt of the same depth) is timed with the same settings
    assert {r["model"] for r in ok if r["kind"] == "reference"} == {
        "resnext_cifar(depth=11, bottleneck_width=4, cardinality=4)"  # the shape of the tiny MaskConnect
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
            "setup_s",
        } <= set(r)
        assert r["min_ms"] <= r["median_ms"] <= r["p99_ms"] and r["iterations"] >= 3
        assert r["tflops"] == pytest.approx(r["flops"] * r["batch"] / (r["median_ms"] / 1e3) / 1e12)
        assert 0 < r["peak_share"] <= 1 and r["peak_tflops"] == data["peaks"]["fp32"]["tflops"]
    flops = {r["kind"]: r["flops"] for r in ok}
    assert flops["compressed"] < flops["gated"]  # blocks removed, shared projections computed once
    assert data["peaks"]["fp32"]["measured"]  # a CPU: measured with matmuls
    skipped = [r for r in data["results"] if r["status"] != "ok"]
    assert skipped and all(r["backend"] == "cuda-graphs" and "--device cuda" in r["reason"] for r in skipped)
    assert len(data["speedups"]) == 2 and all(s["speedup"] > 0 for s in data["speedups"])
    versus = {(v["kind"], v["backend"], v["batch"]): v for v in data["vs_reference"]}
    assert set(versus) == {(k, "eager", n) for k in ("gated", "compressed") for n in (1, 4)}
    assert all(v["speedup"] == v["reference_median_ms"] / v["median_ms"] for v in versus.values())
    assert "cuda-graphs not measured" in result.output
    assert (out / "bench.png").exists()
    assert_the_table_reads_at_80_columns(data)


def assert_the_table_reads_at_80_columns(data):
    """At 80 columns the columns that matter are whole (the statistics columns are left to bench.json); wide, they
    are all there."""
    from rich.console import Console

    from prunex.benchmarking.report import results_tables

    for width, shown in ((80, False), (160, True)):
        console = Console(width=width, record=True, file=io.StringIO())
        for table in results_tables(BenchReport.from_json(data), width):
            console.print(table)
        text = console.export_text()
        assert "…" not in text and max(len(line) for line in text.splitlines()) <= width, text
        for header in ("model", "backend", "batch", "median ms", "vs gated", "vs ref"):
            assert header in text
        assert ("% peak" in text) is shown
        for v in data["vs_reference"]:
            assert f"{v['speedup']:.2f}×" in text


def test_cli_bench_rejects_unknown_backends(run_dir, tmp_path):
    result = CliRunner().invoke(app, ["bench", str(run_dir), "--backend", "tvm", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "tvm" in result.output


@pytest.mark.slow  # inductor compiles (~6 s); the compile cases are checked in tests/runtime by default
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
            "--reference",
            "none",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "bench.json").read_text())
    assert len(data["results"]) == 1 and data["results"][0]["status"] == "ok", data["results"]
    assert data["settings"]["compile_mode"] == "deploy" and data["vs_reference"] == []


def test_cli_bench_rejects_an_unknown_reference_before_any_work(run_dir, tmp_path):
    out = tmp_path / "b"
    result = CliRunner().invoke(
        app, ["bench", str(run_dir), "--reference", "torchvision:nosuchnet", "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2 and "torchvision has no such model" in result.output and not out.exists()


@pytest.mark.slow  # three ONNX exports and quantizations (~20 s); the pieces are checked below by default
def test_int8_rows_are_quantized_on_the_onnx_backends_and_compared_with_fp32(run_dir, tmp_path):
    """Every model of the run and its reference quantized the same way (calibrated on the run's data); eager has no
    int8 and says so; int8 rows carry their speed-up over fp32 and the table shows it."""
    out = tmp_path / "b"
    args = ["bench", str(run_dir), "--device", "cpu", "--backend", "eager,onnxruntime", "--precision", "fp32,int8"]
    args += ["--batch", "2", "--warmup", "1", "--iters", "2", "--no-plots", "--out", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    int8 = {(r["kind"], r["backend"]): r for r in data["results"] if r["dtype"] == "int8"}
    assert {k for k, r in int8.items() if r["status"] == "ok"} == {
        (kind, "onnxruntime") for kind in ("gated", "compressed", "reference")
    }
    assert all("int8 runs on onnxruntime and tensorrt" in r["reason"] for (_, b), r in int8.items() if b == "eager")
    versus = {(v["kind"], v["backend"]): v for v in data["vs_fp32"]}
    assert set(versus) == {(kind, "onnxruntime") for kind in ("gated", "compressed", "reference")}
    for (kind, backend), v in versus.items():
        fp32 = next(r for r in data["results"] if (r["kind"], r["backend"], r["dtype"]) == (kind, backend, "fp32"))
        assert v["speedup"] == pytest.approx(fp32["median_ms"] / int8[(kind, backend)]["median_ms"])
    assert "vs fp32" in result.output


def test_int8_runs_only_where_quantized_onnx_runs_and_is_compared_with_its_own_fp32_row():
    import torch

    from prunex.benchmarking.run import versus_fp32
    from prunex.runtime.backends import unavailable_reason

    cpu = torch.device("cpu")
    assert unavailable_reason("onnxruntime", cpu, "int8") is None
    for backend in ("eager", "compile"):
        assert "int8 runs on onnxruntime and tensorrt" in unavailable_reason(backend, cpu, "int8")
    assert "unknown precision" in unavailable_reason("onnxruntime", cpu, "int4")

    def row(kind, dtype, batch, ms):
        return dict(group="r", kind=kind, backend="onnxruntime", dtype=dtype, batch=batch, status="ok", median_ms=ms)

    rows = [row("compressed", "fp32", 1, 3.0), row("compressed", "int8", 1, 2.0), row("reference", "int8", 1, 1.0)]
    assert [
        asdict(s) for s in versus_fp32(_rows(rows))
    ] == [  # the reference has no fp32 row here: nothing to compare it with
        {
            "group": "r",
            "kind": "compressed",
            "backend": "onnxruntime",
            "dtype": "int8",
            "batch": 1,
            "fp32_median_ms": 3.0,
            "median_ms": 2.0,
            "speedup": 1.5,
        }
    ]
