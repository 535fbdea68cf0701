"""DAP Atlas outside Slicer: anatomical-rule post-processing, statistics and inference.

The label schema and the synthetic phantom are shared by every module and live in
:mod:`AnatomyCommonLib.anatomy`; the schema lookups are re-exported here for convenience.

Nothing here imports ``slicer``, ``qt`` or ``vtk`` at import time.
"""

from AnatomyCommonLib.anatomy.label_schema import (
    DAPLabel,
    all_labels,
    label_by_id,
    label_by_name,
    label_id,
    left_right_pairs,
    rib_id,
    vertebra_id,
)

from .inference import segment  # whole-body segmentation with the released models (torch loads lazily)

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
