"""Do no harm: on a correct label map cut to a partial field of view, the rules change nothing.

The oracle is the phantom's own truth cropped by hand (``crop_between``): every voxel of a
crop is correct, so rib counting and the largest-component rule must return it unchanged,
whatever the crop (top or bottom edge through every rib level, thorax-only, abdomen-only,
head-neck), the phantom (seed, sex) and the voxel grid (LPS, oblique).
"""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import crop_between, median_height, phantom, step_output, touches_border

from AnatomyCommonLib.anatomy.label_schema import rib_id, vertebra_id

PHANTOMS = ((0, "M"), (1, "F"), (2, "M"))
SWEEP_ORIENTATIONS = ("LPS", "oblique")
GUARDED_STEPS = ("rib_counting", "largest_component")


def rib_level(truth, number: int) -> float:
    return median_height(truth, rib_id(number, "left"), rib_id(number, "right"))


def sweep_crops(truth) -> dict[str, tuple[float | None, float | None]]:
    """Crop name -> (lowest, highest) RAS height in mm, from the truth's own landmarks."""
    crops: dict[str, tuple[float | None, float | None]] = {}
    for number in range(1, 13):
        level = rib_level(truth, number)
        crops[f"top edge through rib {number}"] = (None, level)
        crops[f"bottom edge through rib {number}"] = (level, None)
    crops["thorax only"] = (median_height(truth, vertebra_id("L1")), median_height(truth, vertebra_id("C6")))
    crops["abdomen only"] = (median_height(truth, 102), median_height(truth, vertebra_id("T10")))
    crops["head-neck"] = (median_height(truth, vertebra_id("T2")), None)
    return crops


@pytest.mark.slow
@pytest.mark.parametrize("orientation", SWEEP_ORIENTATIONS)
@pytest.mark.parametrize(("seed", "sex"), PHANTOMS)
def test_no_correct_voxel_changes_on_any_partial_field_of_view(seed, sex, orientation):
    truth = phantom(orientation, sex, seed).labels
    damage = []
    for name, (lowest, highest) in sweep_crops(truth).items():
        crop = crop_between(truth, lowest, highest)
        for step in GUARDED_STEPS:
            out, _ = step_output(step, crop, sex=sex)
            changed = int(np.count_nonzero(out.array != crop.array))
            if changed:
                damage.append(f"{name}: {step} changed {changed} correct voxels")
    assert damage == []


def visible_complete_ribs(crop, side: str) -> list[int]:
    """Numbers of the ribs of one side wholly inside the crop (no voxel on its border)."""
    numbers = []
    for number in range(1, 13):
        mask = crop.array == rib_id(number, side)
        if mask.any() and not touches_border(mask):
            numbers.append(number)
    return numbers


def inject_rib_errors(crop, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Rib numbering errors among the complete ribs of a crop; returns (corrupted, changed mask)."""
    corrupted = crop.array.copy()
    for side in ("left", "right"):
        numbers = visible_complete_ribs(crop, side)
        if len(numbers) < 2:
            continue
        if kind == "swap the lowest two":
            moves = {numbers[-1]: numbers[-2], numbers[-2]: numbers[-1]}
        elif kind == "off by one":
            moves = {n: n - 1 for n in numbers if n > 1}
        else:  # "numbered from the other end" of the visible ribs
            moves = dict(zip(numbers, reversed(numbers), strict=True))
        for old, new in moves.items():
            corrupted[crop.array == rib_id(old, side)] = rib_id(new, side)
    return corrupted, corrupted != crop.array


ERROR_KINDS = ("swap the lowest two", "off by one", "numbered from the other end")


@pytest.mark.slow
@pytest.mark.parametrize("orientation", SWEEP_ORIENTATIONS)
@pytest.mark.parametrize(("seed", "sex"), PHANTOMS)
def test_rib_errors_on_abdomen_scans_are_repaired_and_nothing_else_changes(seed, sex, orientation):
    """Every injected voxel goes back to its truth; no other voxel moves."""
    truth = phantom(orientation, sex, seed).labels
    crops = {
        "abdomen only": (median_height(truth, 102), median_height(truth, vertebra_id("T10"))),
        **{
            f"top edge through rib {n}": (median_height(truth, 102), rib_level(truth, n))
            for n in (7, 8, 9, 10)
        },
    }
    injected = repaired = 0
    for lowest, highest in crops.values():
        crop = crop_between(truth, lowest, highest)
        for kind in ERROR_KINDS:
            corrupted, changed = inject_rib_errors(crop, kind)
            if not changed.any():
                continue
            out, _ = step_output("rib_counting", crop.with_array(corrupted), sex=sex)
            assert np.array_equal(out.array[~changed], crop.array[~changed])
            injected += int(changed.sum())
            repaired += int(np.count_nonzero(out.array[changed] == crop.array[changed]))
    assert injected > 0
    assert repaired == injected
