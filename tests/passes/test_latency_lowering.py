"""Latency-aware lowering on the CPU: choices follow measured time (an injected timer makes them
deterministic), every choice is exact, and the tuning cache round-trips."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import fx, nn
from typer.testing import CliRunner

from prunex.artifacts.compression_report import read_report
from prunex.cli.app import app
from prunex.models import create_model
from prunex.passes import CompressOptions, compress
from prunex.passes.conv_realisations import SplitConv, coarsen
from prunex.passes.merge_branches import SeparateChains
from prunex.passes.tuning import TuneTarget
from tests.passes.helpers import randomise_batchnorm, set_dgconv_gates

X = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def g_resnext():
    torch.manual_seed(0)
    model = randomise_batchnorm(create_model("g_resnext_cifar", depth=11, cardinality=4, bottleneck_width=4)).eval()
    set_dgconv_gates(model, [[1, 0, 1, 0], [0, 1, 1, 0, 1], [0, 0, 1, 0, 1, 1]])  # 4, 4, 8 groups
    return model


def timer_preferring(favourite: str, calls: list | None = None):
    """A fake clock. "dense": fewer groups are faster; "split": separate convs are fastest; otherwise more groups
    are faster (the learned grouping wins) and "merged" / "separate" decides the branches."""

    def timer(module: nn.Module, shape) -> float:
        if calls is not None:
            calls.append(type(module).__name__)
        if isinstance(module, fx.GraphModule):  # a whole network: all equal, so the tuned one is kept
            return 1.0
        if isinstance(module, SplitConv):
            return 1.0 if favourite == "split" else 10.0
        if isinstance(module, nn.Conv2d):
            if favourite == "dense":
                return 1.0 if module.groups == 1 else 2.0 + module.groups / 100
            return 2.0 - module.groups / 100
        if isinstance(module, nn.Sequential):  # the merged chain
            return 1.0 if favourite != "separate" else 2.0
        assert isinstance(module, SeparateChains)
        return 1.0 if favourite == "separate" else 2.0

    return timer


def tuned(model, favourite, tmp_path, mode="full", calls=None, batch=2):
    options = CompressOptions(
        tune=mode,
        target=TuneTarget(batch=batch),
        tuning_cache=str(tmp_path / "cache.json"),
        timer=timer_preferring(favourite, calls),
    )
    return compress(model, X, options=options)


def _assert_exact(model, gm):
    with torch.no_grad():
        ref = model(X)
        assert float((gm(X) - ref).abs().max()) <= 1e-4 * float(ref.abs().max())


def test_dense_wins_when_it_measures_fastest(tmp_path):
    model = g_resnext()
    gm, report = tuned(model, "dense", tmp_path)
    assert [g.groups_after for g in report.groups] == [1, 1, 1]
    assert all(m.groups == 1 for m in gm.modules() if isinstance(m, nn.Conv2d))
    decisions = [d for d in report.lowering if d.kind == "conv"]
    assert [d.learned for d in decisions] == ["4 groups", "4 groups", "8 groups"]
    assert all(d.chosen == "dense" and set(d.times_ms) >= {"dense", "split"} for d in decisions)
    _assert_exact(model, gm)


def test_the_learned_grouping_stays_when_it_is_fastest(tmp_path):
    model = g_resnext()
    gm, report = tuned(model, "learned", tmp_path)
    assert [g.groups_after for g in report.groups] == [4, 4, 8]
    _assert_exact(model, gm)


def test_split_realisation_is_separate_convs_and_exact(tmp_path):
    model = g_resnext()
    gm, report = tuned(model, "split", tmp_path)
    assert [g.groups_after for g in report.groups] == ["split"] * 3
    assert torch.cat in [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert all(m.groups == 1 for m in gm.modules() if isinstance(m, nn.Conv2d))
    _assert_exact(model, gm)


@pytest.mark.parametrize(("favourite", "merged"), [("merged", True), ("separate", False)])
def test_branches_merge_only_when_merging_measures_faster(tmp_path, favourite, merged):
    torch.manual_seed(0)
    model = randomise_batchnorm(create_model("multiresnet_cifar", depth=8, k=3)).eval()
    gm, report = tuned(model, favourite, tmp_path)
    branch = [d for d in report.lowering if d.kind == "branches"]
    assert len(branch) == 3 and all(d.chosen == favourite for d in branch)
    grouped = [m for m in gm.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert bool(grouped) == merged  # block 0's merged chain has a k-group conv
    _assert_exact(model, gm)


def test_the_cache_round_trips_and_makes_the_second_compile_measure_nothing(tmp_path):
    model, calls = g_resnext(), []
    _, first = tuned(model, "dense", tmp_path, mode="cache", calls=calls)
    assert calls and not any(d.from_cache for d in first.lowering)
    cache = json.loads((tmp_path / "cache.json").read_text())["entries"]
    assert len(cache) == len(first.lowering) and all("batch 2" in key for key in cache)
    calls.clear()
    _, second = tuned(model, "learned", tmp_path, mode="cache", calls=calls)  # the clock would now disagree …
    assert calls == []  # … but nothing is measured: the cache answers
    assert [d.chosen for d in second.lowering] == [d.chosen for d in first.lowering]
    assert all(d.from_cache for d in second.lowering)
    _, third = tuned(model, "learned", tmp_path, mode="full", calls=calls)  # full re-measures
    assert calls and [g.groups_after for g in third.groups] == [4, 4, 8]
    calls.clear()
    tuned(model, "learned", tmp_path, mode="cache", calls=calls, batch=8)  # another batch size is another key
    assert calls


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([(8, 8, 8), (16, 8, 4), (12, 24, 4), (32, 32, 16), (6, 6, 6)]), st.integers(0, 1000))
def test_every_coarser_grouping_and_the_split_are_exact(shape, seed):
    c_in, c_out, groups = shape
    torch.manual_seed(seed)
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, groups=groups).eval()
    x = torch.randn(2, c_in, 5, 5)
    with torch.no_grad():
        ref = conv(x)
        for g in [d for d in range(1, groups + 1) if groups % d == 0]:
            torch.testing.assert_close(coarsen(conv, g)(x), ref, rtol=0, atol=1e-5)
        torch.testing.assert_close(SplitConv(conv)(x), ref, rtol=0, atol=1e-5)


@pytest.mark.slow  # train + compress + measured lowering (~7 s); the cache round trip is checked by default
def test_measured_on_the_cpu_through_the_cli(tmp_path):
    from tests.train.helpers import trained_and_compressed_run

    run = trained_and_compressed_run(tmp_path / "run")
    cache = tmp_path / "tc.json"
    args = [
        "compress",
        str(run),
        "--out",
        str(run / "compressed-tuned"),
        "--tune",
        "cache",
        "--target-batch",
        "4",
        "--tuning-cache",
        str(cache),
    ]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    report = read_report(run / "compressed-tuned" / "report.json")
    assert report.options.target.batch == 4 and report.lowering
    for d in report.lowering:  # the fastest, or the learned realisation within 3 % of it
        assert d.times_ms[d.chosen] <= min(d.times_ms.values()) / 0.97
    again = CliRunner().invoke(app, [*args, "--force"], env={"COLUMNS": "160"})
    assert again.exit_code == 0 and "cached ms" in again.output and "measured ms" not in again.output
