"""What ``prunex models`` shows of each registered model: the network ``prunex train --model NAME`` builds on the
default dataset (digits: 10 classes, 1 channel, where the builder takes them), its size, and its reference."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from prunex.models.complexity import Complexity
from prunex.models.references import ReferenceCost
from prunex.models.registry import analytic_complexity, list_models, model_entry

DEFAULT_DATASET = {"num_classes": 10, "in_chans": 1}  # the embedded digits, `prunex train`'s default


def plain(text: str) -> str:
    """A docstring's text without reST markup (``x`` → x)."""
    return re.sub(r"``?([^`]+)``?", r"\1", text)


@dataclass(frozen=True)
class ModelListing:
    name: str
    paper: str
    summary: str  # the docstring's first paragraph, one line
    details: str  # the whole docstring
    kwargs: dict[str, Any]  # what `prunex train --model NAME` builds with on digits
    complexity: Complexity
    rgb_only: bool  # the builder takes no in_chans: it needs a 3-channel dataset
    reference: str | None  # the network `prunex bench` compares it with
    reference_cost: ReferenceCost | None  # its weights and MACs at the same input


def listing(name: str) -> ModelListing:
    from prunex.models.references import default_reference, reference_cost

    entry = model_entry(name)
    defaults = entry.defaults()
    kwargs = {**defaults, **{k: v for k, v in DEFAULT_DATASET.items() if k in defaults}}
    doc = plain(inspect.getdoc(entry.builder) or "")
    summary = " ".join(doc.split("\n\n")[0].split())
    reference = default_reference({"name": name, "kwargs": kwargs})
    cost = None
    if reference is not None:  # at the paper's image size; a torchvision reference reads RGB
        channels = reference.kwargs.get("in_chans", 3)
        cost = reference_cost(reference, (channels, entry.image_size, entry.image_size))
    return ModelListing(
        name,
        entry.paper,
        summary,
        doc,
        kwargs,
        analytic_complexity(name, **{k: kwargs[k] for k in DEFAULT_DATASET if k in defaults}),
        "in_chans" not in defaults,
        reference.label if reference else None,
        cost,
    )


def all_listings() -> list[ModelListing]:
    return [listing(name) for name in list_models()]
