"""The networks of the papers' ImageNet, Mini-ImageNet and depth-scaling tables: structure, exact compression, ONNX."""

import pytest
import torch
import torchvision
from torch import nn

from prunex.models import analytic_complexity, count_parameters, create_model
from prunex.models.maskconnect import imagenet_modules, maskconnect_imagenet_complexity
from prunex.models.resnext_cifar import multibranch_complexity
from prunex.models.sparsenet_imagenet import sparsenet_imagenet_complexity
from prunex.nn.branch_gates import BranchGates, sample_k_of_c
from prunex.runtime.onnx_program import export_onnx
from tests.models.test_zoo import measured_macs
from tests.passes.helpers import randomise_batchnorm
from tests.passes.test_compress_equivalence import assert_equivalent


def _resnext(layers, groups, width):
    return torchvision.models.resnet.ResNet(
        torchvision.models.resnet.Bottleneck, layers, groups=groups, width_per_group=width
    )


@pytest.mark.parametrize(
    ("depth", "width", "cardinality", "layers"),
    [
        (50, 4, 32, [3, 4, 6, 3]),
        pytest.param(101, 4, 32, [3, 4, 23, 3], marks=pytest.mark.slow),
        pytest.param(101, 4, 64, [3, 4, 23, 3], marks=pytest.mark.slow),
    ],
)
def test_maskconnect_imagenet_is_resnext_with_one_bn_per_block(depth, width, cardinality, layers):
    """Table 2's networks are Xie et al.'s ResNeXt with each of the C branches a residual unit of its own: the same
    convolutions (the C branch convs are the grouped conv's groups), plus C − 1 more BNs after each module's last 1×1,
    and C² mask entries between consecutive modules."""
    ref = sum(p.numel() for p in _resnext(layers, cardinality, width).parameters())
    outs = [s.out_ch for s in imagenet_modules(depth, width)]
    cx = analytic_complexity("maskconnect_imagenet", depth=depth, bottleneck_width=width, cardinality=cardinality)
    assert cx.params == ref + sum(2 * (cardinality - 1) * o for o in outs)
    assert cx.gates == (len(outs) - 1) * cardinality**2
    assert analytic_complexity("maskconnect_imagenet", depth=depth, cardinality=cardinality).params == cx.params
    model = create_model("maskconnect_imagenet", depth=depth, bottleneck_width=width, cardinality=cardinality)
    assert model.stages[1].gates.fan_in == cardinality // 2  # K = C/2 (§3.2)
    if depth == 50:
        assert count_parameters(model) == {"params": cx.params, "gates": cx.gates}


@pytest.mark.slow
def test_maskconnect_imagenet_small_input_trains_and_compresses_exactly(tmp_path):
    torch.manual_seed(0)
    model = create_model("maskconnect_imagenet", depth=50, cardinality=3, num_classes=10, seed=0)
    x = torch.randn(4, 3, 32, 32)
    nn.functional.cross_entropy(model.train()(x), torch.arange(4)).backward()
    assert all(p.grad is not None for p in model.parameters())
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, BranchGates):
            m.freeze()
            m.mask = sample_k_of_c(torch.ones(3, 3), 1, g)  # K = 1: blocks nobody reads are removed
    model = randomise_batchnorm(model).eval()
    gm, report = assert_equivalent(model, x)
    dead = sum(not on for stage in model.active_blocks() for on in stage)
    assert dead > 0 and report.totals.params_after < report.totals.params_before
    export_onnx(gm, x[:1], tmp_path / "m.onnx")


def test_mini_imagenet_network_adds_a_max_pool_after_the_first_conv():
    """Table 6: the CIFAR {D, w, C} networks with a 3×3/2 max-pool after the stem: same weights, 64×64 inputs reach
    the first module at 32×32 (a quarter of the MACs of the stages)."""
    kw = dict(depth=20, bottleneck_width=4, cardinality=8)
    plain, pooled = create_model("maskconnect_cifar", **kw), create_model("maskconnect_cifar", stem_pool=True, **kw)
    assert count_parameters(plain) == count_parameters(pooled)
    assert isinstance(pooled.stem[-1], nn.MaxPool2d) and not isinstance(plain.stem[-1], nn.MaxPool2d)
    seen = {}
    pooled.stages[0].register_forward_hook(lambda m, i, o: seen.update(hw=tuple(i[0][0].shape[-2:])))
    pooled.eval()(torch.randn(1, 3, 64, 64))
    assert seen["hw"] == (32, 32)
    base = dict(kw, num_classes=10, in_chans=3, stem_width=None, out_width=None, gates_per_module=0)
    at_32 = multibranch_complexity(**base, image_size=32).macs
    at_64_pooled = multibranch_complexity(**base, stem_pool=True, image_size=64).macs
    stem_macs = 3 * 16 * 9
    assert at_64_pooled - 64 * 64 * stem_macs == at_32 - 32 * 32 * stem_macs
    rx = create_model("resnext_cifar", stem_pool=True, **kw)
    assert isinstance(rx.stem[-1], nn.MaxPool2d)
    small = create_model("maskconnect_cifar", depth=11, bottleneck_width=4, cardinality=4, fan_in=2, stem_pool=True)
    gm, _ = assert_equivalent(randomise_batchnorm(small).eval(), torch.randn(4, 3, 64, 64))
    assert any(isinstance(m, nn.MaxPool2d) for m in gm.modules())


