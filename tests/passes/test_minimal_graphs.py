"""The compiled graph holds nothing an exporter or onnxsim would still have to remove: in-place writes are
out-of-place, concatenations flat, shuffles and chunks are permutations and slices the layout pass works on, no-op
pools / reshapes / dropout are gone, and a linear classifier absorbs the gather before its flatten."""

import numpy as np
import pytest
import torch
from torch import fx, nn
from torch.nn import functional as F

from prunex.exporters.validate import validate
from prunex.nn.dgconv import DGConv2d
from prunex.passes import compress
from prunex.passes.graph import freeze, trace
from prunex.passes.pipeline import NonFiniteOutputError
from prunex.passes.propagate_permutations import remaining_gathers
from prunex.runtime.onnx_program import export_onnx
from tests.exporters.minimal_graph import assert_minimal, op_counts
from tests.passes.helpers import randomise_batchnorm, set_dgconv_gates


def conv_bn(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout))


class MiniInception(nn.Module):
    """Parallel branches on one input with functional in-place ReLUs (merged into one conv, then sliced) and a
    concatenation of a concatenation, as torchvision's Inception / GoogLeNet write them."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8, 3)
        self.b1, self.b2, self.b2a, self.b2b = conv_bn(8, 4), conv_bn(8, 4), conv_bn(4, 4, 3), conv_bn(4, 4)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.stem(x), inplace=True)
        b1 = F.relu(self.b1(x), inplace=True)
        b2 = F.relu(self.b2(x), inplace=True)
        b2 = torch.cat([F.relu(self.b2a(b2), inplace=True), F.relu(self.b2b(b2), inplace=True)], 1)
        out = torch.cat([b1, b2], 1)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class MiniShuffle(nn.Module):
    """A ShuffleNet v2 unit (chunk, branch, concatenation, shuffle) followed by a dense 1×1 conv, which can absorb
    the shuffle, and a second unit, whose chunk cannot."""

    def __init__(self, units: int = 1) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8, 3)
        self.branches = nn.ModuleList(nn.Sequential(conv_bn(4, 4), nn.ReLU()) for _ in range(units))
        self.head, self.fc = conv_bn(8, 8), nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for branch in self.branches:
            x1, x2 = x.chunk(2, dim=1)
            x = channel_shuffle(torch.cat([x1, branch(x2)], 1), 2)
        return self.fc(self.head(x).mean((2, 3)))


class GroupedClassifier(nn.Module):
    """A learned grouped conv whose output order is not contiguous, read by a linear classifier through a flatten
    of a 2×2 map (VGG's classifier reads a 7×7 one)."""

    def __init__(self, reshape: str) -> None:
        super().__init__()
        self.reshape = reshape
        self.stem, self.conv, self.bn = conv_bn(3, 8, 3), DGConv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 2 * 2, 5)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(F.relu(self.stem(x))))), 2)
        flat = {"flatten": lambda: torch.flatten(x, 1), "view": lambda: x.view(x.size(0), -1)}[self.reshape]()
        return self.fc(flat)


