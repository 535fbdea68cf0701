"""The toy analyses of dissertation section 5.1.4 (three spheres, degraded step by step)."""

import itertools

import numpy as np
import pytest
from scipy import ndimage

from CCMetricsLib import evaluate
from CCMetricsLib.synthetic import Sphere, sphere_mask
from CCMetricsLib.voronoi import label_components

SHAPE = (48, 48, 100)


def three_spheres(radii):
    reference = sphere_mask(
        SHAPE,
        [Sphere((24, 24, 12), radii[0]), Sphere((24, 24, 38), radii[1]), Sphere((24, 24, 72), radii[2])],
    )
    labels, _ = label_components(reference)
    sizes = np.bincount(labels.ravel())[1:]
    return reference, labels, int(np.argmin(sizes)) + 1, int(np.argmax(sizes)) + 1


def erode_component(prediction, labels, component, steps=1):
    part = prediction & (labels == component)
    return (prediction & (labels != component)) | ndimage.binary_erosion(part, iterations=steps)


def erosion_series(reference, labels, component, steps, metrics=("dice", "hd95")):
    prediction, results = reference.copy(), []
    for _ in range(steps + 1):
        results.append(evaluate(reference, prediction, metrics=metrics))
        prediction = erode_component(prediction, labels, component)
    return results


def test_eroding_only_the_smallest_sphere_drives_cc_dice_to_two_thirds():
    reference, labels, smallest, _ = three_spheres((6.0, 9.0, 15.0))
    series = erosion_series(reference, labels, smallest, 7)
    cc_dice = [r.mean["dice"] for r in series]
    global_dice = [r.standard["dice"] for r in series]
    assert cc_dice[-1] == pytest.approx(2 / 3)
    assert series[-1].per_component[smallest - 1]["dice"] == 0.0
    assert global_dice[-1] > 0.97  # the smallest sphere is 5 % of the volume
    assert all(a > b for a, b in itertools.pairwise(cc_dice))  # falls at every step
    assert 1.0 - global_dice[-1] < 0.1 * (1.0 - cc_dice[-1])


def test_hausdorff95_ignores_the_small_component_globally_but_not_per_component():
    reference, labels, smallest, largest = three_spheres((3.0, 9.0, 15.0))
    small_eroded = erosion_series(reference, labels, smallest, 2)
    large_eroded = erosion_series(reference, labels, largest, 2)
    assert [r.standard["hd95"] for r in small_eroded] == [0.0, 0.0, 0.0]  # under the 95th percentile
    assert [r.standard["hd95"] for r in large_eroded][1:] == [1.0, 2.0]
    cc_small = [r.mean["hd95"] for r in small_eroded]
    cc_large = [r.mean["hd95"] for r in large_eroded]
    assert cc_small[0] == 0.0 and cc_small[1] > 0.3 and cc_small[2] > cc_small[1]
    assert cc_small[2] == pytest.approx(cc_large[2], rel=0.5)  # same error, similar score whatever the size


def test_panoptic_quality_drops_in_steps_at_iou_one_half_while_cc_dice_changes_smoothly():
    reference, labels, smallest, _ = three_spheres((6.0, 9.0, 15.0))
    series = erosion_series(reference, labels, smallest, 7, metrics=("dice", "iou"))
    pq = np.array([r.instance["pq"] for r in series])
    cc_dice = np.array([r.mean["dice"] for r in series])
    small_iou = np.array([r.per_component[smallest - 1]["iou"] for r in series])
    crossing = int(np.argmax(small_iou <= 0.5))  # first step with IoU <= 0.5: TP becomes FN + FP
    assert small_iou[crossing - 1] > 0.5
    assert series[crossing].instance["pq_tp"] == 2 and series[crossing].instance["pq_fp"] == 1
    jumps = np.abs(np.diff(pq))
    assert np.argmax(jumps) == crossing - 1 and jumps.max() > 0.15
    # below the threshold PQ no longer sees the component getting worse, CC-Dice does
    still_present = [
        i for i in range(crossing, len(series)) if series[i].per_component[smallest - 1]["dice"] > 0
    ]
    assert len({round(pq[i], 12) for i in still_present}) == 1
    assert np.all(np.diff(cc_dice[still_present]) < 0)
    # once the component is gone entirely, PQ rises again (the "false positive" vanished)
    assert series[-1].per_component[smallest - 1]["prediction_voxels"] == 0
    assert pq[-1] > pq[still_present[-1]]
    assert np.abs(np.diff(cc_dice)).max() < jumps.max()


def test_lesion_dice_counts_one_mask_bridging_two_lesions_for_both():
    reference = sphere_mask((20, 20, 40), [Sphere((10, 10, 10), 4.0), Sphere((10, 10, 26), 4.0)])
    bridge = reference.copy()
    bridge[8:13, 8:13, 10:27] = True  # one predicted component touching both lesions
    result = evaluate(reference, bridge, metrics=["dice"])
    assert result.instance["ld_tp"] == 2 and result.instance["ld_fp"] == 0
    assert result.counts["n_prediction_components"] == 1
    assert [row["n_pred_components"] for row in result.per_component] == [1, 1]
