"""MaskConnect at ResNeXt's cost: the shared projection shortcut runs once per module, so a compressed K-of-C
network does the multiply-adds of the ResNeXt of the same {D, w, C} (less what it prunes); the per-block form
stays buildable, and a checkpoint written before the choice existed is rebuilt as what it was."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from prunex.models import create_model
from prunex.models.from_checkpoint import build_model
from prunex.models.maskconnect import MaskConnectNet
from prunex.models.references import build_reference, default_reference
from prunex.models.registry import analytic_complexity
from prunex.passes import CompressOptions, compress
from tests.passes.helpers import randomise_batchnorm

CIFAR = [
    dict(depth=29, bottleneck_width=8, cardinality=8, fan_in=4),
    dict(depth=29, bottleneck_width=64, cardinality=8, fan_in=4),
]


@pytest.mark.parametrize("kwargs", CIFAR, ids=["29-8-8", "29-64-8"])
def test_analytic_macs_are_resnexts_with_the_shared_projection_and_more_per_block(kwargs):
    shape = {k: v for k, v in kwargs.items() if k != "fan_in"}
    resnext = analytic_complexity("resnext_cifar", **shape).macs
    assert analytic_complexity("maskconnect_cifar", **kwargs).macs == resnext
    assert analytic_complexity("maskconnect_cifar", projection="per_block", **kwargs).macs > 1.05 * resnext


def test_imagenet_maskconnect_costs_what_resnext50_costs():
    shared = analytic_complexity("maskconnect_imagenet", depth=50, bottleneck_width=4, cardinality=32, fan_in=16)
    per_block = analytic_complexity("maskconnect_imagenet", projection="per_block", fan_in=16)
    resnext50 = build_reference(default_reference({"name": "maskconnect_imagenet", "kwargs": {}}))
    flops = _flops(resnext50, (3, 224, 224))
    torchvision_macs = (flops["convolution"] + flops["addmm"]) // 2
    assert shared.macs <= torchvision_macs < per_block.macs / 3


def _flops(module, shape) -> dict[str, int]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module.eval()(torch.zeros(1, *shape))
    return {str(op).split(".")[1]: n for op, n in counter.get_flop_counts()["Global"].items()}


def _compressed_layer_and_mix_flops(name, kwargs, shape, stack=True):
    torch.manual_seed(0)
    model = randomise_batchnorm(create_model(name, **kwargs)).eval()
    gm, report = compress(model, torch.randn(2, *shape), options=CompressOptions(stack_blocks=stack))
    flops = _flops(gm, shape)
    layers = flops.get("convolution", 0) + flops.get("addmm", 0)
    return layers, flops.get("bmm", 0) + flops.get("mm", 0), report


def _check_at_most_resnext(name, kwargs, shape):
    reference = build_reference(default_reference({"name": name, "kwargs": kwargs}))
    ref = _flops(reference, shape)
    ref_layers = ref.get("convolution", 0) + ref.get("addmm", 0)
    layers, mix, report = _compressed_layer_and_mix_flops(name, kwargs, shape)
    assert report.totals.end_to_end_top1_agreement == 1.0
    assert layers <= ref_layers  # the convolutions and the classifier: ResNeXt's, less the pruned blocks
    assert mix > 0  # stacked, the K-of-C mix is one C×C product per module (zeros where no gate is on) …
    separate_layers, separate_mix, _ = _compressed_layer_and_mix_flops(name, kwargs, shape, stack=False)
    assert separate_mix == 0 and separate_layers == layers  # … written block by block, additions only


@pytest.mark.slow
def test_compressed_maskconnect_29_8_8_does_resnexts_multiply_adds():
    _check_at_most_resnext("maskconnect_cifar", CIFAR[0] | {"num_classes": 100}, (3, 32, 32))


@pytest.mark.slow
def test_compressed_maskconnect_29_64_8_and_imagenet_50_4_32_do_resnexts_multiply_adds():
    _check_at_most_resnext("maskconnect_cifar", CIFAR[1] | {"num_classes": 100}, (3, 32, 32))
    _check_at_most_resnext(
        "maskconnect_imagenet", dict(depth=50, bottleneck_width=4, cardinality=32, fan_in=16), (3, 64, 64)
    )


def test_the_shared_projection_reads_the_blocks_mean_input():
    """y_j − F_j(x_j) is the same for every block of a projecting module (ReLU aside: compared before it), and is
    P of the blocks' mean input; the per-block form gives each block P of its own input."""
    torch.manual_seed(0)
    for projection, same in (("shared", True), ("per_block", False)):
        model = create_model(
            "maskconnect_cifar", depth=11, bottleneck_width=4, cardinality=4, fan_in=2, projection=projection
        ).eval()
        module = model.stages[1]  # 64 → 128, stride 2: a projection
        ys = [torch.randn(2, 64, 8, 8) for _ in range(4)]
        with torch.no_grad():
            module.relu = torch.nn.Identity()
            outs = module(ys)
            shortcuts = [o - b(x) for o, b, x in zip(outs, module.blocks, _inputs(module, ys), strict=True)]
        differ = max(float((s - shortcuts[0]).abs().max()) for s in shortcuts[1:])
        assert (differ < 1e-5) is same
        if same:
            mean = sum(_inputs(module, ys)) / 4
            torch.testing.assert_close(shortcuts[0], module.shortcut(mean), rtol=1e-5, atol=1e-5)


def _inputs(module, ys):
    mask = module.gates.average()
    return [sum(mask[j, k] * ys[k] for k in range(len(ys))) for j in range(len(module.blocks))]


def test_a_spec_without_the_projection_is_the_per_block_network_it_was_written_for():
    new = create_model("maskconnect_cifar", depth=11, bottleneck_width=4, cardinality=4, fan_in=2)
    assert new.prunex_spec.kwargs["projection"] == "shared"  # written out, so that its meaning never changes
    old_spec = {"name": "maskconnect_cifar", "kwargs": dict(depth=11, bottleneck_width=4, cardinality=4, fan_in=2)}
    old = build_model(old_spec)
    assert isinstance(old, MaskConnectNet)
    assert not any(m.shared_projection for m in old.stages) and any(m.shared_projection for m in new.stages)
    with pytest.raises(ValueError, match="projection must be one of shared, per_block"):
        create_model("maskconnect_cifar", projection="once")
