"""Step 7, non-largest component suppression (Algorithm 5): one piece per single organ.

For every label except :data:`EXEMPT_LABELS`, only the largest 6-connected component is kept;
the other components get ``suppressed_label`` (0 as released). The step runs last among the
label rules so that fragments which earlier rules relabel (a vertebra piece, a cheek, an
eyeball made from gonads) are not deleted before those rules see them; the dissertation lists
it third, the release runs it last and so do we.

Do no harm: a piece is removed only when it is unambiguously a stray piece. Kept are

* pieces **touching the field-of-view border**: a structure cut by the image edge (a partial
  scan) can show as several pieces, and the part outside the image would decide which is main;
* pieces lying **within a gap tolerance of the main piece or of a border piece**, directly or
  through a chain of such pieces: thin or tubular structures split by the voxel grid (a
  vertebral arch joined to its body only across an edge or a corner on 6 mm slices, a vessel
  interrupted for a slice) are one structure. The tolerance is physical: the larger of
  ``largest_component_gap_mm`` (10 mm) and two of the coarsest voxel spacings, measured between
  voxel centres.

Exempt, as released: background 0, unknown tissue 1, muscles 2, fat 3, abdominal tissue 4,
mediastinal tissue 5, small bowel 8, duodenum 9, colon 10, gonads 18 (two testes or ovaries),
breasts 22/23, skin 42, rib cartilage 91, heart tissue 107, bronchi 125, vessels 112..119
(iliac arteries and veins, aorta, inferior vena cava, portal/splenic vein, celiac trunk),
pulmonary artery 127, and the labels the released script adds beyond its label table: nasal
cavity 132 and the neck vessels 133, 134, 136..144 (carotid arteries, internal jugular veins,
brachiocephalic artery and veins, subclavian arteries), which its suppression never visits.
Also the heart 105, which the release means to exempt but misses through a name typo. The
sternum manubrium 135 (never produced by the released models) is a single bone and is checked.
Eyeballs and cheeks *are* suppressed to their largest piece, as released (each side is one
structure).

Each label is split into pieces inside its own bounding box (a binary connected-components pass
per label; the boxes of a whole-body map add up to less than the volume), so labels with one
piece, the usual case, cost one comparison and one labelling of their box; the gap test then
looks only at the boxes around the few non-largest pieces. Labels that an earlier step already
found to be one 6-connected piece (the vertebrae and sacrum in the spine step, the ribs in the
rib steps) and whose voxels no step changed since are not labelled again.
"""

from __future__ import annotations

import math

import cc3d
import numpy as np
from scipy import ndimage

from AnatomyCommonLib.anatomy.label_schema import MAX_LABEL_ID
from AnatomyCommonLib.volume import Volume

from .label_editing import label_boxes_and_counts
from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "largest_component"

#: Above this many pieces of one label to remove, one pass over its box beats one box per piece.
_PER_PIECE_LIMIT = 2000

#: Labels of the released script beyond its label table (never suppressed there): nasal cavity
#: and the neck vessels (135, the sternum manubrium, is not one of them).
RELEASE_EXTRA_LABELS = frozenset({132, 133, 134, *range(136, 145)})

EXEMPT_LABELS = frozenset(
    {0, 1, 2, 3, 4, 5, 8, 9, 10, 18, 22, 23, 42, 91, 105, 107, 125, 127, *range(112, 120)}
    | RELEASE_EXTRA_LABELS
)


def gap_tolerance_mm(settings: PostprocessSettings, spacing_kji_mm) -> float:
    """Largest centre-to-centre distance (mm) at which two same-label pieces are one structure."""
    return max(float(settings.largest_component_gap_mm), 2.0 * max(float(s) for s in spacing_kji_mm))


