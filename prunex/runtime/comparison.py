"""Numerical comparison of two models' outputs, in exact float32 (what every verification uses)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """float32 matmul / conv without TF32 while verifying."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def compare(reference: torch.Tensor, output: torch.Tensor) -> dict[str, float]:
    """max |Δ|, max |Δ| / max |reference|, and top-1 agreement over the batch (for logits)."""
    delta = (output.float() - reference.float()).abs()
    scale = reference.float().abs().max().clamp_min(1e-12)
    agree = 1.0
    if reference.dim() == 2 and reference.shape[1] > 1:
        agree = float((output.argmax(1) == reference.argmax(1)).float().mean())
    return {"max_abs_err": float(delta.max()), "max_rel_err": float(delta.max() / scale), "top1_agreement": agree}
