"""The run-length box pass of the rules' label-map editor against scipy and numpy.

Bounding boxes, voxel counts and first voxels come from the runs of equal values along the last
axis; the oracles are ``scipy.ndimage.find_objects``, ``np.bincount`` and ``np.flatnonzero``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from DAPAtlasLib.postprocess.anatomy_geometry import nonzero_indices
from DAPAtlasLib.postprocess.label_editing import component_statistics, label_boxes


def random_label_map(seed: int, shape: tuple[int, int, int], labels: int) -> np.ndarray:
    """Blocky random labels (runs of several voxels), zeros included, some labels absent."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, labels + 1, size=tuple(max(1, s // 3) for s in shape))
    array = np.repeat(np.repeat(np.repeat(coarse, 3, 0), 3, 1), 3, 2)[: shape[0], : shape[1], : shape[2]]
    array = np.pad(array, [(0, s - a) for s, a in zip(shape, array.shape, strict=True)])
    noise = rng.random(shape) < 0.02
    array[noise] = rng.integers(0, labels + 1, size=int(noise.sum()))
    array[array == 3] = 0  # an absent label
    return array.astype(np.uint8)


@pytest.mark.parametrize("shape", [(7, 9, 11), (1, 1, 13), (5, 4, 1), (12, 1, 8), (3, 5, 16)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boxes_are_those_of_find_objects(shape, seed):
    array = random_label_map(seed, shape, 20)
    array[-1, -1, -1] = 20  # the last voxel, at the end of the last row
    array[0, 0, 0] = 19
    expected = ndimage.find_objects(array, max_label=25)
    boxes = label_boxes(array, 25)
    assert boxes[0] is None
    for label in range(1, 26):
        box = expected[label - 1]
        want = None if box is None else [v for sl in box for v in (sl.start, sl.stop)]
        assert boxes[label] == want, label


def test_runs_do_not_continue_into_the_next_row():
    array = np.zeros((2, 2, 3), dtype=np.uint8)
    array[0, 0, 2] = 5  # last voxel of a row ...
    array[0, 1, 0] = 5  # ... and first voxel of the next: two runs, not one
    assert label_boxes(array, 5)[5] == [0, 1, 0, 2, 0, 3]


@pytest.mark.parametrize("seed", [0, 1])
def test_component_statistics_match_numpy_and_scipy(seed):
    array = random_label_map(seed, (9, 10, 12), 30).astype(np.uint32)
    n = int(array.max())
    stats = component_statistics(array, n)
    counts = np.bincount(array.ravel(), minlength=n + 1)
    counts[0] = 0
    assert np.array_equal(stats["voxel_counts"], counts)
    expected = ndimage.find_objects(array, max_label=n)
    assert stats["bounding_boxes"][1:] == expected
    flat = array.ravel()
    for label in range(1, n + 1):
        hits = np.flatnonzero(flat == label)
        assert stats["first_voxel"][label] == (hits[0] if hits.size else -1)


def test_nonzero_indices_are_those_of_np_nonzero():
    mask = random_label_map(4, (6, 7, 9), 3) == 2
    for got, want in zip(nonzero_indices(mask), np.nonzero(mask), strict=True):
        assert np.array_equal(got, want)
    view = mask[1:5, ::2, 3:]  # a non-contiguous crop
    for got, want in zip(nonzero_indices(view), np.nonzero(view), strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("chunk", [1, 5, 11, 12, 13, 64, 1 << 20])
def test_run_starts_in_chunks_are_those_of_one_pass(chunk):
    """Chunk borders inside a row, at a row start and past the end give the runs of one pass."""
    from DAPAtlasLib.postprocess import label_editing

    array = random_label_map(5, (4, 5, 12), 6)
    flat = array.ravel()
    change = np.ones(flat.size, dtype=bool)
    change[1:] = flat[1:] != flat[:-1]
    change[::12] = True
    run_starts = label_editing._run_starts
    assert np.array_equal(run_starts(flat, 12, chunk=chunk), np.flatnonzero(change))
    copy = np.zeros_like(flat)  # copied chunk by chunk in the same pass
    assert np.array_equal(run_starts(copy, 12, chunk=chunk, source=flat), np.flatnonzero(change))
    assert np.array_equal(copy, flat)


def test_the_editor_holds_a_private_copy_of_the_map():
    from AnatomyCommonLib.volume import Volume
    from DAPAtlasLib.postprocess.label_editing import TISSUE_LABELS, LabelMapEditor

    for array in (random_label_map(8, (6, 7, 9), 12), random_label_map(8, (6, 7, 9), 12).astype(np.int16)):
        editor = LabelMapEditor(Volume(array, np.eye(4)))
        assert editor.array.dtype == np.uint8 and not np.shares_memory(editor.array, array)
        assert np.array_equal(editor.array, array)
        expected = ndimage.find_objects(array.astype(np.uint8), max_label=12)
        for label in range(1, 13):
            box = expected[label - 1]
            if box is not None and label in TISSUE_LABELS:  # no rule reads them: the whole image
                box = tuple(slice(0, n) for n in array.shape)
            assert editor.box(label) == box


def test_a_uint8_map_with_values_beyond_the_dap_ids_is_refused_naming_the_largest():
    from AnatomyCommonLib.volume import Volume
    from DAPAtlasLib.exceptions import InvalidLabelValuesError
    from DAPAtlasLib.postprocess.label_editing import LabelMapEditor

    array = random_label_map(6, (5, 6, 7), 20)
    array[2, 3, 4] = 145
    array[4, 0, 6] = 201
    with pytest.raises(InvalidLabelValuesError, match="values from 0 to 201"):
        LabelMapEditor(Volume(array, np.eye(4)))


@pytest.mark.parametrize("fraction", [0.001, 0.5])
def test_relabel_changes_the_masked_voxels_and_reports_what_they_held(fraction):
    """Few changed voxels (index path) and many (whole-box path): the oracle is np.where."""
    from AnatomyCommonLib.volume import Volume
    from DAPAtlasLib.postprocess.label_editing import LabelMapEditor
    from DAPAtlasLib.postprocess.report import StepReport

    array = random_label_map(7, (10, 12, 14), 8)
    editor = LabelMapEditor(Volume(array, np.eye(4)))
    region = (slice(2, 9), slice(1, 12), slice(3, 13))
    mask = np.random.default_rng(0).random((7, 11, 10)) < fraction
    mask[3, 4, 5] = True
    report = StepReport(step="test")
    changed = editor.relabel(region, mask, 7, report)
    expected = array.copy()
    expected[region] = np.where(mask, 7, array[region])
    assert np.array_equal(editor.array, expected)
    old = array[region][mask]
    assert changed == int(np.count_nonzero(old != 7))
    counts = np.bincount(old[old != 7], minlength=9)
    assert {a: v for (a, _), v in report.relabelled.items()} == {
        int(label): int(counts[label]) for label in np.flatnonzero(counts)
    }
    # the box of label 7 grows to hold the changed voxels, exactly
    changed_at = np.zeros(array.shape, dtype=bool)
    changed_at[region] = mask & (array[region] != 7)
    grown = ndimage.find_objects(((array == 7) | changed_at).astype(np.uint8))[0]
    assert editor.box(7) == grown
