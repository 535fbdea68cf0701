"""Injecting simulated DAP model errors never crashes on a phantom that lacks room for one kind.

Reported: ``inject_model_errors`` raised ValueError('vertebra_fragment') on the tiny phantom for
seeds 3-5 (T8 spans three 6 mm planes and most of its voxels lie in the lowest one, so "below the
33rd height percentile" was empty; seed 4 has no soft tissue where the nasal-cavity blob goes).
"""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import vertebra_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from DAPAtlasLib.simulated_model_errors import ERROR_KINDS, inject_model_errors


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_every_kind_is_injected_or_skipped_with_a_reason(seed):
    phantom = make_phantom("tiny", seed=seed)
    corrupted = inject_model_errors(phantom.labels, sex=phantom.sex)
    injected = {error.kind for error in corrupted.errors}
    assert injected.isdisjoint(corrupted.skipped)
    assert injected | set(corrupted.skipped) == set(ERROR_KINDS)
    for kind, reason in corrupted.skipped.items():
        assert kind in reason and "not" in reason
    # every injected error really changed its voxels, and the expected map undoes exactly them
    original = np.asarray(phantom.labels.array)
    changed = np.asarray(corrupted.labels.array) != original
    union = np.zeros(original.shape, dtype=bool)
    for error in corrupted.errors:
        assert error.mask.any()
        union |= error.mask
    assert not (changed & ~union).any()


def test_vertebra_fragment_is_the_lower_part_of_t8_when_the_percentile_plane_is_empty():
    phantom = make_phantom("tiny", seed=3)
    corrupted = inject_model_errors(phantom.labels, ["vertebra_fragment"], sex=phantom.sex)
    assert corrupted.skipped == {}
    (error,) = corrupted.errors
    t8 = np.asarray(phantom.labels.array) == vertebra_id("T8")
    assert error.mask.any() and not (error.mask & ~t8).any()
    assert error.mask.sum() < t8.sum()  # a fragment, never the whole vertebra
    assert np.all(np.asarray(corrupted.labels.array)[error.mask] == vertebra_id("T7"))
    # the fragment is the lowest part: the RAS heights (z) of its voxels never exceed the rest's
    heights = lambda mask: phantom.labels.kji_to_ras(np.argwhere(mask))[:, 2]  # noqa: E731
    assert heights(error.mask).max() <= heights(t8 & ~error.mask).min() + 1e-6


def test_an_explicitly_requested_kind_that_cannot_be_placed_is_reported_not_raised():
    phantom = make_phantom("tiny", seed=4)
    corrupted = inject_model_errors(phantom.labels, ["bowel_in_nasal_cavity"], sex=phantom.sex)
    assert corrupted.errors == []
    assert "bowel_in_nasal_cavity" in corrupted.skipped
    assert np.array_equal(np.asarray(corrupted.labels.array), np.asarray(phantom.labels.array))
