"""How the ``compile`` backend prepares a module (a user's choice, so it imports nothing heavy: ``--help`` reads it)."""

from __future__ import annotations

from enum import StrEnum


class CompileMode(StrEnum):
    """How ``torch.compile`` prepares a module for inference."""

    DEPLOY = "deploy"  # inductor freezing (weights, folded BN and layouts become constants) + CUDA graphs on CUDA
    MAX_AUTOTUNE = "max-autotune"  # DEPLOY with autotuned kernels (slow to compile)
    DEFAULT = "default"  # torch.compile's defaults: no freezing, no CUDA graphs

    def torch_mode(self, cuda: bool) -> str:
        """The ``mode=`` argument of ``torch.compile`` (CUDA graphs only exist on CUDA)."""
        if self is CompileMode.DEFAULT:
            return "default"
        if self is CompileMode.MAX_AUTOTUNE:
            return "max-autotune" if cuda else "max-autotune-no-cudagraphs"
        return "reduce-overhead" if cuda else "default"

    @property
    def freezing(self) -> bool:
        return self is not CompileMode.DEFAULT
