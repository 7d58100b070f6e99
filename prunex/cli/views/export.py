"""How ``prunex export`` says what an INT8 export did."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prunex.exporters.int8 import Int8Model


def int8_lines(int8: Int8Model | None) -> list[str]:
    """What an INT8 export did, for the console (nothing for other precisions)."""
    if int8 is None:
        return []
    done = len(int8.quantized)
    lines = [f"int8: {done} layers quantized ({int8.observer.value} observer, {int8.calibration_images} images)"]
    if int8.layers:  # tuned
        ms = ", ".join(f"{k} {v:.3f}" for k, v in int8.network_ms.items())
        kept = [int8.label(n) for n in int8.kept_float]
        faster = sum(layer.int8 for layer in int8.layers)
        lines.append(f"int8 tuning: {faster} of {len(int8.layers)} layers ran faster in int8 on their own")
        lines.append(f"int8 tuning: networks timed end to end (ms at the target batch): {ms}; kept {int8.network}")
        if kept and not done:
            lines.append("no int8 network was faster than fp32 end to end: the model is written in floating point")
        elif kept:
            lines.append(f"left in floating point (not faster in int8): {', '.join(kept)}")
    return lines
