"""What a checkpoint learned, as text and as the papers' pictures (``prunex inspect``)."""

from prunex.artifacts.layout import PICTURE_NAMES  # what draw() may write
from prunex.inspection.figures import PlottingUnavailable
from prunex.inspection.structure import connectivity, feature_reuse, gate_dynamics, grouped_layers, sparse_links
from prunex.inspection.summary import draw, draw_pictures, summarise

__all__ = [
    "PICTURE_NAMES",
    "PlottingUnavailable",
    "connectivity",
    "draw",
    "draw_pictures",
    "feature_reuse",
    "gate_dynamics",
    "grouped_layers",
    "sparse_links",
    "summarise",
]
