"""What a checkpoint learned, as text and as the papers' pictures (``prunex inspect``)."""

from prunex.inspection.figures import PlottingUnavailable
from prunex.inspection.structure import connectivity, grouped_layers, sparse_links
from prunex.inspection.summary import PICTURE_NAMES, draw, draw_pictures, summarise

__all__ = [
    "PICTURE_NAMES",
    "PlottingUnavailable",
    "connectivity",
    "draw",
    "draw_pictures",
    "grouped_layers",
    "sparse_links",
    "summarise",
]
