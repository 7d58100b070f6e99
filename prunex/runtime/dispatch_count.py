"""What a step asks of the device, counted at the ATen dispatcher (a stand-in for kernel launches on a CPU).

Every ATen op that reaches the dispatcher is counted once. Of those, *kernel ops* are the ones that do work on a
device: views and aliases (their schema returns an alias of an input), in-place metadata changes (``squeeze_``,
``t_``, …) and bare allocations (``empty``) launch nothing. *Host syncs* are ops that make the host wait for the
device: reading a value (``.item()``, ``float()``, ``bool()``, ``.tolist()``) and ops whose output size depends on
the data (``nonzero``, boolean-mask indexing, ``unique``, …).

The counter also follows the bytes of every tensor storage the counted ops create and reports the peak held at
once (on CUDA, ``torch.cuda.max_memory_allocated`` is the better figure).
"""

from __future__ import annotations

import weakref
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

ALLOCATIONS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})
HOST_SYNCS = frozenset(
    {
        "_local_scalar_dense",  # .item(), float(t), bool(t), int(t), .tolist()
        "nonzero",
        "nonzero_static",
        "masked_select",
        "unique",
        "_unique",
        "_unique2",
        "unique_consecutive",
        "unique_dim",
        "bincount",
        "histc",
        "multinomial",  # checks its input with .item()
        "_assert_async",
    }
)


def is_kernel_op(func) -> bool:
    """False for ops that launch nothing: views / aliases, in-place metadata changes, bare allocations."""
    if func.overloadpacket.__name__ in ALLOCATIONS or torch.Tag.inplace_view in func.tags:
        return False
    returns = func._schema.returns
    return not (returns and returns[0].alias_info is not None and not returns[0].alias_info.is_write)


@dataclass
class DispatchCounts:
    ops: Counter = field(default_factory=Counter)
    kernel_ops: int = 0
    host_syncs: Counter = field(default_factory=Counter)
    peak_bytes: int = 0

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def syncs(self) -> int:
        return sum(self.host_syncs.values())

    def as_dict(self) -> dict:
        return {
            "aten_ops": self.total,
            "kernel_ops": self.kernel_ops,
            "host_syncs": self.syncs,
            "host_sync_ops": dict(self.host_syncs),
            "peak_bytes": self.peak_bytes,
        }


class DispatchCounter(TorchDispatchMode):
    """``with DispatchCounter() as c: step()`` then ``c.counts`` (:class:`DispatchCounts`)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = DispatchCounts()
        self._live = 0
        self._seen: set[int] = set()

    def _track(self, out) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in self._seen or storage.nbytes() == 0:
                continue
            self._seen.add(key)
            self._live += storage.nbytes()
            self.counts.peak_bytes = max(self.counts.peak_bytes, self._live)
            weakref.finalize(t, self._release, key, storage.nbytes())

    def _release(self, key: int, nbytes: int) -> None:
        self._seen.discard(key)
        self._live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.counts.ops[name] += 1
        kernel = is_kernel_op(func)
        if kernel:
            self.counts.kernel_ops += 1
        if name in HOST_SYNCS:
            self.counts.host_syncs[name] += 1
        out = func(*args, **(kwargs or {}))
        if kernel:
            self._track(out)
        return out
