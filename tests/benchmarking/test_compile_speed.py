"""The compile backend as deployed is no slower than eager PyTorch on the digits model (a ratio measured in one
process, interleaved; behind ``-m timing`` because it times this shared machine, as the benchmarks do)."""

import statistics

import pytest
import torch

from prunex.models import create_model
from prunex.passes import compress
from prunex.runtime.cases import Case, CompileMode, prepare_compile, prepare_eager
from prunex.runtime.timing import summarise, time_callable


@pytest.mark.timing
@pytest.mark.parametrize("compressed", [False, True])
def test_deployed_compile_is_at_least_as_fast_as_eager_on_the_digits_model(compressed):
    torch.manual_seed(0)
    model = create_model(
        "maskconnect_cifar", depth=20, bottleneck_width=4, cardinality=8, fan_in=4, num_classes=10, in_chans=1
    ).eval()
    module = compress(model, torch.randn(4, 1, 8, 8))[0] if compressed else model
    case = Case(module, (1, 8, 8), 32, torch.float32, torch.device("cpu"), False)
    runs = {"eager": prepare_eager(case), "compile": prepare_compile(case, CompileMode.DEPLOY)}
    medians: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(5):
        for name, run in runs.items():
            medians[name].append(summarise(time_callable(run, cuda=False, warmup=3, iters=20), 32).median_ms)
    eager, compiled = min(medians["eager"]), min(medians["compile"])
    print(f"batch 32: eager {eager:.3f} ms, compile {compiled:.3f} ms ({eager / compiled:.2f}×)")
    assert compiled <= 1.05 * eager, medians
    assert statistics.median(medians["compile"]) <= 1.05 * statistics.median(medians["eager"])
