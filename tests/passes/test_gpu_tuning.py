"""Latency-aware lowering measured on a CUDA device (eager and CUDA graphs, fp32 and fp16): every choice is timed
there, cached under the GPU's fingerprint, and exact."""

import json

import pytest
import torch

from prunex.passes import CompressOptions, compress
from prunex.passes.tuning import TuneTarget
from tests.passes.test_latency_lowering import X, g_resnext

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize(("backend", "dtype"), [("eager", "fp32"), ("cuda-graphs", "fp16")])
def test_tuning_on_cuda_measures_each_candidate_there_and_stays_exact(tmp_path, backend, dtype):
    model = g_resnext()
    target = TuneTarget(device="cuda", dtype=dtype, batch=8, channels_last=True, backend=backend)
    options = CompressOptions(tune="full", target=target, tuning_cache=str(tmp_path / "cache.json"))
    gm, report = compress(model, X, options=options)
    assert report.lowering and all(min(d.times_ms.values()) > 0 for d in report.lowering)
    cache = json.loads((tmp_path / "cache.json").read_text())
    name = torch.cuda.get_device_name()
    assert all(key.startswith(name) and "cudnn" in key and f"{backend} {dtype} batch 8 NHWC" in key for key in cache)
    with torch.no_grad():
        ref = model(X)
        assert float((gm(X) - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    again = CompressOptions(tune="cache", target=target, tuning_cache=str(tmp_path / "cache.json"))
    _, second = compress(model, X, options=again)
    assert all(d.from_cache for d in second.lowering)