class _Groups:
    """Union-find over component indices."""

    def __init__(self, n: int):
        self.parent = np.arange(n + 1)

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = int(self.parent[a])
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _protected_pieces(
    pieces: np.ndarray,
    candidates: np.ndarray,
    boxes: list,
    largest: int,
    region,
    full_shape: tuple[int, ...],
    spacing_kji: tuple[float, ...],
    tolerance_mm: float,
) -> tuple[set[int], set[int]]:
    """(pieces touching the image border, pieces within the gap tolerance of the main piece or of
    a border piece, directly or through a chain of such pieces), for the pieces of one label
    (``pieces``: its components in its bounding box ``region``)."""
    at_border: set[int] = set()
    groups = _Groups(len(boxes))
    reach = [math.ceil(tolerance_mm / s) for s in spacing_kji]
    for piece in (int(p) for p in candidates):
        lows = tuple(sl.start for sl in boxes[piece - 1])
        highs = tuple(sl.stop - 1 for sl in boxes[piece - 1])
        if any(
            r.start + lo == 0 or r.start + hi == n - 1
            for r, lo, hi, n in zip(region, lows, highs, full_shape, strict=True)
        ):
            at_border.add(piece)
        # every piece of the label lies in ``region``, so the distances to this piece inside the
        # clipped box are exact
        box = tuple(
            slice(max(0, lo - d), min(n, hi + d + 1))
            for lo, hi, d, n in zip(lows, highs, reach, pieces.shape, strict=True)
        )
        sub = pieces[box]
        others = (sub != 0) & (sub != piece)
        if not others.any():
            continue
        own = sub == piece
        distance = ndimage.distance_transform_edt(~own, sampling=spacing_kji)
        for other in np.unique(sub[others & (distance <= tolerance_mm)]):
            groups.union(piece, int(other))
    anchors = {groups.find(largest)} | {groups.find(p) for p in at_border}
    near = {int(p) for p in candidates if groups.find(int(p)) in anchors}
    return at_border, near


def _occupied_ranges(occupied: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of the runs of True in a 1D array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], occupied, [False])).astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def _components(
    mask: np.ndarray, connectivity: int
) -> tuple[np.ndarray | _SlabPieces | None, int, list | None, np.ndarray | None]:
    """(component map, number of components, their boxes, their sizes) of a label's mask in its
    bounding box.

    A stray piece far from the main one makes the box mostly empty: no component crosses a
    slice without voxels, so each slab between empty slices is labelled in its own tight box
    (about 40 % less labelling on a whole-body map with model errors), and the components'
    boxes (slice tuples in the mask's frame; index 0 = component 1) and voxel counts (index 0 =
    0) come from those tight boxes too. Slabs are numbered in order, so the numbering is the
    raster order of first voxels, as one pass over the box would give. The map, boxes and sizes
    are None when there is at most one component (nothing more is needed).
    """
    slabs = []
    for k0, k1 in _occupied_ranges(mask.any(axis=(1, 2))):
        slab = mask[k0:k1]
        footprint = slab.any(axis=0)  # one pass over the slab; the j and i extents from it
        j = np.flatnonzero(footprint.any(axis=1))
        i = np.flatnonzero(footprint.any(axis=0))
        j0, j1, i0, i1 = int(j[0]), int(j[-1]) + 1, int(i[0]), int(i[-1]) + 1
        box = (slice(k0, k1), slice(j0, j1), slice(i0, i1))
        # contiguous uint8: cc3d 4.1.1 fails on some bool inputs (a (1, 1, 3) [1, 0, 1] with
        # connectivity 26 raises "maximum length exception"); uint8 0/1 gives the same labels
        tight = np.ascontiguousarray(slab[:, j0:j1, i0:i1]).view(np.uint8)
        pieces, n = cc3d.connected_components(tight, connectivity=connectivity, return_N=True)
        slabs.append((box, tight, pieces, n))
    total = sum(n for _, _, _, n in slabs)
    if total <= 1:
        return None, total, None, None
    boxes: list = []
    sizes = [0]
    for box, tight, part, n in slabs:
        if n == 1:  # the slab's tight box is the component's box
            boxes.append(box)
            sizes.append(int(np.count_nonzero(tight)))
            continue
        part_boxes, part_sizes = label_boxes_and_counts(part, n)
        for b, size in zip(part_boxes[1:], part_sizes[1:].tolist(), strict=True):
            boxes.append(tuple(slice(s.start + b[2 * a], s.start + b[2 * a + 1]) for a, s in enumerate(box)))
            sizes.append(size)
    if len(slabs) == 1 and slabs[0][2].shape == mask.shape:
        return slabs[0][2], total, boxes, np.array(sizes, dtype=np.int64)
    return _SlabPieces(mask.shape, slabs), total, boxes, np.array(sizes, dtype=np.int64)


