"""The device a user names (``auto``, ``cpu``, ``cuda``, ``cuda:N``), resolved once and checked before any work."""

from __future__ import annotations

import torch

from prunex.artifacts.errors import InputError


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cuda`` is this process's GPU (``local_rank``). InputError for
    a device this machine does not have or a name that is none."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for but no CUDA device is available")
        try:
            return torch.device("cuda", local_rank) if preference == "cuda" else torch.device(preference)
        except RuntimeError as err:
            raise InputError(f"device must be auto, cpu or cuda[:N], got {preference!r}") from err
    if preference != "cpu":
        raise InputError(f"device must be auto, cpu or cuda[:N], got {preference!r}")
    return torch.device("cpu")
