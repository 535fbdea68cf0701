"""Non-largest component suppression: stray fragments of single structures are removed."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, corrupted_and_repaired, phantom
from scipy import ndimage

from DAPAtlasLib.postprocess.largest_component import EXEMPT_LABELS, suppress_non_largest_components

STEP = "largest_component"


def independent_largest_component(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Reference: scipy.ndimage.label per label, 6-connectivity, keep the largest piece.

    Returns the result and the number of removed pieces.
    """
    out = labels.copy()
    removed = 0
    for label in np.unique(labels):
        if label in EXEMPT_LABELS:
            continue
        pieces, n = ndimage.label(labels == label)
        if n > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            out[(pieces > 0) & (pieces != np.argmax(sizes) + 1)] = 0
            removed += n - 1
    return out, removed


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_stray_liver_spleen_and_brain_fragments_are_removed(orientation):
    corrupted, expected, out, report, _p = corrupted_and_repaired(STEP, ["stray_fragment"], orientation)
    assert np.array_equal(out.array, expected)
    for error in corrupted.errors:
        assert np.all(out.array[error.mask] == 0)
    assert {13, 26, 25} <= set(report.removed)


def test_result_matches_an_independent_per_label_computation():
    p = phantom("LPS", "F")
    out, report = suppress_non_largest_components(p.labels)
    expected, removed = independent_largest_component(p.labels.array)
    assert np.array_equal(out.array, expected)
    assert sum(r.count for r in report.removed.values()) == removed


def test_exempt_structures_keep_all_pieces_and_the_heart_is_exempt_as_intended():
    p = phantom("RAS")
    labels = p.labels.array.copy()
    for label in (105, 10, 18, 114):  # heart, colon, gonads, aorta
        where = np.argwhere(labels == label)
        labels[tuple(where[: len(where) // 10].T)] = 1  # cuts the structure into pieces
    for label in (105, 10, 18, 114):
        extra = np.argwhere(labels == 2)[:1]  # plus a distant one-voxel piece
        labels[tuple(extra.T)] = label
    out, _ = suppress_non_largest_components(p.labels.with_array(labels))
    assert np.array_equal(out.array, independent_largest_component(labels)[0])
    for label in (105, 10, 18, 114):
        assert np.array_equal(out.array == label, labels == label)


def test_eyeballs_and_cheeks_are_suppressed_to_one_piece_each_as_released():
    assert not {128, 129, 130, 131} & EXEMPT_LABELS
    assert 105 in EXEMPT_LABELS and 107 in EXEMPT_LABELS


def test_removed_sizes_are_reported_in_ml():
    _corrupted, _expected, _out, report, p = corrupted_and_repaired(STEP, ["stray_fragment"], "RAS")
    liver = report.removed[13]
    voxel_ml = p.labels.voxel_volume_ml
    assert liver.count >= 1
    assert liver.total_ml == pytest.approx(report.relabelled[(13, 0)] * voxel_ml)