def test_densenet_is_the_sparsenet_whose_layers_read_every_earlier_output():
    """Every layer of a DenseNet stage concatenates all earlier outputs (most recent first); with one layer per stage
    DenseNet and SparseNet read the same (the layer reads the input; the stage output, offsets 1 and 2, both): same
    weights, same function."""
    from prunex.inspection import sparse_links

    dense = create_model("densenet_cifar", depth=16, growth=4, num_classes=10)
    links = sparse_links(dense)
    assert [stage.links for stage in links] == [[[0], [1, 0], [2, 1, 0], [3, 2, 1, 0], [4, 3, 2, 1, 0]]] * 3
    shallow = randomise_batchnorm(create_model("densenet_cifar", depth=7, growth=4, num_classes=10)).eval()
    sparse = create_model("sparsenet_cifar", depth=7, growth=4, stem_width=8, num_classes=10).eval()
    sparse.load_state_dict(shallow.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(sparse(x), shallow(x))
    assert (
        sum(p.numel() for p in dense.parameters()) == analytic_complexity("densenet_cifar", depth=16, growth=4).params
    )


def test_sparsenet_plus_with_one_block_per_stage_is_the_preact_resnet():
    """With one block per stage the stage output P(h) + f_1(h) is ResNet's, so SparseNet[+] computes the
    pre-activation ResNet (Multi-ResNet with k = 1) exactly; with two, the stage output (offsets 1, 2 of three
    outputs) no longer sums the projection."""
    torch.manual_seed(0)
    sparse = randomise_batchnorm(create_model("sparsenet_plus_cifar", depth=11)).eval()
    resnet = create_model("multiresnet_cifar", depth=11, k=1, block="bottleneck", stride_first=False).eval()
    assert sum(p.numel() for p in sparse.parameters()) == sum(p.numel() for p in resnet.parameters())
    resnet.load_state_dict(_as_multiresnet(sparse.state_dict()))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(sparse(x), resnet(x))
    deeper = randomise_batchnorm(create_model("sparsenet_plus_cifar", depth=20)).eval()
    dense = create_model("multiresnet_cifar", depth=20, k=1, block="bottleneck").eval()
    dense.load_state_dict(_as_multiresnet(deeper.state_dict()))
    assert not torch.allclose(deeper(x), dense(x), atol=1e-3)


def _as_multiresnet(state: dict) -> dict:
    """SparseNet[+] names → Multi-ResNet (k = 1) names: stage s's function i is block s·n + i's only function; the
    stage's pre-activation and projection belong to its first block."""
    n = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("stages.0.functions."))
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] != "stages":
            out[key] = value
        elif parts[2] == "functions":
            out[".".join(["blocks", str(int(parts[1]) * n + int(parts[3])), "functions", "0", *parts[4:]])] = value
        else:
            out[".".join(["blocks", str(int(parts[1]) * n), *parts[2:]])] = value
    return out


@pytest.mark.parametrize(
    ("name", "kwargs", "size"),
    [
        ("sparsenet_plus_cifar", {"depth": 29}, 16),
        pytest.param("sparsenet_imagenet", {"depth": 121, "growth": 4, "num_classes": 10}, 32, marks=pytest.mark.slow),
        ("sparsenet_cifar", {"depth": 29, "growth": 4, "bottleneck": True}, 8),  # 6N + 5, read as BC-1001 is
    ],
)
def test_sparse_networks_train_compress_exactly_and_export(name, kwargs, size, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    x = torch.randn(4, 3, size, size)
    nn.functional.cross_entropy(model.train()(x), torch.arange(4)).backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())
    gm, _ = assert_equivalent(randomise_batchnorm(model).eval(), x)
    export_onnx(gm, x[:1], tmp_path / "m.onnx")


def test_sparsenet_bc_1001_reads_166_layers_per_stage_trains_and_other_depths_are_refused():
    """(At random initialisation a thousand concatenating layers are too ill-conditioned in fp32 for a 1e-4
    equivalence check: fp32 and fp64 forwards already differ by the output's own scale; depth 29 = 6·4 + 5 is
    compressed.)"""
    torch.manual_seed(0)
    model = create_model("sparsenet_cifar", depth=1001, growth=2, bottleneck=True)
    assert [len(stage.layers) for stage in model.body[::2]] == [166, 166, 166]
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    for depth in (1002, 1003):
        with pytest.raises(ValueError, match="6N \\+ 4"):
            create_model("sparsenet_cifar", depth=depth, growth=12, bottleneck=True)


def test_imagenet_networks_macs_follow_the_analytic_count():
    cx = maskconnect_imagenet_complexity(
        depth=50,
        bottleneck_width=4,
        cardinality=4,
        fan_in=2,
        connectivity="learned",
        num_classes=10,
        in_chans=3,
        seed=None,
        image_size=64,
    )
    model = create_model("maskconnect_imagenet", depth=50, cardinality=4, num_classes=10)
    assert measured_macs(model.eval(), (1, 3, 64, 64)) == cx.macs
    sparse = create_model("sparsenet_imagenet", depth=121, growth=8, num_classes=10)
    kw = dict(depth=121, growth=8, stem_width=None, base=2, num_classes=10, in_chans=3, image_size=64)
    assert measured_macs(sparse.eval(), (1, 3, 64, 64)) == sparsenet_imagenet_complexity(**kw).macs
    table4 = create_model("sparsenet_imagenet", depth=121, growth=8, num_classes=10, head_pool=3)  # Table 4's head
    cx = sparsenet_imagenet_complexity(**kw, head_pool=3)
    assert measured_macs(table4.eval(), (1, 3, 64, 64)) == cx.macs
    assert sum(p.numel() for p in table4.parameters()) == cx.params
    assert cx.params - sparsenet_imagenet_complexity(**kw).params == 8 * table4.head.fc.in_features // 9 * 10
