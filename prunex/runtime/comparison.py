"""Numerical comparison of two models' outputs, in exact float32 (what every verification uses)."""

from __future__ import annotations

import contextlib
import math
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


SCALE_LIMIT = 1e6  # outputs beyond this are no longer logits of a working network


def compare(reference: torch.Tensor, output: torch.Tensor) -> dict[str, float]:
    """max |Δ|, max |Δ| / max |reference|, top-1 agreement over the batch (for logits), and the output scale
    max |reference| every relative error is taken against."""
    delta = (output.float() - reference.float()).abs()
    scale = reference.detach().float().abs().max()
    agree = 1.0
    if reference.dim() == 2 and reference.shape[1] > 1:
        agree = float((output.argmax(1) == reference.argmax(1)).float().mean())
    return {
        "max_abs_err": float(delta.max()),
        "max_rel_err": float(delta.max() / scale.clamp_min(1e-12)),
        "top1_agreement": agree,
        "output_scale": float(scale),
    }


def scale_of(output: torch.Tensor) -> float:
    """max |output|: the scale relative errors are stated against."""
    return float(output.detach().float().abs().max())


def comparable(scale: float) -> bool:
    """Whether outputs of this scale can be compared at all (a non-finite reference makes every check meaningless)."""
    return math.isfinite(scale)


def scale_warning(scale: float, what: str = "the model's output") -> str | None:
    """What an output scale means when it is not that of a working network's logits (None when it is)."""
    if not comparable(scale):
        return (
            f"{what} is not finite (max |output| = {scale}): no comparison can show that two networks agree; the "
            "network itself is broken (diverged training, overflowing weights or batch-norm statistics)"
        )
    if scale > SCALE_LIMIT:
        return (
            f"{what} reaches {scale:.3g} (above {SCALE_LIMIT:.0e}): errors are stated relative to that scale, so the "
            "check still holds, but logits this large mean a diverged or broken network — check it before deploying"
        )
    return None


def scale_note(scale: float, what: str) -> str:
    """``; <what the scale means>`` to append to a verdict, or nothing for a working network's scale."""
    warning = scale_warning(scale, what)
    return f"; {warning}" if warning else ""
