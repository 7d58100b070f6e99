"""Numerical validation of an exported model against PyTorch: per output max abs / rel error, top-1 agreement.

Tolerances depend on the precision (Polygraphy compares float32 at 1e-5 with TF32 off; prunex uses 1e-4 of the
output scale, the bound its compiler passes are held to). FP16 engines get their own bound, stated in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from prunex.runtime.backends import Backend, parse_backend
from prunex.runtime.comparison import comparable, compare, exact_float32, scale_note
from prunex.runtime.precision import Precision, parse_precision

TOLERANCES = {  # max |Δ| / max |reference|, minimum top-1 agreement
    Precision.FP32: (1e-4, 1.0),
    Precision.FP16: (2e-2, 0.99),
}


@dataclass
class ValidationReport:
    target: Backend
    precision: str
    tolerance: float
    min_top1_agreement: float
    batches: list[int]
    max_abs_err: float
    max_rel_err: float
    top1_agreement: float
    passed: bool
    output_scale: float = 0.0  # max |PyTorch output| over the batches: what max_rel_err is relative to
    outputs: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # what each batch holds: "test images" or "random inputs"

    @property
    def message(self) -> str:
        verdict = "matches" if self.passed else "DIVERGES from"
        if not comparable(self.output_scale):
            verdict = "cannot be compared with"
        return (
            f"{self.target} ({self.precision}) {verdict} PyTorch: max |Δ| {self.max_abs_err:.3g} = "
            f"{self.max_rel_err:.3g} of the output scale {self.output_scale:.3g} (tolerance {self.tolerance:g}), "
            f"top-1 agreement {100 * self.top1_agreement:.2f}% (required {100 * self.min_top1_agreement:.0f}%) over "
            f"{self.described_batches()}" + scale_note(self.output_scale, "PyTorch's output")
        )

    def described_batches(self) -> str:
        """``batches of 1 and 16 test images and 16 random inputs`` (or the bare sizes when sources are unknown)."""
        if len(self.sources) != len(self.batches):
            return f"batches {self.batches}"
        kinds: dict[str, list[str]] = {}
        for n, source in zip(self.batches, self.sources, strict=True):
            kinds.setdefault(source, []).append(str(n))
        return "batches of " + " and ".join(f"{' and '.join(sizes)} {kind}" for kind, sizes in kinds.items())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}


def validate(
    target: Backend | str,
    run: Callable[[np.ndarray], np.ndarray],
    module: nn.Module,
    batches: list[torch.Tensor],
    precision: Precision | str = Precision.FP32,
    sources: list[str] | None = None,
) -> ValidationReport:
    """Compare ``run`` (numpy in, numpy out) with ``module`` in float32 on each batch."""
    target, precision = parse_backend(target), parse_precision(precision)
    tol, min_agree = TOLERANCES[precision]
    feed = np.float16 if precision is Precision.FP16 else np.float32
    module = module.eval().float()
    worst = {"max_abs_err": 0.0, "max_rel_err": 0.0, "top1_agreement": 1.0, "output_scale": 0.0}
    outputs = []
    for x in batches:
        with exact_float32(), torch.no_grad():
            ref = module(x.float())
        out = torch.from_numpy(np.asarray(run(x.numpy().astype(feed))))
        errs = compare(ref, out.float())
        outputs.append({"batch": len(x), **errs})
        worst["max_abs_err"] = max(worst["max_abs_err"], errs["max_abs_err"])
        worst["max_rel_err"] = max(worst["max_rel_err"], errs["max_rel_err"])
        worst["top1_agreement"] = min(worst["top1_agreement"], errs["top1_agreement"])
        scale = errs["output_scale"]  # a non-finite scale wins: it makes the whole check meaningless
        worst["output_scale"] = scale if not comparable(scale) else max(worst["output_scale"], scale)
    passed = comparable(worst["output_scale"]) and worst["max_rel_err"] <= tol and worst["top1_agreement"] >= min_agree
    return ValidationReport(
        target,
        precision.value,
        tol,
        min_agree,
        [len(x) for x in batches],
        **worst,
        passed=passed,
        outputs=outputs,
        sources=list(sources or []),
    )


def onnxruntime_runner(path: str, providers: list[str] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(path, options, providers=providers or ["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run


def batch_sources(real: torch.Tensor | None) -> list[str]:
    """What each of :func:`validation_batches`' batches holds."""
    first = "test images" if real is not None and len(real) else "random inputs"
    return [first, first, "random inputs"]


def validation_batches(shape: tuple[int, ...], real: torch.Tensor | None = None, n: int = 16) -> list[torch.Tensor]:
    """Batches of 1 and ``n`` (the dynamic batch dimension is exercised), real images first when given."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(n, *shape, generator=g)
    first = real[:n] if real is not None and len(real) else noise
    return [first[:1], first, noise]
