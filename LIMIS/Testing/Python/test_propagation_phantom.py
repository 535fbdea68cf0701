"""Propagating an accepted mask through the volume, on the synthetic phantom (any orientation)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session import SessionConfig
from LIMISLib.slice_geometry import box_around_mask
from LIMISLib.slice_propagation import PropagationConfig, SliceSummary, prior_from_mask, structure_end_reason
from LIMISLib.volume_session import VolumeSession


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("tiny", seed=0, sex="M", orientation="LPS", n_lesions=0)


def started(phantom, structure: str, *, offset: int = 0) -> tuple[VolumeSession, np.ndarray, list[int]]:
    """A volume session with ``structure`` segmented (default adaptation kept) on its middle slice."""
    truth = phantom.labels.array == label_id(structure)
    session = VolumeSession(phantom.ct, IntensityBBox2Mask())
    geometry = session.geometry
    present = [k for k in range(geometry.n_slices) if geometry.extract(truth, k).any()]
    middle = present[len(present) // 2] + offset
    session.set_active_slice(middle)
    session.segment(structure, box_xyxy=box_around_mask(geometry.extract(truth, middle)))
    assert session.handle("accept", semantic=False).ok
    return session, truth, present


def superior_mm(session: VolumeSession, slice_index: int) -> float:
    return float(session.geometry.pixel_to_ras([(0.5, 0.5)], slice_index)[0, 2])


def test_propagating_the_liver_stops_within_three_slices_of_where_it_ends(phantom):
    session, truth, present = started(phantom, "liver")
    reply = session.handle("propagate", semantic=False)
    assert reply.ok and "Stopped" in reply.message
    covered = session.segmented_slices()
    assert abs(min(covered) - min(present)) <= 3 and abs(max(covered) - max(present)) <= 3
    result = session.mask_volume().array.astype(bool)
    assert 2 * (result & truth).sum() / (result.sum() + truth.sum()) > 0.6


def test_propagation_never_runs_past_the_end_of_a_kidney(phantom):
    session, _, present = started(phantom, "kidney left")
    session.propagate("both")
    covered = session.segmented_slices()
    assert min(present) - 1 <= min(covered) and max(covered) <= max(present) + 1


def test_propagating_n_slices_up_adds_exactly_n_more_superior_slices(phantom):
    session, _, _ = started(phantom, "liver", offset=-4)
    start = session.active_slice
    reply = session.handle("propagate up 3 slices", semantic=False)
    added = sorted(set(session.segmented_slices()) - {start})
    assert len(added) == 3 and reply.changed_slices == tuple(reply.changed_slices)
    assert all(superior_mm(session, k) > superior_mm(session, start) for k in added)
    session.propagate("down", 2)
    below = sorted(set(session.segmented_slices()) - {start, *added})
    assert len(below) == 2 and all(superior_mm(session, k) < superior_mm(session, start) for k in below)


def test_undo_right_after_a_propagation_removes_every_slice_it_added(phantom):
    session, _, _ = started(phantom, "liver")
    start = session.active_slice
    session.handle("propagate down 4", semantic=False)
    reply = session.handle("undo", semantic=False)
    assert session.segmented_slices() == [start] and len(reply.changed_slices) == 4


def test_each_propagated_slice_can_be_refined_reverted_and_removed_on_its_own(phantom):
    session, _, _ = started(phantom, "liver")
    start = session.active_slice
    session.propagate("up", 3)
    slices = sorted(set(session.segmented_slices()) - {start})
    target = slices[1]
    session.set_active_slice(target)
    propagated = session.active.current.mask.copy()
    assert session.active.current.origin == "propagated"
    assert session.handle("raise the threshold by 0.3", semantic=False).ok
    assert session.handle("undo", semantic=False).ok
    assert np.array_equal(session.slice_mask(target), propagated)
    reply = session.handle("undo", semantic=False)  # at the propagated step 0: drop this slice
    assert reply.ok and target not in session.segmented_slices()
    assert all(k in session.segmented_slices() for k in slices if k != target)


def test_propagation_stops_at_a_slice_the_user_segmented_already(phantom):
    session, truth, _ = started(phantom, "liver")
    start = session.active_slice
    blocker = session.geometry.neighbour(session.geometry.neighbour(start, "up"), "up")
    session.set_active_slice(blocker)
    session.segment("liver", box_xyxy=box_around_mask(session.geometry.extract(truth, blocker)))
    session.set_active_slice(start)
    reply = session.propagate("up")
    assert "already segmented" in reply.message
    assert len(session.runs[-1].slices) == 1


def test_cancelling_keeps_what_was_done(phantom):
    session, _, _ = started(phantom, "liver")
    calls = []
    reply = session.propagate(
        "down", progress=lambda done, planned: calls.append(done), should_cancel=lambda: len(calls) >= 2
    )
    assert len(session.runs[-1].slices) == 2 and "cancelled" in reply.message


def test_the_result_is_the_same_physical_mask_in_every_voxel_orientation():
    results = {}
    for orientation in ("LPS", "RAS", "SRA"):
        phantom = make_phantom("tiny", seed=0, sex="M", orientation=orientation, n_lesions=0)
        session, _, _ = started(phantom, "spleen")
        session.propagate("both", 2)
        mask = session.mask_volume()
        points = mask.kji_to_ras(np.argwhere(mask.array > 0))
        results[orientation] = {tuple(np.round(p, 3)) for p in points}
    assert results["LPS"] == results["RAS"] == results["SRA"]


def test_stop_rules_name_the_reason():
    config = PropagationConfig()
    previous = np.zeros((20, 20), bool)
    previous[5:15, 5:15] = True
    image = np.full((20, 20), 50.0)
    assert structure_end_reason(previous, np.zeros_like(previous), image, image, 1.0, config).startswith(
        "the mask is"
    )
    moved = np.zeros_like(previous)
    moved[0:10, 12:20] = True
    assert "overlaps" in structure_end_reason(previous, moved, image, image, 1.0, config)
    other = np.where(previous, -100.0, 50.0)
    assert "HU" in structure_end_reason(previous, previous, image, other, 1.0, config)
    assert structure_end_reason(previous, previous, image, image, 1.0, config) is None
    prior = prior_from_mask(previous, None, config)
    assert np.array_equal(prior.probabilities > 0.5, previous) and prior.crop_xyxy is None


@pytest.mark.torch
def test_the_loop_and_propagation_run_with_a_tiny_random_scribbleprompt_unet(phantom):
    """The real BBox2Mask class (randomly initialised, small) drives the same loop end to end."""
    torch = pytest.importorskip("torch")
    from LIMISLib.bbox2mask import ScribblePromptBBox2Mask
    from LIMISLib.neural.scribbleprompt_unet import ScribblePromptUNet

    torch.manual_seed(0)
    model = ScribblePromptBBox2Mask(ScribblePromptUNet(features=(8, 8, 8, 8)))
    truth = phantom.labels.array == label_id("liver")
    session = VolumeSession(phantom.ct, model, config=SessionConfig(initial_threshold=0.5))
    geometry = session.geometry
    middle = [k for k in range(geometry.n_slices) if geometry.extract(truth, k).any()][5]
    session.set_active_slice(middle)
    session.segment("liver", box_xyxy=box_around_mask(geometry.extract(truth, middle)))
    for text in (
        "accept",
        "positive click in cell 6",
        "negative click in cell 1",
        "raise the threshold",
        "revert to step 1",
    ):
        assert session.handle(text, semantic=False).ok, text
    clicked = session.active.steps[3]
    x, y = clicked.state.negative_clicks[0]
    assert not clicked.mask[int(y), int(x)]
    assert not np.any(session.active.steps[4].mask & ~session.active.steps[3].mask)
    reply = session.propagate("up", 2)
    assert reply.ok


def test_a_structure_the_detector_cannot_find_leaves_the_slice_unsegmented(phantom):
    class Blind:
        name = "blind detector"

        def detect(self, image_hu, target, *, candidates=None, score_threshold=0.3):
            from LIMISLib.exceptions import StructureNotFoundError

            raise StructureNotFoundError(f"No {target} found on this slice.")

    session = VolumeSession(phantom.ct, IntensityBBox2Mask(), lang2bbox=Blind())
    reply = session.handle("segment the spleen", semantic=False)
    assert not reply.ok and "No spleen" in reply.message
    assert session.segmented_slices() == [] and session.target is None  # a failed switch changes nothing


# ---------------------------------------------------------------------------- issue 12: stop in time
def test_the_intensity_profile_rule_fires_when_40_percent_of_the_mask_is_another_tissue():
    config = PropagationConfig()
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    start_image = np.where(mask, np.linspace(40.0, 60.0, 400).reshape(20, 20), -100.0)
    start = SliceSummary.of(mask, start_image)  # HU 5-95 % range about 46..54, widened by 20 HU: 26..74
    leaking = start_image.copy()
    leaking[5:9, 5:15] = 200.0  # 40 % of the mask's pixels; the median stays within 10 HU
    assert "intensity profile" in structure_end_reason(mask, mask, start_image, leaking, 1.0, config, start)
    slight = start_image.copy()
    slight[5:7, 5:15] = 200.0  # a fifth
    assert structure_end_reason(mask, mask, start_image, slight, 1.0, config, start) is None
    off = PropagationConfig.slice_to_slice_only(max_median_shift_hu=1000.0)
    assert structure_end_reason(mask, mask, start_image, leaking, 1.0, off, start) is None


def test_the_atlas_rule_uses_physical_distance_to_the_map_structure():
    config = PropagationConfig()  # within 6 mm, at least 40 % of the start slice's share
    mask = np.zeros((10, 40), bool)
    mask[:, 0:30] = True
    image = np.full(mask.shape, 50.0)
    start = SliceSummary(int(mask.sum()), 50.0, 40.0, 60.0, atlas_share=1.0)
    narrow = np.zeros_like(mask)
    narrow[:, 0:4] = True  # within 6 mm at 1 mm pixels: columns 0..9 = 10 of 30 columns (33 %)
    reason = structure_end_reason(mask, mask, image, image, 1.0, config, start, atlas_mask=narrow)
    assert reason is not None and "atlas" in reason
    wide = np.zeros_like(mask)
    wide[:, 0:10] = True  # columns 0..15 = 16 of 30 (53 %)
    assert structure_end_reason(mask, mask, image, image, 1.0, config, start, atlas_mask=wide) is None
    # the same narrow structure on 2 mm wide pixels: columns 0..6 -> 7 of 30 (23 %) still fires,
    # with 0.5 mm pixels the tolerance covers 0..15 (53 %) and does not
    assert structure_end_reason(mask, mask, image, image, 1.0, config, start, atlas_mask=narrow,
                                pixel_spacing_mm=(2.0, 2.0)) is not None  # fmt: skip
    assert structure_end_reason(mask, mask, image, image, 1.0, config, start, atlas_mask=narrow,
                                pixel_spacing_mm=(0.5, 0.5)) is None  # fmt: skip
    empty = np.zeros_like(mask)
    assert "no such structure" in structure_end_reason(
        mask, mask, image, image, 1.0, config, start, atlas_mask=empty
    )


def test_propagation_stops_before_the_slice_where_the_atlas_has_no_liver(phantom):
    value = label_id("liver")
    truth = phantom.labels.array == value
    present = np.flatnonzero(truth.any(axis=(1, 2)))  # LPS: axis 0 is the slice axis, up = +1
    middle = int(present[len(present) // 2])
    hole = middle + 3
    atlas = phantom.labels.array.copy()
    atlas[hole][atlas[hole] == value] = 0
    session = VolumeSession(
        phantom.ct, IntensityBBox2Mask(), labels=phantom.labels.with_array(atlas), active_slice=middle
    )
    assert session.segment("liver").ok and session.handle("accept", semantic=False).ok
    reply = session.propagate("up")
    assert all(k < hole for k in session.segmented_slices())
    assert f"at slice {hole}: the atlas label map has no such structure" in reply.message


def test_propagation_never_adds_a_slice_the_stop_rule_rejects(phantom):
    import re

    atlas = np.zeros_like(phantom.labels.array)
    atlas[:, 1:, :] = phantom.labels.array[:, :-1, :]  # an imperfect map: one voxel posterior
    for structure in ("liver", "spleen", "kidney left"):
        truth = phantom.labels.array == label_id(structure)
        present = np.flatnonzero(truth.any(axis=(1, 2)))
        middle = int(present[len(present) // 2])
        session = VolumeSession(
            phantom.ct, IntensityBBox2Mask(), labels=phantom.labels.with_array(atlas), active_slice=middle
        )
        session.segment(structure)
        session.handle("accept", semantic=False)
        session.propagate("both")
        config, spacing = session.propagation, session.geometry.pixel_spacing_mm
        area = float(np.prod(spacing))
        start = SliceSummary.of(
            session.slice_mask(middle, displayed=False),
            session.image(middle),
            atlas_mask=session._atlas_slice(middle),
            pixel_spacing_mm=spacing,
            config=config,
        )
        run = session.runs[-1]
        assert run.slices, structure  # the check below must have slices to check
        for k in run.slices:
            previous = k - 1 if k > middle else k + 1
            reason = structure_end_reason(
                session.slice_mask(previous, displayed=False),
                session.slice_mask(k, displayed=False),
                session.image(previous),
                session.image(k),
                area,
                config,
                start,
                atlas_mask=session._atlas_slice(k),
                pixel_spacing_mm=spacing,
            )
            assert reason is None, (structure, k, reason)
        for text in run.stop_reasons.values():
            stopped = re.match(r"at slice (\d+):", text)
            if stopped:
                assert int(stopped.group(1)) not in session.sessions, (structure, text)


@pytest.mark.parametrize(("slice_mm", "slices"), [(2.5, 8), (6.0, 4)])  # ceil(20 / 2.5), ceil(20 / 6)
def test_a_distance_propagates_the_slices_covering_it_at_the_slice_spacing(phantom, slice_mm, slices):
    """Sealed batch 8: 'propagate up by 2 cm' propagated 20 slices; a distance is not a slice count."""

    ct = phantom.ct
    session = VolumeSession(ct, IntensityBBox2Mask())
    column = 2 - session.geometry.slice_axis  # ijk column of the slice (superior) axis
    affine = ct.ijk_to_ras.copy()
    affine[:3, column] *= slice_mm / session.geometry.slice_spacing_mm
    rescaled = type(phantom)(**{**vars(phantom), "ct": replace(ct, ijk_to_ras=affine)})
    session, _, _ = started(rescaled, "liver", offset=-4)
    assert session.geometry.slice_spacing_mm == pytest.approx(slice_mm)
    start = session.active_slice
    reply = session.handle("propagate up by 2 cm", semantic=False)
    added = sorted(set(session.segmented_slices()) - {start})
    assert reply.ok and len(added) == slices, reply.message
    assert f"{slices} slices" in reply.message and all(
        superior_mm(session, k) > superior_mm(session, start) for k in added
    )
    reply = session.handle("propagate down 3 slices", semantic=False)  # a slice count stays a count
    assert len(set(session.segmented_slices()) - {start}) == slices + 3, reply.message
