"""References: the network a user would deploy instead of each gated family, built with the same shape."""

import pytest
import torch

from prunex.models import count_parameters, create_model
from prunex.models.references import build_reference, choose_reference, default_reference


def _spec(model):
    return model.prunex_spec


def test_maskconnect_stands_beside_the_resnext_it_learns_the_connections_of():
    gated = create_model(
        "maskconnect_cifar", depth=20, bottleneck_width=4, cardinality=8, fan_in=4, num_classes=7, in_chans=1
    )
    ref = default_reference(_spec(gated))
    plain = build_reference(ref)
    assert ref.name == "resnext_cifar" and "fan_in" not in ref.kwargs
    assert count_parameters(plain)["params"] == count_parameters(gated)["params"]  # the same network, links not learned
    assert plain(torch.zeros(2, 1, 8, 8)).shape == (2, 7)


def test_g_resnext50_stands_beside_torchvision_resnext50():
    ref = default_reference({"name": "g_resnext50", "kwargs": {"num_classes": 10}})
    assert ref.name == "torchvision:resnext50_32x4d"
    model = build_reference(ref)
    assert model.layer1[0].conv2.groups == 32 and model.fc.out_features == 10
    other = build_reference(default_reference({"name": "g_resnext50", "kwargs": {"groups": 16}}))
    assert other.layer1[0].conv2.groups == 16  # torchvision's builder at other groups


def test_cifar_families_stand_beside_their_plain_twins():
    g = default_reference({"name": "g_resnext_cifar", "kwargs": {"depth": 11, "cardinality": 4}})
    plain = build_reference(g)
    convs = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert convs and all(m.groups == 4 for m in convs)
    multi = default_reference({"name": "multiresnet_cifar", "kwargs": {"depth": 8, "k": 3}})
    assert multi.kwargs == {"depth": 8, "k": 1}  # the ResNet of the same depth
    sparse = create_model("sparsenet_cifar", depth=16, growth=(4, 6, 8), bottleneck=True, num_classes=7)
    dense = build_reference(default_reference(_spec(sparse)))
    assert dense.prunex_spec.name == "densenet_cifar" and dense.stem.out_channels == sparse.stem.out_channels == 4
    layers = {net: [layer.body for stage in net.body[::2] for layer in stage.layers] for net in (sparse, dense)}
    growth = [[b[-1].out_channels for b in layers[net]] for net in (sparse, dense)]
    assert growth[0] == growth[1] == [4, 4, 6, 6, 8, 8]
    reads = {net: [b[0].num_features for b in bodies] for net, bodies in layers.items()}
    assert all(s <= d for s, d in zip(reads[sparse], reads[dense], strict=True))  # each reads all the sparse one reads
    assert sum(reads[sparse]) < sum(reads[dense])
    assert dense(torch.zeros(2, 3, 8, 8)).shape == (2, 7)
    assert default_reference({"name": "sparsenet_cifar", "kwargs": {"aggregation": "sum"}}) is None


def test_a_reference_can_be_chosen_by_name_or_switched_off():
    spec = {"name": "maskconnect_cifar", "kwargs": {"num_classes": 5, "in_chans": 1, "fan_in": 2}}
    assert choose_reference("none", spec) is None
    ref = choose_reference("resnext_cifar", spec)
    assert ref.kwargs == {"num_classes": 5, "in_chans": 1}
    tv = choose_reference("torchvision:resnet18", spec)
    assert build_reference(tv).fc.out_features == 5
    with pytest.raises(ValueError, match="torchvision has no such model"):
        choose_reference("torchvision:resnet7", spec)
    with pytest.raises(ValueError, match="unknown reference 'alexnet2'"):
        choose_reference("alexnet2", spec)


def test_the_papers_imagenet_and_depth_networks_stand_beside_the_baselines_their_tables_compare():
    mc = default_reference({"name": "maskconnect_imagenet", "kwargs": {"depth": 101, "cardinality": 64}})
    assert mc.name == "torchvision:resnext101_64x4d"
    assert build_reference(mc).layer3[0].conv2.groups == 64
    plus = build_reference(default_reference({"name": "sparsenet_plus_cifar", "kwargs": {"depth": 20}}))
    assert sum(p.numel() for p in plus.parameters()) == sum(
        p.numel() for p in create_model("sparsenet_plus_cifar", depth=20).parameters()
    )  # the pre-activation ResNet: same weights, dense summation
    dense = default_reference({"name": "sparsenet_imagenet", "kwargs": {"depth": 169, "num_classes": 10}})
    assert dense.name == "torchvision:densenet169" and build_reference(dense).classifier.out_features == 10
