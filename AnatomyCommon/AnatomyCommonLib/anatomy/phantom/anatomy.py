"""The whole body in painting order, its lesion hosts, and the clean-up of detached fragments.

:class:`Anatomy` combines the body-region mixins into the ordered list of structures for one
seed and sex; :func:`merge_detached_fragments` tidies the painted label map.
"""

from __future__ import annotations

import numpy as np

from .anatomy_builder import LesionHost
from .anatomy_organs import OrganAnatomy
from .anatomy_skeleton import SkeletonAnatomy
from .anatomy_trunk import TrunkAnatomy
from .anatomy_vessels import VesselAnatomy


class Anatomy(TrunkAnatomy, OrganAnatomy, VesselAnatomy, SkeletonAnatomy):
    """The anatomy of one seed and sex: every region's structures in painting order."""

    # -- the body, in painting order
    def _build(self) -> None:
        self._body()
        self._spine_layout()
        self._muscles()
        self._thorax()
        self._abdomen()
        self._pelvis()
        self._head_and_neck()
        self._vessels()
        self._airways()
        self._bones()
        self._ribs()

    # -- lesion hosts
    def lesion_hosts(self) -> list[LesionHost]:
        vertebra_labels = frozenset(range(43, 67))
        return [
            LesionHost("liver", 0.3, self.liver, frozenset({13}), "lesion liver", (5.0, 60.0)),
            LesionHost("lung", 0.3, self.lungs, frozenset(range(120, 125)), "lesion lung", (3.0, 45.0)),
            LesionHost(
                "bone", 0.15, self.bone_hosts, vertebra_labels | {103, 104}, "lesion bone", (5.0, 25.0)
            ),
            LesionHost("lymph node", 0.15, None, frozenset({1, 3}), "lesion lymph node", (6.0, 30.0)),
            LesionHost("kidney", 0.05, self.kidneys, frozenset({15, 16}), "lesion kidney", (5.0, 30.0)),
            LesionHost("spleen", 0.05, self.spleen, frozenset({26}), "lesion spleen", (5.0, 30.0)),
        ]


#: Labels allowed to consist of several pieces (body layers, paired gonads, costal cartilages).
#: Vertebrae and ribs are one piece by construction (and the tests check it), so the clean-up
#: leaves them alone.
_MULTI_PART_LABELS = frozenset({0, 1, 2, 3, 42, 18, 91}) | frozenset(range(43, 91))


def merge_detached_fragments(labels: np.ndarray) -> None:
    """Give detached fragments of single-piece structures to their most common neighbour.

    Where a later structure cuts through an earlier one on a coarse grid, a few voxels can be
    left isolated; real segmentations (and the DAP Atlas rules) expect one piece per organ.
    The material (and so the CT) of those voxels is unchanged.
    """
    from scipy import ndimage

    structure = np.ones((3, 3, 3), dtype=bool)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or index in _MULTI_PART_LABELS:
            continue
        box = tuple(
            slice(max(b.start - 1, 0), min(b.stop + 1, n)) for b, n in zip(box, labels.shape, strict=True)
        )
        crop = labels[box]
        components, count = ndimage.label(crop == index, structure=structure)
        if count <= 1:
            continue
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        keep = int(np.argmax(sizes))
        for fragment_id, fragment_box in enumerate(ndimage.find_objects(components), start=1):
            if fragment_id == keep or fragment_box is None:
                continue
            grown = tuple(
                slice(max(b.start - 1, 0), min(b.stop + 1, n))
                for b, n in zip(fragment_box, crop.shape, strict=True)
            )
            fragment = components[grown] == fragment_id
            around = ndimage.binary_dilation(fragment, structure=structure) & ~fragment
            neighbours = crop[grown][around]
            neighbours = neighbours[neighbours != index]
            crop[grown][fragment] = int(np.bincount(neighbours).argmax()) if neighbours.size else 1
