"""The scored scripted session: Dice per step against a reference that never reaches the models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.scripted_demo import run_scored_session

SCRIPT = ("@slice middle liver", "segment the liver", "accept", "propagate down 3 slices")


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("tiny", seed=2, orientation="LPS", n_lesions=0)


@pytest.fixture(scope="module")
def atlas(phantom):
    """An imperfect atlas: the phantom's labels shifted one voxel posterior (LPS: +j)."""
    shifted = np.zeros_like(phantom.labels.array)
    shifted[:, 1:, :] = phantom.labels.array[:, :-1, :]
    return phantom.labels.with_array(shifted)


def test_dice_per_step_matches_a_hand_computation(phantom, atlas, tmp_path):
    result = run_scored_session(
        phantom.ct, atlas, phantom.labels, tmp_path / "a", bbox2mask=IntensityBBox2Mask(), script=SCRIPT
    )
    session = result.session
    truth = phantom.labels.array == label_id("liver")
    mask = session.mask_volume(displayed=True).array > 0
    by_hand = 2 * np.sum(mask & truth) / (np.sum(mask) + np.sum(truth))
    assert result.steps[-1].volume_dice == pytest.approx(by_hand)
    k = session.active_slice  # LPS: the display slice is the array slice as it is
    by_hand_slice = 2 * np.sum(mask[k] & truth[k]) / (np.sum(mask[k]) + np.sum(truth[k]))
    assert result.steps[-1].slice_dice == pytest.approx(by_hand_slice)
    records = json.loads((tmp_path / "a" / "replay.json").read_text())
    assert records[-1]["volume_dice"] == pytest.approx(by_hand)
    assert (tmp_path / "a" / "contact_sheet.png").is_file()


def test_the_reference_only_scores_it_never_changes_a_mask(phantom, atlas, tmp_path):
    """Scoring against the truth or against an empty map: the same masks (the truth is not a prompt)."""
    model = IntensityBBox2Mask()
    with_truth = run_scored_session(
        phantom.ct, atlas, phantom.labels, tmp_path / "a", bbox2mask=model, script=SCRIPT
    )
    empty = phantom.labels.with_array(np.zeros_like(phantom.labels.array))
    blind = run_scored_session(phantom.ct, atlas, empty, tmp_path / "b", bbox2mask=model, script=SCRIPT)
    np.testing.assert_array_equal(
        with_truth.session.mask_volume(displayed=True).array, blind.session.mask_volume(displayed=True).array
    )
    assert with_truth.steps[-1].volume_dice > 0.3 and blind.steps[-1].volume_dice == 0.0
