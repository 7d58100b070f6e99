"""Bring your own network: any CNN's convolutions learn their grouping, start as exactly the same function,
train their gates, and compile back to grouped convolutions (exact, ONNX-exportable)."""

import copy

import onnxruntime as ort
import pytest
import torch
from torch import nn

from prunex.models import create_model, learn_groups
from prunex.models.from_checkpoint import build_model
from prunex.nn.dgconv import DGConv2d
from prunex.passes import compress
from prunex.passes.graph import UntraceableModelError
from prunex.runtime.onnx_program import export_onnx
from tests.passes.helpers import random_dgconv_gates, randomise_batchnorm

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
# (torchvision model, learn_groups options, convolutions expected to learn their grouping)
MODELS = {
    "resnet18": ({}, 16),  # every 3×3 conv (the 7×7 stem reads 3 channels: no factor of two)
    "resnet50": ({}, 16),
    "regnet_x_400mf": ({}, 3),  # group width 8: only the stages whose group count is a power of two
    "mobilenet_v3_small": ({"pointwise": True}, 40),  # k×k convs are depthwise: all 40 1×1s (SE included), asked
    "convnext_tiny": ({}, 3),  # the 2×2 downsampling convs; the 7×7s are depthwise
}


def _torchvision(name):
    torch.manual_seed(0)
    return randomise_batchnorm(create_model(f"torchvision:{name}", num_classes=10)).eval()


@pytest.mark.parametrize("name", list(MODELS))
def test_learn_groups_starts_as_exactly_the_same_function(name):
    options, expected = MODELS[name]
    original = _torchvision(name)
    model = copy.deepcopy(original)
    learned = learn_groups(model, **options)
    assert len(learned.replaced) == expected == sum(isinstance(m, DGConv2d) for m in model.modules())
    # each DGConv starts at its conv's groups: dense ones with every gate merging, grouped ones at G
    assert all(model.get_submodule(r.name).num_groups == r.groups for r in learned.replaced)
    with torch.no_grad():
        assert torch.equal(model(X), original(X))
    assert model.prunex_spec.learn_groups == {"where": [], "budget": None, "depthwise": False, **options} | {
        "pointwise": options.get("pointwise", False)
    }


def test_a_grouped_conv_keeps_its_groups_and_skipped_ones_say_why():
    model = _torchvision("regnet_x_400mf")
    learned = learn_groups(model)
    assert {r.groups for r in learned.replaced} == {2, 4}  # 32 and 64 channels in groups of 16
    why = dict(learned.skipped)
    assert why.pop("stem.0") == "3->32 channels share no factor of two"
    assert why and all("must be a power of two" in w for w in why.values())  # 160 / 16 = 10 groups, 400 / 16 = 25
    first = model.get_submodule(learned.replaced[0].name)
    assert first.num_groups == learned.replaced[0].groups


def test_where_chooses_by_name_and_nothing_chosen_is_an_error():
    model = _torchvision("resnet18")
    learned = learn_groups(model, "layer4.*")
    assert [r.name for r in learned.replaced] == [
        "layer4.0.conv1",
        "layer4.0.conv2",
        "layer4.1.conv1",
        "layer4.1.conv2",
    ]
    with pytest.raises(ValueError, match="no nn.Conv2d matching layer9"):
        learn_groups(_torchvision("resnet18"), "layer9.*")
    with pytest.raises(ValueError, match="no convolution of MobileNetV3 can learn its grouping"):
        learn_groups(_torchvision("mobilenet_v3_small"), "features.0.*")  # the stem: 3 input channels


def test_a_few_training_steps_move_the_gates():
    model = create_model("torchvision:resnet18", num_classes=10)
    learn_groups(model, "layer1.*")
    gates = [m.gate for m in model.modules() if isinstance(m, DGConv2d)]
    before = [g.detach().clone() for g in gates]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    y = torch.randint(0, 10, (2,))
    for _ in range(2):
        loss = nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in gates)
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, gates, strict=True))


def test_the_spec_rebuilds_the_model_for_every_later_command():
    model = create_model("torchvision:resnet18", num_classes=10)
    learn_groups(model, "layer3.*")
    random_dgconv_gates(model)
    rebuilt = build_model(model.prunex_spec, model.state_dict()).eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(X), model.eval()(X))


def _compresses_exactly_and_exports(model, tmp_path):
    gm, report = compress(model, X)
    with torch.no_grad():
        ref = model(X)
        assert float((gm(X) - ref).abs().max()) <= 1e-5 * float(ref.abs().max())
    assert report.totals.end_to_end_max_rel_err <= 1e-5  # measured against the model as it was
    assert report.groups and report.totals.macs_after < report.totals.macs_before
    path = export_onnx(gm, X[:1], tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: X.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    return report


def test_a_users_own_network_compresses_exactly_and_exports(tmp_path):
    model = create_model("tests.models.user_builder:small_cnn", num_classes=5)
    learn_groups(model)
    report = _compresses_exactly_and_exports(randomise_batchnorm(random_dgconv_gates(model)).eval(), tmp_path)
    assert [g.layer for g in report.groups] == ["3"]  # the second conv; the first reads 3 channels


@pytest.mark.slow  # five torchvision networks through the whole compiler and ONNX Runtime (~2 min)
@pytest.mark.parametrize("name", list(MODELS))
def test_torchvision_networks_compress_exactly_and_export_to_onnx(name, tmp_path):
    options, _ = MODELS[name]
    model = _torchvision(name)
    learn_groups(model, **options)
    _compresses_exactly_and_exports(random_dgconv_gates(model).eval(), tmp_path)


def test_a_model_that_does_not_trace_is_one_error_naming_the_module():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x * 2 if x.mean() > 0 else x

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), DataDependent(), nn.AdaptiveAvgPool2d(1))
    learn_groups(model)
    with pytest.raises(UntraceableModelError, match=r"cannot trace 2 \(DataDependent\): symbolically traced"):
        compress(model.eval(), X)
