"""The network a user would deploy instead of a gated one: the reference a benchmark times beside it.

By default each family has one — a network whose convolutions learned their grouping (``--learn-groups``) stands
beside itself as it was built; G-ResNeXt-50 / 101 stand beside torchvision's ResNeXt of the same groups and
width, the CIFAR families beside the plain network of the same depth and widths from this zoo (MaskConnect →
ResNeXt {D, w, C}, G-ResNeXt-CIFAR → Xie et al.'s grouped ResNeXt-29, Multi-ResNet → its k = 1 ResNet), the ImageNet
MaskConnect beside torchvision's ResNeXt, SparseNet[+] beside its pre-activation ResNet and SparseNet ImageNet
beside torchvision's DenseNet of the same depth (the papers' own comparisons). Any other
is chosen by name: a registered model or ``torchvision:NAME``. References get random weights: only their speed
is measured.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import list_models as torchvision_models
from torchvision.models import resnet as tv_resnet

from prunex.artifacts.model_spec import ModelSpec
from prunex.models.external import TIMM, external_builder
from prunex.models.family import TORCHVISION, Reference, classes_of, keep
from prunex.models.g_resnext import CifarResNeXt
from prunex.models.registry import create_model, list_models, model_entry, registered

NONE = "none"
AUTO = "auto"


def default_reference(spec: ModelSpec | dict[str, Any]) -> Reference | None:
    """The family's reference for the model ``spec`` = {"name", "kwargs"} describes, as its registry entry says;
    None where there is none (the CIFAR SparseNet[⊕] has no plain twin, nor a network from outside the zoo)."""
    spec = ModelSpec.from_dict(spec)
    name, kwargs = spec.name, dict(spec.kwargs)
    if spec.learn_groups:  # any network whose convolutions learned their grouping: itself, as it was
        return Reference(name, kwargs)
    entry = registered(name)
    return entry.reference(kwargs) if entry is not None and entry.reference is not None else None


def choose_reference(choice: str, spec: ModelSpec | dict[str, Any]) -> Reference | None:
    """``auto`` (the family's default), ``none``, or a name; a name is built with the model's classes and input
    channels where it takes them. Raises ValueError for a name that is not registered, in torchvision or in timm."""
    if choice == AUTO:
        return default_reference(spec)
    if choice == NONE:
        return None
    kwargs = ModelSpec.from_dict(spec).kwargs
    if choice.startswith(TORCHVISION):
        if choice.removeprefix(TORCHVISION) not in torchvision_models():
            raise ValueError(f"{choice}: torchvision has no such model")
        return Reference(choice, keep(kwargs, "num_classes"))
    if choice.startswith(TIMM):
        external_builder(choice)  # a name timm does not have, or timm not installed, is said here
        return Reference(choice, classes_of(kwargs))
    if choice not in list_models():
        raise ValueError(
            f"unknown reference {choice!r}: a registered model ({', '.join(list_models())}), torchvision:NAME or "
            "timm:NAME"
        )
    takes = inspect.signature(model_entry(choice).builder).parameters
    return Reference(choice, {k: v for k, v in classes_of(kwargs).items() if k in takes})


def build_reference(reference: Reference) -> nn.Module:
    """The reference network with random weights, in eval mode."""
    kwargs = dict(reference.kwargs)
    name = reference.name.removeprefix(TORCHVISION)
    unbuilt = reference.name.startswith(TORCHVISION) and name not in torchvision_models()
    for depth, layers in (("50", [3, 4, 6, 3]), ("101", [3, 4, 23, 3])):
        prefix = f"resnext{depth}_"
        if unbuilt and name.startswith(prefix):  # torchvision's ResNeXt at other groups / widths than it builds
            groups, width = (int(v) for v in name.removeprefix(prefix).removesuffix("d").split("x"))
            return tv_resnet.ResNet(tv_resnet.Bottleneck, layers, groups=groups, width_per_group=width, **kwargs).eval()
    if reference.name == "resnext29_cifar":
        kwargs = {"depth": 29, "cardinality": 8, "bottleneck_width": 16, "num_classes": 10, "in_chans": 3, **kwargs}
        return CifarResNeXt(**kwargs).eval()
    return create_model(reference.name, **kwargs).eval()  # registered, torchvision:NAME or module:function


@dataclass(frozen=True)
class ReferenceCost:
    """What the reference network costs for one image: weights and multiply-adds (convolutions and matrix
    products, counted by PyTorch's FLOP counter)."""

    label: str
    params: int
    macs: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.label, "params": self.params, "macs": self.macs}


def reference_cost(reference: Reference, input_shape: tuple[int, int, int]) -> ReferenceCost:
    """The reference's size and MACs at ``input_shape`` (C, H, W), measured on the meta device: nothing is
    allocated or computed, so a ResNeXt-101 costs milliseconds."""
    with torch.device("meta"):
        module = build_reference(reference)
        x = torch.zeros(1, *input_shape)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    params = sum(p.numel() for p in module.parameters())
    return ReferenceCost(reference.label, params, int(counter.get_total_flops()) // 2)
