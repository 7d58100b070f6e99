import pytest
import torch
from torchvision.models import resnext50_32x4d, resnext101_32x8d

from prunex.models import create_model, from_torchvision_resnext
from prunex.nn.dgconv import DGConv2d


def _randomise_bn(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)


@pytest.mark.parametrize(
    ("factory", "size", "name"),
    [
        (resnext50_32x4d, 224, "g_resnext50"),
        pytest.param(resnext101_32x8d, 96, "g_resnext101", marks=pytest.mark.slow),  # 340 M dense weights: ~20 s
    ],
)
def test_torchvision_resnext_converts_to_an_output_equal_g_resnext(factory, size, name):
    torch.manual_seed(0)
    reference = factory(weights=None).eval()
    _randomise_bn(reference)
    converted = from_torchvision_resnext(reference).eval()
    dgconvs = [m for m in converted.modules() if isinstance(m, DGConv2d)]
    assert len(dgconvs) == (16 if name == "g_resnext50" else 33)
    assert {m.num_groups for m in dgconvs} == {32}
    assert all(torch.equal(m.in_order(), torch.arange(m.in_channels)) for m in dgconvs)  # contiguous
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, actual = reference(x), converted(x)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    assert converted.prunex_spec.name == name
    # the state dict fits the registered builder, so checkpoints rebuild it
    rebuilt = create_model(name, **converted.prunex_spec.kwargs)
    rebuilt.load_state_dict(converted.state_dict())
    assert any(not isinstance(m, DGConv2d) and getattr(m, "groups", 1) > 1 for m in reference.modules())


def test_conversion_rejects_other_networks():
    with pytest.raises(ValueError, match="not a torchvision ResNeXt"):
        from_torchvision_resnext(create_model("g_resnext_cifar", depth=11, cardinality=2, bottleneck_width=4))
