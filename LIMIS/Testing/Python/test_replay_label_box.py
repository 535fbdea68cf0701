"""``replay --labels`` without a detector: the label-map box follows AtlasLang2BBox's LIMIS margin rules."""

from __future__ import annotations

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session import SessionConfig
from LIMISLib.session_replay import replay
from LIMISLib.volume_session import VolumeSession


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("tiny", seed=1, sex="M", orientation="LPS", n_lesions=0)


def hand_box(mask2d: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Tight box (x0, y0, x1 exclusive, y1 exclusive) + margin, clipped to the slice: by hand."""
    rows, columns = np.where(mask2d)
    height, width = mask2d.shape
    return (
        max(0.0, columns.min() - margin),
        max(0.0, rows.min() - margin),
        min(float(width), columns.max() + 1 + margin),
        min(float(height), rows.max() + 1 + margin),
    )


def test_the_label_map_box_is_the_tight_box_plus_ten_pixels_and_no_second_margin_follows(phantom):
    spleen = phantom.labels.array == label_id("spleen")
    present = np.flatnonzero(spleen.any(axis=(1, 2)))
    k = int(present[len(present) // 2])
    session = VolumeSession(phantom.ct, IntensityBBox2Mask())  # no detector, no atlas
    records = replay(session, [f"@slice {k}", "segment the spleen"], labels=phantom.labels, semantic=False)
    assert all(r.ok for r in records), [r.message for r in records]
    assert "+ 10 px" in records[1].box_source
    # LPS grid: the display slice is the array slice as it is (row 0 = anterior, column 0 = right)
    expected = hand_box(spleen[k], 10.0)
    step0 = session.active.steps[0]
    assert step0.box_xyxy == pytest.approx(expected)
    # the margin is already in the box: the default adaptation proposes the organ window only
    assert session.active.pending == "proposal" and "enlarged by 0 px per side" in records[1].message
    assert session.handle("accept", semantic=False).ok
    assert session.active.current.box_xyxy == pytest.approx(expected)


def test_a_box_near_the_slice_edge_is_clipped_like_the_atlas_box(phantom):
    labels = phantom.labels.with_array(np.zeros_like(phantom.labels.array))
    array = labels.array
    k = array.shape[0] // 2
    array[k, 2:6, 1:4] = label_id("liver")  # 3 px from the top-left corner
    session = VolumeSession(
        phantom.ct, IntensityBBox2Mask(), config=SessionConfig(propose_default_adaptation=False)
    )
    records = replay(session, [f"@slice {k}", "segment the liver"], labels=labels, semantic=False)
    assert records[1].ok
    assert session.active.steps[0].box_xyxy == pytest.approx((0.0, 0.0, 14.0, 16.0))
