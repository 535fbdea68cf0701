"""Atlas-prompted text -> box: the structure's slice box from a whole-body label map, + LIMIS margin."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from LIMISLib.atlas_lang2bbox import AtlasLang2BBox
from LIMISLib.exceptions import GeometryMismatchError, InvalidPromptError, StructureNotFoundError
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.volume_session import VolumeSession

MARGIN = 10.0


def hand_box(slice_mask: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Tight box of a display-oriented 2D mask, grown by ``margin`` and clipped, computed by hand."""
    rows, columns = np.nonzero(slice_mask)
    height, width = slice_mask.shape
    return (
        max(0.0, columns.min() - margin),
        max(0.0, rows.min() - margin),
        min(float(width), columns.max() + 1 + margin),
        min(float(height), rows.max() + 1 + margin),
    )


def middle_k(labels: np.ndarray, value: int, slice_axis: int) -> int:
    axes = tuple(a for a in range(3) if a != slice_axis)
    present = np.flatnonzero((labels == value).any(axis=axes))
    return int(present[len(present) // 2])


@pytest.fixture(scope="module")
def lps():
    return make_phantom("tiny", seed=0, orientation="LPS", n_lesions=0)


@pytest.fixture(scope="module")
def oblique():
    angle = np.deg2rad(8.0)  # i ~ R, j ~ A, k = S, rotated 8 degrees about S
    direction = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    return make_phantom("tiny", seed=1, direction_ras=direction, n_lesions=0)


@pytest.mark.parametrize("structure", ["liver", "kidney left", "aorta"])
def test_lps_box_is_the_label_slice_box_plus_margin(lps, structure):
    # LPS array (k, j, i): k -> superior, j -> posterior (display rows), i -> patient left (display columns)
    value = label_id(structure)
    k = middle_k(lps.labels.array, value, 0)
    expected = hand_box(lps.labels.array[k] == value, MARGIN)
    detector = AtlasLang2BBox(lps.labels).for_slice(k)
    image = np.zeros(lps.labels.array[k].shape, np.float32)
    detection = detector.detect(image, structure)
    assert detection.label == structure
    assert detection.box_xyxy == pytest.approx(expected)


def test_oblique_ras_volume_box_is_flipped_for_display(oblique):
    # RAS-like array: i grows to patient right -> display columns run the other way; j grows anterior
    # -> display rows (anterior at the top) run the other way too.
    value = label_id("spleen")
    k = middle_k(oblique.labels.array, value, 0)
    display = (oblique.labels.array[k] == value)[::-1, ::-1]
    expected = hand_box(display, MARGIN)
    detector = AtlasLang2BBox(oblique.labels).for_slice(k)
    box = detector.detect(np.zeros(display.shape, np.float32), "spleen").box_xyxy
    assert box == pytest.approx(expected)
    # the spleen is on the patient's left: the right half of the display image
    assert (box[0] + box[2]) / 2 > display.shape[1] / 2


def test_synonyms_and_sides_give_the_same_box(lps):
    value = label_id("kidney left")
    k = middle_k(lps.labels.array, value, 0)
    detector = AtlasLang2BBox(lps.labels, margin_px=0.0).for_slice(k)
    image = np.zeros(lps.labels.array[k].shape, np.float32)
    boxes = {detector.detect(image, text).box_xyxy for text in ("kidney left", "left kidney", "lt kidney")}
    assert len(boxes) == 1
    assert boxes.pop() == pytest.approx(hand_box(lps.labels.array[k] == value, 0.0))


def test_unknown_name_raises_with_close_matches(lps):
    detector = AtlasLang2BBox(lps.labels).for_slice(10)
    with pytest.raises(InvalidPromptError, match="Did you mean"):
        detector.detect(np.zeros(lps.labels.array[10].shape, np.float32), "splen kidny")


def test_structure_absent_on_the_slice_says_where_it_is(lps):
    value = label_id("liver")
    axes = (1, 2)
    present = np.flatnonzero((lps.labels.array == value).any(axis=axes))
    k = int(present.max()) + 5
    detector = AtlasLang2BBox(lps.labels).for_slice(k)
    with pytest.raises(StructureNotFoundError, match=f"{present.min()}-{present.max()}"):
        detector.detect(np.zeros(lps.labels.array[k].shape, np.float32), "liver")


def test_volume_session_picks_the_atlas_without_a_detector_and_says_so(lps):
    value = label_id("liver")
    k = middle_k(lps.labels.array, value, 0)
    session = VolumeSession(lps.ct, IntensityBBox2Mask(), labels=lps.labels, active_slice=k)
    assert session.box_source == "atlas label map"
    reply = session.handle("segment the liver", semantic=False)
    assert reply.ok, reply.message
    assert "atlas label map" in reply.message
    expected = hand_box(lps.labels.array[k] == value, MARGIN)
    assert session.active.steps[0].box_xyxy == pytest.approx(expected)
    # the box already carries the LIMIS margin: the default adaptation does not add a second one
    assert session.handle("accept", semantic=False).ok
    assert session.active.current.box_xyxy == pytest.approx(expected)


def test_label_map_on_another_grid_is_refused(lps):
    other = make_phantom("tiny", seed=0, orientation="RAS", n_lesions=0)
    with pytest.raises(GeometryMismatchError, match="voxel grid"):
        VolumeSession(lps.ct, IntensityBBox2Mask(), labels=other.labels)
