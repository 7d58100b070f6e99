"""``prunex bench --device cuda``: eager, CUDA graphs and torch.compile measured on the GPU (or, for compile, its
reason for not running), CUDA-event timing, fp16."""

import json

import pytest
import torch
from typer.testing import CliRunner

from prunex.cli.app import app
from tests.train.helpers import trained_and_compressed_run

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_bench_on_cuda_measures_every_cuda_backend(tmp_path):
    run = trained_and_compressed_run(tmp_path / "run")
    out = tmp_path / "bench"
    args = ["bench", str(run), "--device", "cuda", "--backend", "eager,cuda-graphs,compile", "--dtype", "fp32,fp16"]
    args += ["--batch", "1,8", "--warmup", "2", "--iters", "5", "--no-plots", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    rows = data["results"]
    assert len(rows) == 3 * 3 * 2 * 2  # gated, compressed and reference × backends × dtypes × batches
    assert set(data["peaks"]) == {"fp32", "fp16"} and data["settings"]["compile_mode"] == "deploy"
    for row in rows:
        if row["backend"] == "compile" and row["status"] != "ok":
            assert row["reason"].startswith("torch.compile failed: ")  # unavailable, with the reason
        else:
            assert row["status"] == "ok" and row["median_ms"] > 0, row
            assert 0 < row["peak_share"] <= 1 and row["setup_s"] >= 0
