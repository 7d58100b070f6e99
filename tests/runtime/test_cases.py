"""Execution cases and timing: what the benchmark and the latency-aware compiler run and time."""

import pytest
import torch
from torch import nn

from prunex.runtime.cases import (
    BackendUnavailable,
    Case,
    CompileMode,
    prepare_compile,
    prepare_cuda_graphs,
    prepare_eager,
)
from prunex.runtime.timing import time_callable


def small_case(device: str = "cpu", dtype=torch.float32, channels_last=False) -> Case:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    return Case(module, (3, 8, 8), 2, dtype, torch.device(device), channels_last)


def test_an_eager_case_runs_a_copy_of_the_module_on_its_input():
    case = small_case(channels_last=True)
    out = prepare_eager(case)()
    with torch.no_grad():
        torch.testing.assert_close(out, case.module(case.input()))
    assert case.input().is_contiguous(memory_format=torch.channels_last)
    assert next(case.module.parameters()).is_contiguous()  # the source module was not converted


def test_a_compile_failure_is_unavailable_with_its_reason(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nlong details")

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(BackendUnavailable, match="torch.compile failed: InvalidCxxCompiler: No working C") as err:
        prepare_compile(small_case())
    assert "long details" not in str(err.value) and isinstance(err.value.__cause__, RuntimeError)


@pytest.fixture
def freeze_calls(monkeypatch):
    """Every call of inductor's freezing pass (the real one runs; compile caches are cleared before and after)."""
    import torch._inductor.freezing as freezing

    calls, real = [], freezing.freeze
    monkeypatch.setattr(freezing, "freeze", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch._dynamo.reset()
    yield calls
    torch._dynamo.reset()


@pytest.mark.parametrize("mode", [CompileMode.DEPLOY, CompileMode.DEFAULT])
def test_the_compile_backend_freezes_the_weights_when_deploying(mode, freeze_calls):
    case = small_case()
    run = prepare_compile(case, mode)
    torch.testing.assert_close(run(), prepare_eager(case)(), rtol=1e-5, atol=1e-5)
    assert len(freeze_calls) == (1 if mode is CompileMode.DEPLOY else 0)
    run()  # timed calls run the frozen graph: no recompilation without freezing
    assert len(freeze_calls) == (1 if mode is CompileMode.DEPLOY else 0)


def test_compile_modes_map_to_torch_compile_modes():
    assert CompileMode.DEPLOY.torch_mode(cuda=True) == "reduce-overhead"  # CUDA graphs
    assert CompileMode.DEPLOY.torch_mode(cuda=False) == "default"
    assert CompileMode.MAX_AUTOTUNE.torch_mode(cuda=False) == "max-autotune-no-cudagraphs"
    assert CompileMode.DEFAULT.torch_mode(cuda=True) == "default" and not CompileMode.DEFAULT.freezing


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_graphs_need_a_cuda_device():
    with pytest.raises(BackendUnavailable, match="CUDA graphs need --device cuda"):
        prepare_cuda_graphs(small_case())


def test_timing_goes_on_until_min_seconds_have_passed():
    samples = time_callable(lambda: None, cuda=False, warmup=0, iters=1, min_seconds=0.05)
    assert len(samples) > 1  # one call takes microseconds: more were needed to fill 50 ms


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_graph_replay_computes_what_eager_does(dtype):
    case = small_case("cuda", dtype, channels_last=True)
    replay = prepare_cuda_graphs(case)
    eager = prepare_eager(case)()
    out = replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(out, eager)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_timing_uses_events_and_counts_the_work():
    case = small_case("cuda")
    samples = time_callable(prepare_eager(case), cuda=True, warmup=2, iters=10)
    assert len(samples) == 10 and all(0 < s < 1000 for s in samples)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_deployed_compile_on_cuda_freezes_and_replays_graphs(dtype, freeze_calls):
    case = small_case("cuda", dtype, channels_last=True)
    run = prepare_compile(case, CompileMode.DEPLOY)
    out = run().clone()
    torch.cuda.synchronize()
    torch.testing.assert_close(out, prepare_eager(case)(), rtol=2e-3, atol=2e-3)
    assert len(freeze_calls) == 1
