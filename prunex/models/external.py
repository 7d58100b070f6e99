"""Networks from outside the zoo: any torchvision classifier (``torchvision:NAME``, random weights) and a user's own
builder (``package.module:function``, imported from the Python path)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from prunex.models.errors import UnknownModelError

TORCHVISION = "torchvision:"


def is_external(name: str) -> bool:
    return ":" in name


def _torchvision_builder(arch: str) -> Callable[..., nn.Module]:
    import torchvision.models as tvm

    known = tvm.list_models(module=tvm)
    if arch not in known:
        raise UnknownModelError(
            f"torchvision has no classification model {arch!r} (e.g. resnet50, regnet_x_400mf, mobilenet_v3_small, "
            "convnext_tiny; `python -c 'import torchvision; print(torchvision.models.list_models())'` lists them)"
        )

    def build(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
        return tvm.get_model(arch, weights=None, num_classes=num_classes, **kwargs)

    build.__doc__ = f"torchvision's {arch} (random weights; --weights FILE loads a state dict)."
    return build


def external_builder(name: str) -> Callable[..., nn.Module]:
    """The builder ``name`` designates. NOTE: ``module:function`` imports that module, which runs its code: a
    checkpoint naming one rebuilds its model only where the module is importable, and should come from a source
    you trust (as any Python code)."""
    if name.startswith(TORCHVISION):
        return _torchvision_builder(name.removeprefix(TORCHVISION))
    module, _, function = name.partition(":")
    try:
        found = importlib.import_module(module)
    except ImportError as err:
        raise UnknownModelError(f"--model {name}: cannot import {module!r} ({err}); is it on the Python path?") from err
    builder = getattr(found, function, None)
    if not callable(builder):
        raise UnknownModelError(f"--model {name}: {module!r} has no function {function!r}")
    return builder
