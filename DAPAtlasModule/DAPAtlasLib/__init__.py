"""DAP Atlas outside Slicer: the label schema, the synthetic whole-body phantom, and (as the
module grows) post-processing, statistics and inference.

Nothing here imports ``slicer``, ``qt`` or ``vtk`` at import time.
"""

from .inference import segment  # whole-body segmentation with the released models (torch loads lazily)
from .label_schema import (
    DAPLabel,
    all_labels,
    label_by_id,
    label_by_name,
    label_id,
    left_right_pairs,
    rib_id,
    vertebra_id,
)

__all__ = [
    "DAPLabel",
    "all_labels",
    "label_by_id",
    "label_by_name",
    "label_id",
    "left_right_pairs",
    "rib_id",
    "segment",
    "vertebra_id",
]
