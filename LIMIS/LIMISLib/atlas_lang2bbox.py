"""Atlas-prompted Lang2BBox: "liver" -> the liver's box on the active slice of a whole-body label map.

No LIMIS LoRA adapter for Grounding DINO is published, so without one there is no learned text ->
box model. When a whole-body label map in DAP ids exists for the volume (a DAP Atlas result or any
map in the same ids, on the CT's voxel grid), :class:`AtlasLang2BBox` answers the same question
from that map: the structure's pixels on the active axial slice (display orientation, see
:mod:`LIMISLib.slice_geometry`), their tight box, enlarged by the LIMIS margin (10 px per side,
the dissertation's best setting in section 3.3.3.2; 20 px was clearly worse). The mask still comes
from the BBox2Mask model; the map only places the box.

Names resolve through the shared anatomy vocabulary (:func:`LIMISLib.organ_vocabulary.resolve_structure`:
all DAP structures, left/right in either order, synonyms, small typos); an unknown name raises
``InvalidPromptError`` listing close matches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from AnatomyCommonLib.volume import Volume

from .exceptions import GeometryMismatchError, InvalidPromptError, StructureNotFoundError
from .model_interfaces import Detection
from .slice_geometry import AxialSliceGeometry, box_around_mask

#: The LIMIS default enlargement of a detected box, pixels per side (dissertation 3.3.3.2).
LIMIS_BOX_MARGIN_PX = 10.0


def require_same_grid(labels: Volume, ct: Volume) -> None:
    """Raise ``GeometryMismatchError`` unless ``labels`` lies on ``ct``'s voxel grid."""
    if tuple(labels.shape) != tuple(ct.shape) or not np.allclose(
        np.asarray(labels.ijk_to_ras, float), np.asarray(ct.ijk_to_ras, float), atol=1e-3
    ):
        raise GeometryMismatchError(
            f"The label map (shape {tuple(labels.shape)}) is not on the CT's voxel grid (shape "
            f"{tuple(ct.shape)}); resample it onto the CT (e.g. Slicer's Resample Image (BRAINS) with "
            "nearest-neighbour interpolation) before using it as the box source."
        )


class AtlasLang2BBox:
    """Boxes from a whole-body label map in DAP ids (see the module docstring).

    ``labels`` is on the CT's grid; :meth:`for_slice` binds the detector to an axial slice (the
    :class:`~LIMISLib.volume_session.VolumeSession` does this for every slice it starts).
    """

    name = "atlas label map"
    is_atlas = True

    def __init__(
        self,
        labels: Volume,
        *,
        margin_px: float = LIMIS_BOX_MARGIN_PX,
        slice_index: int | None = None,
        geometry: AxialSliceGeometry | None = None,
    ) -> None:
        labels.require_3d("label map")
        if margin_px < 0:
            raise InvalidPromptError(f"The box margin must be >= 0 pixels; got {margin_px}.")
        self.labels = labels
        self.geometry = geometry or AxialSliceGeometry.from_volume(labels)
        self.margin_px = float(margin_px)
        self.slice_index = None if slice_index is None else self.geometry.require_slice(slice_index)

    def for_slice(self, slice_index: int) -> AtlasLang2BBox:
        """The same detector answering for axial slice ``slice_index``."""
        return AtlasLang2BBox(
            self.labels, margin_px=self.margin_px, slice_index=slice_index, geometry=self.geometry
        )

    @staticmethod
    def resolve(target: str) -> tuple[str, int]:
        """(canonical DAP name, label id) of free text; ``InvalidPromptError`` with close matches."""
        from AnatomyCommonLib.anatomy.label_schema import label_id

        from .organ_vocabulary import resolve_structure

        try:
            name = resolve_structure(target)
        except KeyError as error:
            raise InvalidPromptError(
                f"{error.args[0]} Name a structure of the DAP Atlas schema ('liver', 'kidney left')."
            ) from None
        return name, int(label_id(name))

    def slice_box(self, target: str, slice_index: int) -> tuple[float, float, float, float]:
        """The target's box (tight + margin, clipped) on ``slice_index`` in display pixels."""
        name, value = self.resolve(target)
        mask = self.geometry.extract(self.labels.array, slice_index) == value
        box = box_around_mask(mask, self.margin_px)
        if box is None:
            raise StructureNotFoundError(self._absent_message(name, value, slice_index))
        return box

    def detect(
        self,
        image_hu: np.ndarray,
        target: str,
        *,
        candidates: Sequence[str] | None = None,
        score_threshold: float = 0.3,
    ) -> Detection:
        """The target's box on the bound slice; score 1.0 (a label map has no confidence)."""
        if self.slice_index is None:
            raise InvalidPromptError(
                "The atlas box source is not bound to a slice; use AtlasLang2BBox.for_slice(index)."
            )
        if np.shape(image_hu) != self.geometry.image_shape:
            raise GeometryMismatchError(
                f"The slice image has shape {np.shape(image_hu)}; the label map's axial slices are "
                f"{self.geometry.image_shape}."
            )
        name, _ = self.resolve(target)
        return Detection(label=name, box_xyxy=self.slice_box(name, self.slice_index), score=1.0)

    def _absent_message(self, name: str, value: int, slice_index: int) -> str:
        axes = tuple(a for a in range(3) if a != self.geometry.slice_axis)
        present = np.flatnonzero((self.labels.array == value).any(axis=axes))
        if present.size == 0:
            return f"The label map has no {name} at all; draw a box over it instead."
        nearest = int(present[np.argmin(np.abs(present - slice_index))])
        return (
            f"The label map has no {name} on slice {slice_index} (it spans slices "
            f"{int(present.min())}-{int(present.max())}; nearest: {nearest}). Go to one of those "
            "slices or draw a box."
        )
