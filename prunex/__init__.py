"""prunex: a deployment compiler for CNNs with learned connectivity.

Every command is a call here: :func:`train_run`, :func:`compress_run`, :func:`inspect_run`, :func:`export`,
:func:`bench`; :func:`compress` compiles a model in memory and :func:`load_compressed` reads a compressed one.

The names are imported when first used, so that ``import prunex.artifacts`` (reading a compressed model, say)
loads neither the trainer nor the compiler.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from prunex.version import __version__

_HOMES = {
    "load_compressed": "prunex.artifacts.compressed_model",
    "create_model": "prunex.models",
    "learn_groups": "prunex.models",
    "list_models": "prunex.models",
    "compress": "prunex.passes",
    "bench": "prunex.workflows",
    "compress_run": "prunex.workflows",
    "export": "prunex.workflows",
    "inspect_run": "prunex.workflows",
    "train_run": "prunex.workflows",
    "StructureSchedule": "prunex.train.structure_schedule",
    "fuse_gates": "prunex.nn.fused_gates",
}

if TYPE_CHECKING:
    from prunex.artifacts.compressed_model import load_compressed
    from prunex.models import create_model, learn_groups, list_models
    from prunex.nn.fused_gates import fuse_gates
    from prunex.passes import compress
    from prunex.train.structure_schedule import StructureSchedule
    from prunex.workflows import bench, compress_run, export, inspect_run, train_run


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'prunex' has no attribute {name!r}")


__all__ = [
    "StructureSchedule",
    "__version__",
    "bench",
    "compress",
    "compress_run",
    "create_model",
    "export",
    "fuse_gates",
    "inspect_run",
    "learn_groups",
    "list_models",
    "load_compressed",
    "train_run",
]
