"""Every family, many gate settings: the compressed model computes what the frozen gated model computes."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prunex.models import create_model
from prunex.nn.branch_gates import BranchGates, sample_k_of_c
from prunex.nn.dgconv import DGConv2d
from prunex.passes import CompressOptions, compress
from prunex.passes.graph import count_params, freeze
from tests.passes.helpers import randomise_batchnorm, set_dgconv_gates

SLOW_OK = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_equivalent(model, x, options=CompressOptions()):
    gm, report = compress(model, x[:2], calibration=x, options=options)
    frozen = freeze(model)
    probe = torch.randn(6, *x.shape[1:], generator=torch.Generator().manual_seed(1))  # inputs the passes never saw
    with torch.no_grad():
        ref, out = frozen(probe), gm(probe)
    assert float((out - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    assert torch.equal(out.argmax(1), ref.argmax(1))
    assert report.totals.params_after == count_params(gm) == sum(p.numel() for p in gm.parameters())
    assert all(p.max_rel_err <= 1e-4 and p.top1_agreement == 1.0 for p in report.passes)
    assert not [m for m in gm.modules() if type(m).__module__.startswith("prunex")]  # standard layers only
    return gm, report


@SLOW_OK
@given(c=st.integers(2, 5), k=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_maskconnect_any_k_of_c_masks(c, k, seed):
    k = min(k, c)
    torch.manual_seed(seed)
    model = randomise_batchnorm(
        create_model("maskconnect_cifar", depth=11, bottleneck_width=4, cardinality=c, fan_in=k), seed
    )
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, BranchGates):
            m.freeze()
            m.mask = sample_k_of_c(torch.ones(c, c), k, g)
    assert_equivalent(model.eval(), torch.randn(8, 3, 16, 16))


@pytest.mark.parametrize("connectivity", ["fixed_full", "fixed_random"])
def test_maskconnect_fixed_connectivity(connectivity):
    kw = dict(depth=11, bottleneck_width=4, cardinality=4, connectivity=connectivity, seed=3)
    if connectivity == "fixed_random":
        kw["fan_in"] = 1
    assert_equivalent(randomise_batchnorm(create_model("maskconnect_cifar", **kw)).eval(), torch.randn(8, 3, 16, 16))


@SLOW_OK
@given(data=st.data(), seed=st.integers(0, 10_000))
def test_g_resnext_any_gate_pattern(data, seed):
    torch.manual_seed(seed)
    model = randomise_batchnorm(create_model("g_resnext_cifar", depth=11, cardinality=4, bottleneck_width=4), seed)
    layers = [m for m in model.modules() if isinstance(m, DGConv2d)]
    kind = data.draw(st.sampled_from(["random", "all-ones", "all-zeros"]))
    if kind == "random":
        patterns = [data.draw(st.lists(st.integers(0, 1), min_size=m.num_gates, max_size=m.num_gates)) for m in layers]
    else:
        patterns = [[int(kind == "all-ones")] * m.num_gates for m in layers]
    set_dgconv_gates(model, patterns)
    _, report = assert_equivalent(model.eval(), torch.randn(8, 3, 16, 16))
    assert report.gathers_remaining == []
    assert [g.learned_groups for g in report.groups] == [2 ** (len(p) - sum(p)) for p in patterns]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("resnext_cifar", dict(depth=11, bottleneck_width=4, cardinality=4)),
        ("multiresnet_cifar", dict(depth=8, k=3)),
        ("multiresnet_cifar", dict(depth=11, k=2, block="bottleneck")),
        ("sparsenet_cifar", dict(depth=16, growth=8)),
        ("sparsenet_cifar", dict(depth=22, growth=(4, 8, 12), bottleneck=True)),
        ("sparsenet_cifar", dict(depth=16, growth=6, aggregation="sum", base=3)),
    ],
)
@pytest.mark.parametrize("fold_bn", [True, False])
def test_families_without_gates(name, kwargs, fold_bn):
    torch.manual_seed(0)
    model = randomise_batchnorm(create_model(name, **kwargs)).eval()
    assert_equivalent(model, torch.randn(8, 3, 16, 16), CompressOptions(fold_bn=fold_bn))


def test_resnext_branches_merge_into_wide_and_grouped_convs():
    model = randomise_batchnorm(create_model("resnext_cifar", depth=11, bottleneck_width=4, cardinality=4)).eval()
    gm, report = assert_equivalent(model, torch.randn(8, 3, 16, 16))
    convs = [m for m in gm.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 3 * 3 + 3  # stem, three convs per module, three projections (16→64, 64→128, 128→256)
    assert sorted({c.groups for c in convs}) == [1, 4]  # the 3x3 of each module is grouped C = 4
    merged = [r for r in report.passes if r.name == "merge_parallel_branches"][0]
    assert merged.macs == report.passes[0].macs  # the ResNeXt equivalence: same MACs, fewer launches