class _SlabPieces:
    """The component map of a label's box (components numbered slab after slab), assembled on
    demand from the slabs' own maps: the rule reads it only around the non-largest pieces, so
    the main piece's slab is never copied whole."""

    def __init__(self, shape: tuple[int, ...], slabs: list):
        self.shape = shape
        self._slabs = []
        offset = 0
        for box, tight, part, n in slabs:
            self._slabs.append((box, tight, part, offset))
            offset += n

    def __getitem__(self, box: tuple[slice, ...]) -> np.ndarray:
        out = np.zeros(tuple(sl.stop - sl.start for sl in box), dtype=np.uint32)
        for slab_box, tight, part, offset in self._slabs:
            common = tuple(
                slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(box, slab_box, strict=True)
            )
            if any(sl.start >= sl.stop for sl in common):
                continue
            source = tuple(
                slice(c.start - b.start, c.stop - b.start) for c, b in zip(common, slab_box, strict=True)
            )
            target = out[
                tuple(slice(c.start - a.start, c.stop - a.start) for c, a in zip(common, box, strict=True))
            ]
            np.add(part[source], offset, out=target, dtype=np.uint32)
            if offset:
                target *= tight[source]  # the background stays 0
        return out

    def whole(self) -> np.ndarray:
        return self[tuple(slice(0, n) for n in self.shape)]


def run(context: StepContext) -> StepReport:
    """Remove the stray pieces of every non-exempt label, in place.

    Each label is labelled in its own bounding box (the boxes of a whole-body map add up to less
    than the volume, and a label with one piece, the usual case, needs nothing more); all
    removals are applied after every label was examined.
    """
    report = context.new_report(STEP_NAME)
    editor = context.editor
    settings = context.settings
    checked = [
        label for label in range(1, MAX_LABEL_ID + 1) if label not in EXEMPT_LABELS and editor.present(label)
    ]
    if not checked:
        return report.skip("no label that must be a single component is present")
    spacing = context.geometry.spacing_kji_mm
    tolerance = gap_tolerance_mm(settings, spacing)
    full_shape = editor.array.shape
    components = kept_at_border = kept_near = 0
    removals = []  # (label, region, pieces, removed piece ids, their boxes, sizes)
    for label in checked:
        if context.is_single_piece(label, settings.largest_component_connectivity):
            components += 1  # an earlier step labelled it: one piece, unchanged since
            continue
        region = editor.box(label)
        pieces, n, boxes, sizes = _components(
            editor.array[region] == label, settings.largest_component_connectivity
        )
        components += n
        if pieces is None:
            continue
        largest = int(np.argmax(sizes))  # the first of equal sizes: the first in raster order
        candidates = np.array([p for p in range(1, n + 1) if p != largest])
        at_border, near = _protected_pieces(
            pieces, candidates, boxes, largest, region, full_shape, spacing, tolerance
        )
        kept_at_border += len(at_border)
        kept_near += len(near - at_border)
        removed = [int(p) for p in candidates if p not in at_border and p not in near]
        if removed:
            removals.append((label, region, pieces, removed, boxes, sizes))
    if components == 0:
        return report.skip("no label that must be a single component is present")
    report.details["pieces_kept_at_the_image_border"] = kept_at_border
    report.details["pieces_kept_within_gap_tolerance"] = kept_near
    report.details["labels_checked"] = len(checked)
    report.details["components"] = int(components)
    for label, _, _, removed, _, sizes in removals:
        report.record_removed_components(label, sizes[removed])
    for _, region, pieces, removed, boxes, _ in removals:
        if len(removed) > _PER_PIECE_LIMIT:  # many specks: one pass over the label's box
            drop = np.zeros(len(boxes) + 1, dtype=bool)
            drop[removed] = True
            whole = pieces if isinstance(pieces, np.ndarray) else pieces.whole()
            editor.relabel(region, drop[whole], settings.suppressed_label, report)
            continue
        for piece in removed:  # a few pieces: work inside each piece's bounding box only
            box = boxes[piece - 1]
            global_box = tuple(
                slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
            )
            editor.relabel(global_box, pieces[box] == piece, settings.suppressed_label, report)
    report.rules.append(
        "non-largest components of single structures removed (not at the image border, not within "
        "the gap tolerance of the main piece)"
    )
    return report


def suppress_non_largest_components(
    labels: Volume, *, settings: PostprocessSettings | None = None
) -> tuple[Volume, StepReport]:
    """Largest-component rule on a DAP label map; returns the new label map and the report."""
    from . import run_single_step

    return run_single_step(run, labels, settings=settings)
