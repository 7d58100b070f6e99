"""Networks from outside the zoo: any torchvision classifier (``torchvision:NAME``), any timm model (``timm:NAME``, the
``timm`` extra), both with random weights (a state dict of the user's own loads with ``--weights FILE``), and a
user's own builder (``package.module:function``, imported from the Python path)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from prunex.models.errors import UnknownModelError
from prunex.runtime.optional import require

TORCHVISION = "torchvision:"
TIMM = "timm:"


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


def _timm_builder(arch: str) -> Callable[..., nn.Module]:
    timm = require("timm", "timm", f"--model {TIMM}{arch}")
    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch[:4]}*")[:5] if len(arch) >= 4 else []
        hint = f"; similar names: {', '.join(close)}" if close else ""
        raise UnknownModelError(
            f"timm has no model {arch!r}{hint} (`python -c 'import timm; print(timm.list_models(\"resnet*\"))'` "
            "lists them)"
        )

    def build(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> nn.Module:
        # NOTE: never pretrained: weights cannot be downloaded here; --weights FILE loads the user's own
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)

    build.__doc__ = f"timm's {arch} (random weights; --weights FILE loads a state dict)."
    return build


def external_builder(name: str) -> Callable[..., nn.Module]:
    """The builder ``name`` designates. NOTE: ``module:function`` imports that module, which runs its code: a
    checkpoint naming one rebuilds its model only where the module is importable, and should come from a source
    you trust (as any Python code)."""
    if name.startswith(TORCHVISION):
        return _torchvision_builder(name.removeprefix(TORCHVISION))
    if name.startswith(TIMM):
        return _timm_builder(name.removeprefix(TIMM))
    module, _, function = name.partition(":")
    try:
        found = importlib.import_module(module)
    except ImportError as err:
        raise UnknownModelError(f"--model {name}: cannot import {module!r} ({err}); is it on the Python path?") from err
    builder = getattr(found, function, None)
    if not callable(builder):
        raise UnknownModelError(f"--model {name}: {module!r} has no function {function!r}")
    return builder
