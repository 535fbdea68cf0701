"""Simulated model errors: mistakes of the raw DAP model injected into a correct label map.

Used by tests, the demo and the benchmark (these are not exceptions; those live in
:mod:`.exceptions`).

The anatomical rules are checked on phantoms whose labels are correct, after injecting the
mistakes the dissertation reports for the raw DAP Atlas model: left/right swaps, confused rib
numbers, rib and vertebra fragments of the wrong label, gonads in the orbit, bowel in the nasal
cavity, the bladder in place of the gallbladder, bronchi above the lungs, thyroid pieces in the
cheek, organs of the other sex, stray fragments of single organs, the skull missing.

Every injector returns an :class:`InjectedError` naming the step that must repair it, the voxels
it changed and the labels those voxels must have after the repair (usually the original labels;
for "bowel in the nasal cavity" the nasal cavity, for "organ of the other sex" and "stray
fragment" the suppressed label 0). :func:`inject_model_errors` applies several and returns the
corrupted label map with the expected repair.

All positions are in patient RAS millimetres from the label map's geometry, so the same
injection works on any orientation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from AnatomyCommonLib.anatomy.label_schema import label_by_id, rib_id, vertebra_id
from AnatomyCommonLib.volume import Volume

from .postprocess.anatomy_geometry import PatientGeometry, median_ras


class CannotInjectError(ValueError):
    """An error kind has no room in this label map (a structure it needs is missing or too small)."""


@dataclass
class InjectedError:
    """One injected mistake and how the post-processing must repair it."""

    kind: str
    step: str  # the post-processing step that repairs it
    description: str
    voxels: int
    mask: np.ndarray = field(repr=False)  # kji voxels the injection changed
    expected: np.ndarray = field(repr=False)  # labels of those voxels after the repair (1D, mask order)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "step": self.step, "description": self.description, "voxels": self.voxels}


@dataclass
class CorruptedLabels:
    """A label map with injected errors and the label map the rules should turn it into."""

    labels: Volume
    expected: Volume
    errors: list[InjectedError]
    original: Volume | None = None
    #: Error kinds that could not be placed in this map, with the reason (nothing of them was injected).
    skipped: dict[str, str] = field(default_factory=dict)

    def expected_after(self, clean_output: Volume) -> np.ndarray:
        """What the rules must produce from the corrupted map, given their output on the clean map.

        The rules may change a correct map too (the largest-component rule removes stray voxels
        of a phantom's discretisation); the corrupted map must then give the same result, except
        at the injected voxels whose repair is a new label (nasal cavity, cheek, suppression).
        """
        result = np.array(clean_output.array, copy=True)
        original = self.original.array
        for error in self.errors:
            restores = error.expected == original[error.mask]
            result[error.mask] = np.where(restores, result[error.mask], error.expected)
        return result

    @property
    def error_mask(self) -> np.ndarray:
        mask = np.zeros(self.labels.shape, dtype=bool)
        for error in self.errors:
            mask |= error.mask
        return mask


class LabelMapInjector:
    """Working copy of a label map with the geometry helpers the injectors use.

    ``array`` is the copy being corrupted, ``original`` the untouched labels; :meth:`ball` and
    :meth:`distance_to` work in patient RAS millimetres. Shared with the post-processing
    benchmark, which paints extra labels with it.
    """

    def __init__(self, labels: Volume):
        self.volume = labels
        self.array = np.array(labels.array, dtype=np.uint8, copy=True)
        self.original = self.array.copy()
        self.geometry = PatientGeometry(labels)
        self.full = self.geometry.full_region()

    def mask_of(self, label: int) -> np.ndarray:
        return self.array == label

    def median(self, label: int) -> np.ndarray | None:
        """Median RAS position of a label in the *original* (correct) map."""
        return median_ras(self.geometry, self.original == label, self.full)

    def heights(self, mask: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.geometry.height_field(self.full), mask.shape)

    def ball(self, center_ras: np.ndarray, radius_mm: float) -> np.ndarray:
        """Full-size mask of the voxels within ``radius_mm`` of a RAS point (computed in its box)."""
        center = np.asarray(center_ras, dtype=float)
        corners = np.array([[dx, dy, dz] for dx in (-1, 1) for dy in (-1, 1) for dz in (-1, 1)], dtype=float)
        ras_to_kji = np.linalg.inv(np.c_[self.geometry.axes_ras, self.geometry.origin_ras][:, :3])
        kji = (corners * radius_mm + center - self.geometry.origin_ras) @ ras_to_kji.T
        region = tuple(
            slice(max(0, int(np.floor(lo)) - 1), min(n, int(np.ceil(hi)) + 2))
            for lo, hi, n in zip(kji.min(axis=0), kji.max(axis=0), self.array.shape, strict=True)
        )
        mask = np.zeros(self.array.shape, dtype=bool)
        if any(sl.start >= sl.stop for sl in region):
            return mask
        total = None
        for axis_index in range(3):
            direction = np.zeros(3)
            direction[axis_index] = 1.0
            component = self.geometry.linear_field(direction, region, float(center[axis_index]))
            total = component**2 if total is None else total + component**2
        shape = tuple(sl.stop - sl.start for sl in region)
        mask[region] = np.broadcast_to(total, shape) < radius_mm**2
        return mask

    def distance_to(self, center_ras: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Distance (mm) from a RAS point of the voxels of ``mask`` (1D, mask order)."""
        return np.linalg.norm(self.geometry.points_ras(mask) - np.asarray(center_ras), axis=1)

    def change(
        self,
        kind: str,
        step: str,
        description: str,
        mask: np.ndarray,
        new_label: int,
        expected: np.ndarray | int | None = None,
    ) -> InjectedError:
        if not mask.any():
            raise CannotInjectError(
                f"Cannot inject {kind!r}: the structures it needs are not in this label map."
            )
        original = self.array[mask].copy()
        self.array[mask] = new_label
        if expected is None:
            expected_values = original
        elif np.isscalar(expected):
            expected_values = np.full(original.shape, int(expected), dtype=np.uint8)
        else:
            expected_values = np.asarray(expected, dtype=np.uint8)
        return InjectedError(kind, step, description, int(mask.sum()), mask, expected_values)


def _largest_piece(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected piece of a mask (injected blobs must be one piece)."""
    import cc3d

    if not mask.any():
        return mask
    return cc3d.largest_k(mask, k=1, connectivity=6) > 0


# ---------------------------------------------------------------------------- injectors
def swap_sides(
    inj: LabelMapInjector, pairs: Iterable[tuple[int, int]] = ((15, 16), (103, 104), (27, 28))
) -> list[InjectedError]:
    """Whole paired structures labelled with the other side (both kidneys swapped, ...)."""
    errors = []
    for left, right in pairs:
        is_left, is_right = inj.mask_of(left), inj.mask_of(right)
        names = f"{label_by_id(left).display_name} / {label_by_id(right).display_name}"
        errors.append(inj.change("left_right_swap", "left_right_split", f"{names} swapped", is_left, right))
        errors.append(inj.change("left_right_swap", "left_right_split", f"{names} swapped", is_right, left))
    return errors


def mislabel_upper_half(inj: LabelMapInjector, structure: int = 122, wrong: int = 120) -> list[InjectedError]:
    """The upper half of one structure labelled as its partner (right lower lobe partly "left")."""
    mask = inj.mask_of(structure)
    heights = inj.heights(mask)
    mask &= heights > np.median(heights[mask])
    return [
        inj.change(
            "left_right_partial",
            "left_right_split",
            f"upper half of {label_by_id(structure).display_name} labelled {label_by_id(wrong).display_name}",
            mask,
            wrong,
        )
    ]


def shuffle_ribs(inj: LabelMapInjector, moves: dict[int, int] | None = None) -> list[InjectedError]:
    """Ribs labelled with the wrong number (default: left 3<->7, right 5->6->5)."""
    moves = moves or {
        rib_id(3, "left"): rib_id(7, "left"),
        rib_id(7, "left"): rib_id(3, "left"),
        rib_id(5, "right"): rib_id(6, "right"),
        rib_id(6, "right"): rib_id(5, "right"),
    }
    masks = {old: inj.mask_of(old) for old in moves}
    return [
        inj.change(
            "rib_shuffle",
            "rib_counting",
            f"{label_by_id(old).display_name} labelled {label_by_id(new).display_name}",
            masks[old],
            new,
        )
        for old, new in moves.items()
    ]


def rib_piece_with_wrong_number(
    inj: LabelMapInjector, rib: int | None = None, wrong: int | None = None
) -> list[InjectedError]:
    """The outer part of a rib labelled as another rib (a "fragment" of the wrong rib)."""
    rib = rib or rib_id(4, "left")
    wrong = wrong or rib_id(9, "left")
    mask = inj.mask_of(rib)
    distance = inj.distance_to(inj.median(vertebra_id("T6")), mask)
    outer = np.zeros(mask.shape, dtype=bool)
    outer[mask] = distance > np.percentile(distance, 70)
    mask = outer
    return [
        inj.change(
            "rib_fragment",
            "rib_counting",
            f"outer part of {label_by_id(rib).display_name} labelled {label_by_id(wrong).display_name}",
            mask,
            wrong,
        )
    ]


def vertebra_piece_of_neighbour(
    inj: LabelMapInjector, vertebra: str = "T8", neighbour: str = "T7"
) -> list[InjectedError]:
    """The lower third of a vertebra labelled as the vertebra above."""
    label, other = vertebra_id(vertebra), vertebra_id(neighbour)
    whole = inj.mask_of(label)
    heights = inj.heights(whole)
    mask = whole & (heights < np.percentile(heights[whole], 33)) if whole.any() else whole
    if whole.any() and not mask.any():
        # coarse grids: the lowest plane holds a third or more of the vertebra; take that plane
        mask = whole & (heights <= heights[whole].min() + 1e-6)
        if mask.sum() == whole.sum():
            raise CannotInjectError(
                f"Cannot inject 'vertebra_fragment': {vertebra} is one plane thick, so it has no lower part."
            )
    return [
        inj.change(
            "vertebra_fragment",
            "spine_fragments",
            f"lower third of {vertebra} labelled {neighbour}",
            mask,
            other,
        )
    ]


def thyroid_in_cheek(inj: LabelMapInjector, radius_mm: float = 12.0) -> list[InjectedError]:
    """A blob of soft tissue in the left cheek labelled thyroid left (repair: cheek left)."""
    c1 = inj.median(vertebra_id("C1"))
    center = c1 + np.array([-45.0, 60.0, 15.0])  # patient left is -x
    mask = _largest_piece(inj.ball(center, radius_mm) & np.isin(inj.array, (1, 2, 3)))
    return [
        inj.change(
            "thyroid_in_cheek", "cheeks", "soft tissue of the left cheek labelled thyroid", mask, 29, 128
        )
    ]


def gonads_in_orbit(inj: LabelMapInjector) -> list[InjectedError]:
    """Both eyeballs labelled gonads (repair: eyeball left / right)."""
    mask = inj.mask_of(130) | inj.mask_of(131)
    return [inj.change("gonads_in_orbit", "body_part_limits", "eyeballs labelled gonads", mask, 18)]


def bowel_in_nasal_cavity(inj: LabelMapInjector, radius_mm: float = 10.0) -> list[InjectedError]:
    """A blob of soft tissue between the eyes, above C1, labelled colon (repair: nasal cavity)."""
    eyes = [inj.median(label) for label in (130, 131)]
    center = np.mean(eyes, axis=0) + np.array([0.0, -8.0, -18.0])
    mask = _largest_piece(inj.ball(center, radius_mm) & np.isin(inj.array, (1, 2, 3)))
    if not mask.any():
        raise CannotInjectError(
            "Cannot inject 'bowel_in_nasal_cavity': no soft tissue (labels 1-3) lies within "
            f"{radius_mm:g} mm of the nasal cavity position between the eyes on this grid."
        )
    return [
        inj.change("bowel_in_nasal_cavity", "body_part_limits", "face tissue labelled colon", mask, 10, 132)
    ]


def bladder_for_gallbladder(inj: LabelMapInjector) -> list[InjectedError]:
    """The gallbladder labelled bladder (repair: gallbladder)."""
    return [
        inj.change(
            "bladder_above_pelvis", "body_part_limits", "gallbladder labelled bladder", inj.mask_of(12), 17
        )
    ]


def bronchi_above_lungs(inj: LabelMapInjector) -> list[InjectedError]:
    """The trachea above the lung apices labelled bronchi (repair: trachea)."""
    tops = []
    for lobe in (121, 124):
        lobe_mask = inj.mask_of(lobe)
        tops.append(float(inj.heights(lobe_mask)[lobe_mask].max()))
    mask = inj.mask_of(126)
    mask &= inj.heights(mask) > np.mean(tops) + 10.0
    return [
        inj.change(
            "bronchi_above_lungs", "body_part_limits", "trachea above the lungs labelled bronchi", mask, 125
        )
    ]


def organ_of_other_sex(inj: LabelMapInjector, sex: str) -> list[InjectedError]:
    """Male: the prostate labelled uterus; female: the uterus labelled prostate (repair: 0)."""
    if sex == "M":
        return [
            inj.change(
                "sex_inconsistent", "sex_consistency", "prostate labelled uterus", inj.mask_of(19), 21, 0
            )
        ]
    return [
        inj.change("sex_inconsistent", "sex_consistency", "uterus labelled prostate", inj.mask_of(21), 19, 0)
    ]


def stray_fragments(inj: LabelMapInjector, radius_mm: float = 9.0) -> list[InjectedError]:
    """Blobs of liver, spleen and brain inside the thigh muscles (repair: removed, 0)."""
    femur_left, femur_right = inj.median(103), inj.median(104)
    errors = []
    for center, label in (
        (femur_left + np.array([-25.0, 30.0, -20.0]), 13),
        (femur_right + np.array([25.0, 30.0, -20.0]), 26),
        (femur_right + np.array([5.0, 40.0, -45.0]), 25),
    ):
        mask = _largest_piece(inj.ball(center, radius_mm) & (inj.array == 2))
        name = label_by_id(label).display_name
        errors.append(
            inj.change(
                "stray_fragment", "largest_component", f"stray {name} fragment in the thigh", mask, label, 0
            )
        )
    return errors


def skull_missing(inj: LabelMapInjector) -> list[InjectedError]:
    """The skull labelled unknown tissue (repair from the CT: skull)."""
    return [inj.change("skull_missing", "skull_from_ct", "skull labelled unknown tissue", inj.mask_of(99), 1)]


#: Error kinds in the order they are injected (later ones never touch earlier ones' voxels).
INJECTORS: dict[str, Callable[..., list[InjectedError]]] = {
    "left_right_swap": swap_sides,
    "left_right_partial": mislabel_upper_half,
    "rib_shuffle": shuffle_ribs,
    "rib_fragment": rib_piece_with_wrong_number,
    "vertebra_fragment": vertebra_piece_of_neighbour,
    "thyroid_in_cheek": thyroid_in_cheek,
    "gonads_in_orbit": gonads_in_orbit,
    "bowel_in_nasal_cavity": bowel_in_nasal_cavity,
    "bladder_above_pelvis": bladder_for_gallbladder,
    "bronchi_above_lungs": bronchi_above_lungs,
    "sex_inconsistent": organ_of_other_sex,
    "stray_fragment": stray_fragments,
    "skull_missing": skull_missing,
}
ERROR_KINDS: tuple[str, ...] = tuple(INJECTORS)


def inject_model_errors(
    labels: Volume, kinds: Iterable[str] | None = None, *, sex: str = "M"
) -> CorruptedLabels:
    """Inject the given error kinds (default all) into a correct label map.

    Returns the corrupted map, the map the post-processing should produce from it (the input
    with the injected voxels set to their repaired labels) and the list of injected errors.
    The kinds touch disjoint voxels, so their expected repairs do not interfere. A kind with no
    room in this map (e.g. a structure it needs is absent on a coarse phantom) is skipped: nothing
    of it is injected and ``skipped`` names it with the reason.
    """
    kinds = list(ERROR_KINDS if kinds is None else kinds)
    unknown = [k for k in kinds if k not in INJECTORS]
    if unknown:
        raise KeyError(f"Unknown error kind(s) {unknown}; use {', '.join(ERROR_KINDS)}.")
    inj = LabelMapInjector(labels)
    expected = inj.array.copy()
    errors: list[InjectedError] = []
    skipped: dict[str, str] = {}
    for kind in ERROR_KINDS:
        if kind not in kinds:
            continue
        injector = INJECTORS[kind]
        before = inj.array.copy()
        try:
            new = injector(inj, sex) if kind == "sex_inconsistent" else injector(inj)
        except CannotInjectError as error:  # this map has no room for the kind: skip it, say why
            inj.array[...] = before
            skipped[kind] = str(error)
            continue
        for error in new:
            expected[error.mask] = error.expected
        errors.extend(new)
    return CorruptedLabels(
        labels.with_array(inj.array), labels.with_array(expected), errors, labels, skipped=skipped
    )


def crop_field_of_view(
    volume: Volume, *, lowest_mm: float | None = None, highest_mm: float | None = None
) -> Volume:
    """A partial field of view: the smallest voxel box holding every voxel between two heights.

    Heights are RAS z in mm (patient superior). On an axis-aligned grid the result holds exactly
    the slices between the heights (a chest-only or abdomen-only scan of the phantom); the
    geometry is shifted so every kept voxel stays at the same physical position.
    """
    geometry = PatientGeometry(volume)
    region = geometry.full_region()
    if lowest_mm is not None:
        region = geometry.region_above(lowest_mm, region)
    if region is not None and highest_mm is not None:
        region = geometry.region_below(highest_mm, region)
    if region is None:
        raise ValueError(f"No voxel of the image lies between {lowest_mm} and {highest_mm} mm.")
    offset_kji = np.array([s.start for s in region], dtype=float)
    matrix = np.array(volume.ijk_to_ras, dtype=float, copy=True)
    matrix[:3, 3] = geometry.ras_of(offset_kji)[0]
    return Volume(np.ascontiguousarray(volume.array[region]), matrix, dict(volume.metadata))
