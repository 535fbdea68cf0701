"""CC-Metrics outside Slicer: per-connected-component metrics via generalized Voronoi regions.

- :func:`voronoi_regions`: the full region map of the reference's connected components.
- :func:`evaluate`: per-component Dice, IoU, NSD, HD95, HD, ASSD (mm) with their CC means, the
  standard global metrics, Panoptic Quality and Lesion Dice (:class:`CCMetricsResult`).
- :func:`compare`: several predictions against one reference, one table (:class:`ComparisonResult`).
- :func:`evaluate_labels`: label maps, one label at a time.
- :func:`multirater_agreement`: inter/intra-rater agreement band, STAPLE consensus, models against
  the band (Peak Ground Truth).

Nothing here imports ``slicer``, ``qt`` or ``vtk`` at import time.
"""

from .evaluation import (
    METRICS,
    CCMetricsResult,
    ComparisonResult,
    compare,
    evaluate,
    evaluate_labels,
)
from .multirater import multirater_agreement
from .voronoi import voronoi_regions

__all__ = [
    "METRICS",
    "CCMetricsResult",
    "ComparisonResult",
    "compare",
    "evaluate",
    "evaluate_labels",
    "multirater_agreement",
    "voronoi_regions",
]
