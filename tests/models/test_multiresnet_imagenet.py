"""Multi-ResNet for ImageNet (Table IV): He et al.'s pre-activation ResNet with k residual functions per block."""

import pytest
import torch
import torchvision
from torch import nn

from prunex.models import create_model
from prunex.passes import compress
from prunex.runtime.onnx_program import export_onnx
from prunex.train import build_config
from prunex.train.schedule import lr_factor
from tests.passes.helpers import randomise_batchnorm


def _weights(model):
    return sorted(tuple(m.weight.shape) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


@pytest.mark.parametrize(("depth", "resnet"), [(18, torchvision.models.resnet18), (101, torchvision.models.resnet101)])
def test_k_1_has_exactly_the_convolutions_of_he_et_al_resnet_and_k_2_doubles_the_residual_functions(depth, resnet):
    plain = create_model("multiresnet_imagenet", depth=depth, k=1)
    assert _weights(plain) == _weights(resnet())
    double = create_model("multiresnet_imagenet", depth=depth, k=2)
    per_function = sum(sum(isinstance(m, nn.Conv2d) for m in b.functions[0].modules()) for b in plain.blocks)
    assert len(_weights(double)) == len(_weights(plain)) + per_function  # one more function in every block


@pytest.mark.slow  # ~6 s; Multi-ResNet compression is checked at CIFAR sizes by default
def test_forward_backward_exact_compression_and_onnx_export(tmp_path):
    torch.manual_seed(0)
    model = create_model("multiresnet_imagenet", depth=18, k=2, num_classes=10)
    x = torch.randn(2, 3, 32, 32)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model = randomise_batchnorm(model).eval()
    gm, report = compress(model, x)
    with torch.no_grad():
        ref = model(x)
        assert float((gm(x) - ref).abs().max()) <= 1e-5 * float(ref.abs().max())
    assert report.totals.macs_after == report.totals.macs_before  # branches merged, nothing removed
    export_onnx(gm, x[:1], tmp_path / "m.onnx")


def test_imagenet_recipe_is_90_epochs_dividing_the_lr_by_10_every_30():
    cfg = build_config({"model": "multiresnet_imagenet", "dataset": "imagefolder", "recipe": "paper"})
    (phase,) = cfg.phases
    lrs = {e: phase.lr * lr_factor(phase, e, 0, 10) for e in (0, 29, 30, 59, 60, 89)}
    assert phase.epochs == 90 and lrs == pytest.approx({0: 0.1, 29: 0.1, 30: 0.01, 59: 0.01, 60: 0.001, 89: 0.001})
    assert cfg.weight_decay == 1e-4 and cfg.batch_size == 256
