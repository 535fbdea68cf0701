"""What the post-processing steps share during one run: the label map, CT, sex, settings, plane.

:class:`PostprocessSettings` holds every tunable threshold with its unit and default (the
defaults reproduce the released behaviour where it is sound). :class:`StepContext` carries the
editable label map and the inputs from step to step, and computes shared landmarks once: the
mid-sagittal plane (used by the left/right split, rib counting and the eyeball side of the
body-part rule) and the height of each vertebra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from AnatomyCommonLib.volume import Volume

from .anatomy_geometry import (
    DEFAULT_MAX_PLANE_TILT_DEG,
    PLANE_ANCHOR_IDS,
    MidsagittalPlane,
    PlaneFitFailure,
    fit_midsagittal_plane,
    heights_of,
    median_ras,
)
from .label_editing import LabelMapEditor
from .report import StepReport


@dataclass(frozen=True)
class PostprocessSettings:
    """Thresholds of the anatomical rules (units in the names)."""

    #: Left/right split: largest accepted angle between plane normal and left-right axis.
    max_plane_tilt_deg: float = DEFAULT_MAX_PLANE_TILT_DEG
    #: Voxels closer than this to the mid-sagittal plane keep their side (at least half a voxel).
    midline_tolerance_mm: float = 2.0
    #: A connected piece of a paired structure with less than this fraction of its voxels on the
    #: other side of the plane goes wholly to its majority side.
    side_minority_fraction: float = 0.1
    #: Rib counting: a rib component smaller than this fraction of a typical rib is a fragment.
    rib_fragment_fraction: float = 0.1
    #: Fragments farther than this from every numbered rib keep their label.
    rib_fragment_max_distance_mm: float = 10.0
    #: Cheeks: thyroid pieces at least this far above the thyroid's main piece are cheeks.
    cheek_min_height_above_thyroid_mm: float = 40.0
    #: Cheeks: thyroid pieces smaller than this are left to the largest-component rule.
    cheek_min_component_ml: float = 0.05
    #: Skull from the CT: bone window (Hounsfield units, inclusive).
    skull_hu_min: float = 300.0
    skull_hu_max: float = 3000.0
    #: Label given to suppressed voxels (sex rule, largest-component rule). 0 as released.
    suppressed_label: int = 0
    #: Connectivity of the non-largest component suppression (6 as released).
    largest_component_connectivity: int = 6
    #: Largest-component rule: pieces of one label whose nearest voxel centres are at most this
    #: far apart (or two of the coarsest voxel spacings, whichever is larger) are one structure.
    largest_component_gap_mm: float = 10.0


@dataclass
class StepContext:
    """Inputs and shared landmarks of one post-processing run."""

    editor: LabelMapEditor
    ct: Volume | None = None
    sex: str | None = None  # "M", "F" or None
    settings: PostprocessSettings = field(default_factory=PostprocessSettings)
    _plane: MidsagittalPlane | PlaneFitFailure | None = None
    _heights: dict[int, float] = field(default_factory=dict)
    #: Rib components computed by the rib-order check for rib counting, valid while the map's
    #: rib voxels are unchanged (see :mod:`.rib_anatomy`).
    rib_components: object | None = None
    #: Labels a step found to be one connected piece: label -> (editor version, connectivity).
    _single_pieces: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def geometry(self):
        return self.editor.geometry

    def new_report(self, step: str) -> StepReport:
        return StepReport(step=step, voxel_volume_ml=self.editor.voxel_volume_ml)

    # ---------------------------------------------------------------- the mid-sagittal plane
    def plane(self, *, refresh: bool = False) -> MidsagittalPlane | PlaneFitFailure:
        """The mid-sagittal plane through vertebra, sternum and sacrum centres (cached)."""
        if self._plane is None or refresh:
            anchors = {}
            for label in PLANE_ANCHOR_IDS:
                found = self.editor.mask(label)
                if found is not None:
                    anchors[label] = median_ras(self.geometry, *found)
            self._plane = fit_midsagittal_plane(anchors, max_tilt_deg=self.settings.max_plane_tilt_deg)
        return self._plane

    def midline_tolerance_mm(self) -> float:
        return max(self.settings.midline_tolerance_mm, 0.5 * max(self.geometry.spacing_kji_mm))

    # ---------------------------------------------------------------- components found on the way
    def note_single_piece(self, label: int, connectivity: int) -> None:
        """Record that ``label`` is one ``connectivity``-connected piece now (a step that labels
        components anyway says so, and the largest-component rule need not label it again)."""
        self._single_pieces[int(label)] = (self.editor.version(label), int(connectivity))

    def is_single_piece(self, label: int, connectivity: int) -> bool:
        """True when ``label`` was found to be one piece and no voxel of it changed since."""
        found = self._single_pieces.get(int(label))
        return found is not None and found == (self.editor.version(label), int(connectivity))

    # ---------------------------------------------------------------- heights of structures
    def median_height(self, label: int) -> float | None:
        """Median height (RAS z, mm) of a label's voxels, or None if absent (cached per run)."""
        if label not in self._heights:
            found = self.editor.mask(label)
            self._heights[label] = (
                None if found is None else float(np.median(heights_of(self.geometry, *found)))
            )
        return self._heights[label]

    def mean_of_median_heights(self, labels: tuple[int, ...]) -> tuple[float | None, list[int]]:
        """Mean median height over the present labels and which of them were present."""
        present = [(label, self.median_height(label)) for label in labels]
        present = [(label, h) for label, h in present if h is not None]
        if not present:
            return None, []
        return float(np.mean([h for _, h in present])), [label for label, _ in present]

    def forget_heights(self) -> None:
        self._heights.clear()


StepFunction = Callable[[StepContext], StepReport]
