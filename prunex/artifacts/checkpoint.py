"""The checkpoint format: architecture spec + state dict + training state, written atomically, read without
unpickling code.

A checkpoint is a dict ``{"format": "prunex.checkpoint", "version", "spec": {"name", "kwargs"}, "state_dict",
"dataset", "config", "train_state", "metrics"}`` saved with ``torch.save`` and read with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from prunex.artifacts.errors import InputError
from prunex.artifacts.layout import checkpoint_file
from prunex.artifacts.model_spec import ModelSpec
from prunex.artifacts.outputs import atomic_file

FORMAT, VERSION = "prunex.checkpoint", 1


class CheckpointError(InputError):
    """A file that cannot be used as a prunex checkpoint; the message says why."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically: a kill mid-write leaves the previous file intact. A
    :class:`ModelSpec` under ``"spec"`` is written as its plain dict (a checkpoint holds no Python objects)."""
    if isinstance(payload.get("spec"), ModelSpec):
        payload = {**payload, "spec": payload["spec"].to_dict()}
    with atomic_file(Path(path)) as pending, open(pending.path, "wb") as f:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint (never executes pickled code)."""
    path = checkpoint_file(Path(path))
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # torch's own text suggests an unsafe load: say what was found instead
        raise CheckpointError(
            f"{path}: not a prunex checkpoint (it is not a torch.save file, or it holds Python objects that a "
            "checkpoint never holds; prunex reads checkpoints without running code)"
        ) from err
    except Exception as err:  # torch.load's many ways of failing on a damaged file (EOF, zip, unpickler state)
        raise CheckpointError(f"{path}: not a complete checkpoint (truncated, or not a torch.save file)") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a prunex checkpoint (no '{FORMAT}' marker)")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt['version']} is newer than this prunex ({VERSION})")
    for key in ("spec", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: prunex checkpoint without '{key}'")
    try:
        ModelSpec.from_dict(ckpt["spec"])
    except ValueError:
        raise CheckpointError(f"{path}: its model spec is malformed (needs a name and a table of arguments)") from None
    state = ckpt["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise CheckpointError(f"{path}: its state dict is malformed (needs parameter names mapped to tensors)")
    if ckpt.get("dataset") is not None and not isinstance(ckpt["dataset"], dict):
        raise CheckpointError(f"{path}: its dataset record is malformed")
    return ckpt


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