class NoOps(nn.Module):
    """Pools over maps they leave as they are, a reshape to the same shape, dropout in eval."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = conv_bn(3, 8, 3), nn.Linear(8, 5)
        self.same, self.one, self.pool = nn.AdaptiveAvgPool2d(4), nn.AvgPool2d(1), nn.AdaptiveAvgPool2d(1)
        self.max_over_one = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, x):
        x = self.one(self.same(F.relu(self.conv(x))))
        x = x.view(x.shape).contiguous()
        x = self.max_over_one(self.pool(x))
        return self.fc(F.dropout(torch.flatten(x, 1), 0.2, training=self.training))


def compiled(model: nn.Module, size: int = 4):
    model = randomise_batchnorm(model).eval()
    x = torch.randn(6, 3, size, size, generator=torch.Generator().manual_seed(0))
    gm, report = compress(model, x[:1], calibration=x)
    with torch.no_grad():
        y = torch.randn(3, 3, size, size)
        torch.testing.assert_close(gm(y), model(y), rtol=0, atol=1e-5)
    return gm, report


def targets(gm: fx.GraphModule) -> set:
    return {n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method")}


def test_in_place_ops_become_out_of_place_only_where_no_other_reader_sees_the_write():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            a = self.conv(x)
            b = (self.conv(x) * 2).relu_()  # private: nothing else reads the product
            r = F.relu(a, inplace=True)  # a is read again below: the write is visible there
            return r + a + b

    model = Shared().eval()
    gm = trace(freeze(model))
    inplace = [n for n in gm.graph.nodes if n.kwargs.get("inplace") is True or str(n.target).endswith("_")]
    assert [n.args[0].target for n in inplace] == ["conv"]  # only the ReLU of the value read again stays in place
    assert "relu" in {n.target for n in gm.graph.nodes if n.op == "call_method"}
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x), rtol=0, atol=0)


def test_merged_branches_with_in_place_relus_export_without_scatter_and_with_flat_concatenations(tmp_path):
    gm, report = compiled(MiniInception(), size=6)
    assert report.passes[[p.name for p in report.passes].index("merge_parallel_branches")].modified
    cats = [n for n in gm.graph.nodes if n.target is torch.cat]
    assert len(cats) == 1 and not any(a.target is torch.cat for a in cats[0].args[0])
    path = export_onnx(gm, torch.zeros(1, 3, 6, 6), tmp_path / "m.onnx")
    assert_minimal(path)


def test_a_channel_shuffle_is_a_permutation_the_layout_pass_absorbs(tmp_path):
    gm, _ = compiled(MiniShuffle(units=1))
    assert not {"view", "transpose", torch.transpose, "chunk", "contiguous"} & targets(gm)
    assert remaining_gathers(gm) == []  # the dense 1×1 conv after it takes the shuffled order
    path = export_onnx(gm, torch.zeros(1, 3, 4, 4), tmp_path / "m.onnx")
    assert_minimal(path)
    assert op_counts(path)["Gather"] == 0


def test_a_shuffle_whose_order_meets_another_stays_one_gather_not_a_reshape_and_transpose(tmp_path):
    gm, report = compiled(MiniShuffle(units=2))
    assert not {"view", "transpose", torch.transpose, "chunk"} & targets(gm)
    assert remaining_gathers(gm) and all(g.forced_by for g in report.gathers_remaining)
    assert_minimal(export_onnx(gm, torch.zeros(1, 3, 4, 4), tmp_path / "m.onnx"))


@pytest.mark.parametrize("reshape", ["flatten", "view"])
def test_a_linear_classifier_absorbs_the_gather_before_its_flatten(reshape):
    model = GroupedClassifier(reshape)
    set_dgconv_gates(model, [[1, 0, 1]])  # groups of non-adjacent channels: the lowering gathers
    gm, _ = compiled(model, size=4)
    assert remaining_gathers(gm) == []


def test_no_op_pools_reshapes_and_dropout_are_removed(tmp_path):
    gm, _ = compiled(NoOps())
    kinds = {type(m) for m in gm.modules()}
    assert not kinds & {nn.AvgPool2d, nn.MaxPool2d, nn.Dropout}
    assert nn.AdaptiveAvgPool2d in kinds  # the one pool that averages a 4×4 map stays
    assert not {"view", "contiguous", F.dropout} & targets(gm)
    assert_minimal(export_onnx(gm, torch.zeros(1, 3, 4, 4), tmp_path / "m.onnx"))


class Scaled(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.conv, self.fc, self.scale = nn.Conv2d(3, 4, 3), nn.Linear(4, 5), scale

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3))) * self.scale


def test_an_output_scale_above_1e6_is_a_warning_and_every_error_is_stated_against_it():
    _, report = compress(Scaled(1e8).eval(), torch.randn(4, 3, 6, 6))
    assert any("above 1e+06" in w and "diverged" in w for w in report.warnings)
    assert report.totals.end_to_end_output_scale > 1e6
    assert all(p.output_scale > 1e6 for p in report.passes)
    _, calm = compress(Scaled(1.0).eval(), torch.randn(4, 3, 6, 6))
    assert calm.warnings == []


def test_a_non_finite_output_makes_compression_and_validation_refuse_to_judge():
    with pytest.raises(NonFiniteOutputError, match="not finite"):
        compress(Scaled(float("inf")).eval(), torch.randn(4, 3, 6, 6))
    model = Scaled(float("nan")).eval()
    report = validate("onnxruntime", lambda x: np.zeros((len(x), 5), np.float32), model, [torch.randn(2, 3, 6, 6)])
    assert not report.passed and "cannot be compared" in report.message and "not finite" in report.message


def test_an_identity_reshape_is_not_mistaken_for_a_shuffle():
    """A view to (N, g, C/g, H, W) and back without the transpose is no permutation."""

    class Regroup(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 8, 1), nn.Linear(8, 5)

        def forward(self, x):
            n, c, h, w = x.shape
            y = self.conv(x)
            return self.fc(y.view(n, 2, 4, h, w).view(n, 8, h, w).mean((2, 3)))

    gm, _ = compiled(Regroup())
    assert remaining_gathers(gm) == []
