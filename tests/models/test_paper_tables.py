"""Analytic counts against the papers' tables and the exact reference counts in docs/design.md."""

import pytest
from torchvision.models import ResNet101_Weights, ResNeXt50_32X4D_Weights, ResNeXt101_32X8D_Weights

from prunex.models import analytic_complexity
from prunex.models.g_resnext import resnext_imagenet_complexity
from prunex.models.paper_relative_rows import RELATIVE_ROWS
from prunex.models.paper_tables import PAPER_ROWS, compare, compare_gflops

EXACT = [  # counts of the reference implementations (docs/design.md)
    ("maskconnect_cifar", dict(depth=29, bottleneck_width=8, num_classes=100), 858_292),
    ("maskconnect_cifar", dict(depth=29, bottleneck_width=64, num_classes=100), 34_594_212),
    ("maskconnect_cifar", dict(depth=20, bottleneck_width=4, num_classes=100), 283_572),
    ("resnext_cifar", dict(depth=29, bottleneck_width=8, num_classes=100), 858_292),
    ("sparsenet_cifar", dict(depth=100, growth=24), 2_477_314),
    ("sparsenet_cifar", dict(depth=100, growth=(16, 32, 64)), 7_169_050),
    ("sparsenet_cifar", dict(depth=100, growth=24, bottleneck=True), 1_437_826),
    ("multiresnet_cifar", dict(depth=200, k=5, block="bottleneck"), 10_187_354),
    ("g_resnext50", {}, 68_883_240),
]


@pytest.mark.parametrize(("name", "kwargs", "count"), EXACT)
def test_reference_implementation_counts_are_exact(name, kwargs, count):
    assert analytic_complexity(name, **kwargs).params == count


def test_g_resnext50_has_137_gates():
    assert analytic_complexity("g_resnext50").gates == 137


@pytest.mark.parametrize(
    ("layers", "width", "weights"),
    [
        ((3, 4, 6, 3), 4, ResNeXt50_32X4D_Weights.IMAGENET1K_V1),
        ((3, 4, 23, 3), 8, ResNeXt101_32X8D_Weights.IMAGENET1K_V1),
    ],
)
def test_deployed_at_32_groups_matches_torchvision_params_and_gmacs(layers, width, weights):
    cx = resnext_imagenet_complexity(layers, 32, width, num_classes=1000, dgconv=False)
    assert cx.params == weights.meta["num_params"]
    ops = weights.meta["_ops"]
    assert round(cx.macs / 1e9, len(str(ops).split(".")[1])) == ops


@pytest.mark.parametrize("row", [r for r in PAPER_ROWS if r.model is not None], ids=lambda r: f"{r.paper}-{r.label}")
def test_paper_rows(row):
    verdict, rel = compare(row.printed, row.count())
    if row.reproduced:
        assert verdict in {"rounds", "truncates", "within 2.5%"}, (verdict, rel)
    else:  # the rows the README lists as not reproduced, each with its reason
        assert verdict == "differs" and row.note
        if row.departs_by is not None:  # a misprint or a layout no reading reproduces: the gap pinned
            assert round(rel, 3) == row.departs_by
        else:
            assert abs(rel) < 0.09
    if row.printed_gflops is not None:  # every printed FLOP count is reproduced
        assert compare_gflops(row.printed_gflops, row.gflops())[0] in {"rounds", "truncates", "within 2.5%"}


def test_compare_verdicts():
    assert compare("0.86", 858_292)[0] == "rounds"
    assert compare("1.0", 1_077_530)[0] == "truncates"
    assert compare("34.4", 34_594_212)[0] == "within 2.5%"
    assert compare("27.7", 28_725_604)[0] == "differs"


@pytest.mark.parametrize("row", RELATIVE_ROWS, ids=lambda r: r.label)
def test_dgconv_table4_baselines_are_twice_resnet101(row):
    assert compare(row.printed, row.ratio(), unit=1.0)[0] == "rounds"  # "2×": 1.5 ≤ ratio < 2.5
    assert 1.9 < row.ratio() < 2.0  # Xie et al.'s Table 4 networks all sit just under 2× ResNet-101's 7.8 GMACs


def test_resnet101_is_the_7_8_gmacs_network_the_ratios_divide_by():
    cx = analytic_complexity("resnet_imagenet", depth=101)
    assert cx.params == ResNet101_Weights.IMAGENET1K_V1.meta["num_params"]
    assert round(cx.macs / 1e9, 3) == ResNet101_Weights.IMAGENET1K_V1.meta["_ops"]
