"""Networks no other test names (torchvision's, random weights, every conv that can learn its grouping with
random gates): each compiles exactly, keeps a gather only where two orders meet, exports to an ONNX graph that
onnxsim cannot shrink and that holds no ScatterND / Transpose / Identity, and validates under ONNX Runtime."""

import pytest
import torch
import torchvision
from torch import fx, nn

from prunex.exporters.validate import onnxruntime_runner, validate, validation_batches
from prunex.models import learn_groups
from prunex.nn.dgconv import DGConv2d
from prunex.passes import compress
from prunex.passes.propagate_permutations import is_gather
from prunex.runtime.onnx_program import export_onnx
from tests.exporters.minimal_graph import assert_minimal, op_counts
from tests.passes.helpers import random_dgconv_gates, randomise_batchnorm

pytestmark = pytest.mark.slow

NETWORKS = {  # name: (builder keywords, input size)
    "inception_v3": (dict(aux_logits=False, init_weights=False), 96),
    "googlenet": (dict(aux_logits=False, init_weights=False), 64),
    "vgg11_bn": ({}, 224),  # the classifier reads a 7×7 map, as at ImageNet size (a 2×2 one is upsampled)
    "shufflenet_v2_x0_5": ({}, 64),
    "efficientnet_b0": ({}, 64),
    "regnet_y_400mf": ({}, 64),
    "mnasnet0_5": ({}, 64),
    "resnext50_32x4d": ({}, 64),
}


def gated(name: str) -> nn.Module:
    kwargs, _ = NETWORKS[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=10, **kwargs)
    try:
        learn_groups(model)
    except ValueError:  # no k×k conv can learn its grouping (depthwise networks): the 1×1 ones do
        learn_groups(model, pointwise=True)
    return random_dgconv_gates(randomise_batchnorm(model)).eval()


def gathers_before(gm: fx.GraphModule, node: fx.Node) -> list[str]:
    """The gathers on the single-input path back from ``node`` to the nearest conv."""
    found, cur = [], node.args[0]
    while isinstance(cur, fx.Node) and not (
        cur.op == "call_module" and isinstance(gm.get_submodule(cur.target), nn.Conv2d)
    ):
        found += [cur.name] if is_gather(cur) else []
        cur = cur.args[0] if cur.args else None
    return found


@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_held_out_network_compiles_exactly_to_a_minimal_graph(name, tmp_path):
    model = gated(name)
    assert any(isinstance(m, DGConv2d) for m in model.modules())
    size = NETWORKS[name][1]
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(1))
    gm, report = compress(model, x[:1], calibration=x)
    assert report.totals.end_to_end_max_rel_err <= 1e-5
    assert all(g.forced_by for g in report.gathers_remaining)  # each names the orders that meet there
    path = export_onnx(gm, x[:1], tmp_path / f"{name}.onnx")
    assert_minimal(path)
    checked = validate("onnxruntime", onnxruntime_runner(str(path)), model, validation_batches((3, size, size)))
    assert checked.passed, checked.message
    if name == "vgg11_bn":
        (classifier,) = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == "classifier.0"]
        assert gathers_before(gm, classifier) == []  # the classifier absorbs the last conv's order
    if name == "shufflenet_v2_x0_5":
        assert op_counts(path)["Reshape"] <= 1  # the flatten before fc; every shuffle is a gather or gone
