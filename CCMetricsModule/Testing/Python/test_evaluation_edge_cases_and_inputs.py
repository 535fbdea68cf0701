"""Edge cases, worst-score handling, input forms, result export."""

import csv
import io
import json
import math

import numpy as np
import pytest

from AnatomyCommonLib import Volume
from CCMetricsLib import evaluate, evaluate_labels
from CCMetricsLib.exceptions import (
    GeometryMismatchError,
    InvalidParameterError,
    NonBinaryMaskError,
    UnknownMetricError,
)
from CCMetricsLib.synthetic import Sphere, sphere_mask

DISTANCES = ("hd95", "hd", "assd")


def two_spheres():
    return sphere_mask((44, 20, 20), [Sphere((10, 10, 10), 4.0), Sphere((32, 10, 10), 5.0)])


def test_empty_reference_and_empty_prediction_score_best():
    empty = np.zeros((8, 8, 8), bool)
    result = evaluate(empty, empty)
    assert result.per_component == []
    for scores in (result.mean, result.standard):
        assert scores == {"dice": 1.0, "iou": 1.0, "nsd": 1.0, "hd95": 0.0, "hd": 0.0, "assd": 0.0}
    assert result.instance["pq"] == 1.0 and result.instance["lesion_dice"] == 1.0


def test_empty_reference_with_a_prediction_scores_worst():
    empty = np.zeros((8, 8, 8), bool)
    prediction = empty.copy()
    prediction[2:4, 2:4, 2:4] = True
    result = evaluate(empty, prediction)
    assert result.mean["dice"] == 0.0 and result.mean["nsd"] == 0.0
    # default worst distance: the image diagonal, 8 voxels of 1 mm per axis
    assert all(result.mean[m] == pytest.approx(math.sqrt(3 * 8.0**2)) for m in DISTANCES)
    assert all(math.isinf(evaluate(empty, prediction, distance_worst=math.inf).mean[m]) for m in DISTANCES)
    assert evaluate(empty, prediction, distance_worst=50).mean["hd95"] == 50.0
    assert result.counts["n_false_positive_components"] == 1
    assert result.instance["pq"] == 0.0 and result.instance["lesion_dice"] == 0.0


def test_a_missed_component_scores_zero_and_worst_distance_and_is_reported():
    reference = two_spheres()
    prediction = reference.copy()
    prediction[22:] = False  # the second sphere is missed
    result = evaluate(reference, prediction, distance_worst=math.inf)
    missed = result.per_component[1]
    assert (missed["detected"], missed["prediction_voxels"], missed["n_pred_components"]) == (False, 0, 0)
    assert missed["dice"] == missed["iou"] == missed["nsd"] == 0.0
    assert all(math.isinf(missed[m]) for m in DISTANCES)
    assert math.isinf(result.mean["hd95"])
    with_worst = evaluate(reference, prediction, distance_worst=30)
    assert with_worst.per_component[1]["hd95"] == 30.0
    assert with_worst.mean["hd95"] == pytest.approx(15.0)
    assert result.counts == {
        "n_reference_components": 2,
        "n_detected": 1,
        "n_missed": 1,
        "n_missed_with_prediction_nearby": 0,
        "n_missed_without_prediction": 1,
        "n_prediction_components": 1,
        "n_false_positive_components": 0,
    }


def test_a_finite_distance_above_the_worst_score_is_clamped_only_when_asked():
    reference = two_spheres()
    prediction = reference.copy()
    prediction[40:44, 0:2, 0:2] = True  # a false positive 15+ mm away, inside the second region
    kept = evaluate(reference, prediction, distance_worst=5, metrics=["hd"])
    clamped = evaluate(reference, prediction, distance_worst=5, metrics=["hd"], clamp_distances=True)
    assert kept.per_component[1]["hd"] > 5.0
    assert clamped.per_component[1]["hd"] == 5.0
    assert clamped.standard["hd"] == 5.0
    with pytest.raises(InvalidParameterError, match="distance_worst"):
        evaluate(reference, prediction, clamp_distances=True)


def test_a_missed_lesion_with_false_positives_in_its_region_gets_their_real_distance():
    # Method and reference package: HD95 is computed on (prediction ∩ region, reference ∩ region); the
    # worst score only replaces a distance that cannot be computed (no prediction in the region).
    spacing = (2.0, 1.0, 0.5)  # mm per (k, j, i)
    reference = np.zeros((30, 10, 10), bool)
    reference[2, 5, 5] = reference[12, 5, 5] = True  # lesion A and lesion B, single voxels
    prediction = np.zeros_like(reference)
    prediction[2, 5, 5] = True  # A found; B missed
    prediction[16, 5, 5] = prediction[20, 5, 5] = True  # two false positives, 4 and 8 slices past B
    result = evaluate(reference, prediction, spacing=spacing, spacing_order="kji", distance_worst=5)
    missed = result.per_component[1]
    assert (missed["detected"], missed["n_pred_components"], missed["dice"]) == (False, 2, 0.0)
    # by hand: prediction -> B is [8, 16] mm, B -> prediction is [8] mm; 95th percentile (linear) of
    # [8, 16] is 8 + 0.95 * 8 = 15.6 mm, above distance_worst = 5 and kept
    assert missed["hd95"] == pytest.approx(15.6)
    assert missed["hd"] == pytest.approx(16.0)
    assert missed["assd"] == pytest.approx((8 + 16 + 8) / 3)
    assert result.mean["hd95"] == pytest.approx(15.6 / 2)  # A is perfect
    clamped = evaluate(
        reference, prediction, spacing=spacing, spacing_order="kji", distance_worst=5, clamp_distances=True
    )
    assert clamped.per_component[1]["hd95"] == 5.0
    prediction[16:] = False  # no prediction left in B's region: now distance_worst is used
    assert (
        evaluate(reference, prediction, spacing=spacing, spacing_order="kji", distance_worst=5).per_component[
            1
        ]["hd95"]
        == 5.0
    )


def test_missed_lesion_hd95_with_false_positives_matches_scipy_distance_transforms():
    from scipy import ndimage

    spacing = (3.0, 1.0, 1.5)
    reference = np.zeros((40, 16, 16), bool)
    reference[3:7, 4:10, 5:11] = True  # lesion A
    reference[18:21, 6:9, 6:9] = True  # lesion B, missed
    prediction = np.zeros_like(reference)
    prediction[3:7, 4:10, 5:11] = True
    prediction[27:30, 2:5, 3:6] = True  # false positives, both in B's region (nearer B than A)
    prediction[33:35, 10:14, 9:13] = True
    result = evaluate(reference, prediction, spacing=spacing, spacing_order="kji", distance_worst=1.0)

    cross = ndimage.generate_binary_structure(3, 1)
    lesion_b, false_positives = reference.copy(), prediction.copy()
    lesion_b[:12], false_positives[:12] = False, False  # region of B (k >= 12 is nearer B than A)

    def boundary(mask):
        return mask & ~ndimage.binary_erosion(mask, cross, border_value=0)

    to_b = ndimage.distance_transform_edt(~boundary(lesion_b), sampling=spacing)[boundary(false_positives)]
    to_fp = ndimage.distance_transform_edt(~boundary(false_positives), sampling=spacing)[boundary(lesion_b)]
    expected = max(np.percentile(to_b, 95), np.percentile(to_fp, 95))
    missed = result.per_component[1]
    assert (missed["detected"], missed["n_pred_components"]) == (False, 2)
    assert missed["hd95"] == pytest.approx(expected)
    assert missed["hd95"] > 1.0  # the finite distance is kept above distance_worst


def test_a_false_positive_lowers_only_the_region_it_falls_in():
    reference = two_spheres()
    prediction = reference.copy()
    prediction[41:43, 10, 10] = True  # nearer the second sphere
    result = evaluate(reference, prediction)
    assert result.per_component[0]["dice"] == 1.0
    assert result.per_component[1]["dice"] < 1.0
    assert result.per_component[1]["n_pred_components"] == 2
    assert result.counts["n_false_positive_components"] == 1


def test_label_maps_are_evaluated_per_label_and_refused_without_one():
    reference = two_spheres().astype(np.uint8) * 3
    prediction = reference.copy()
    prediction[prediction == 3] = 0
    prediction[8:12, 8:12, 8:12] = 3
    prediction[0:3, 0:3, 0:3] = 5
    with pytest.raises(NonBinaryMaskError, match="label=N"):
        evaluate(reference, prediction)
    by_label = evaluate(reference, prediction, label=3)
    assert by_label.counts["n_reference_components"] == 2 and by_label.counts["n_detected"] == 1
    every = evaluate_labels(reference, prediction)
    assert sorted(every) == [3, 5]
    assert every[3].per_component == by_label.per_component
    assert every[5].mean["dice"] == 0.0  # label 5 only in the prediction


def test_different_grids_are_refused_with_a_clear_error():
    reference = two_spheres()
    with pytest.raises(GeometryMismatchError, match="same voxel grid"):
        evaluate(reference, reference[:40])
    a = Volume.from_geometry(reference.astype(np.uint8), spacing_mm=(1.0, 1.0, 2.0))
    b = Volume.from_geometry(reference.astype(np.uint8), spacing_mm=(1.0, 1.0, 2.5))
    with pytest.raises(GeometryMismatchError, match="same voxel grid"):
        evaluate(a, b)
    with pytest.raises(GeometryMismatchError, match="spacing"):
        evaluate(a, a, spacing=(1.0, 1.0, 1.0))


def test_volumes_bring_spacing_volume_and_ras_centroids():
    reference = two_spheres().astype(np.uint8)
    volume = Volume.from_geometry(reference, spacing_mm=(0.5, 1.0, 2.0), origin_ras=(10.0, 20.0, 30.0))
    result = evaluate(volume, volume)
    first = result.per_component[0]
    assert result.settings["spacing_kji_mm"] == [2.0, 1.0, 0.5]
    assert first["volume_ml"] == pytest.approx(first["voxel_count"] * 1.0 / 1000.0)
    i, j, k = first["centroid_ijk"]
    assert first["centroid_ras"] == pytest.approx([10.0 + 0.5 * i, 20.0 + 1.0 * j, 30.0 + 2.0 * k])
    assert (k, j, i) == pytest.approx(np.argwhere(reference[:22]).mean(axis=0))
    i0, j0, k0, i1, j1, k1 = first["bbox"]
    assert reference[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1].sum() == first["voxel_count"]


def test_unknown_metrics_and_bad_parameters_are_refused():
    reference = two_spheres()
    with pytest.raises(UnknownMetricError, match="hd99"):
        evaluate(reference, reference, metrics=["dice", "hd99"])
    with pytest.raises(InvalidParameterError):
        evaluate(reference, reference, nsd_tolerance=-1)
    with pytest.raises(InvalidParameterError):
        evaluate(reference, reference, connectivity=4)


def test_only_requested_metrics_are_reported():
    reference = two_spheres()
    result = evaluate(reference, reference, metrics=["dice", "hd"])
    assert set(result.mean) == {"dice", "hd"}
    assert "nsd" not in result.per_component[0]


def test_json_and_csv_exports_hold_every_component_and_report_infinity():
    reference = two_spheres()
    prediction = reference.copy()
    prediction[22:] = False
    result = evaluate(reference, prediction, name="model", distance_worst=math.inf)
    data = json.loads(result.to_json())
    assert data["prediction"] == "model"
    assert len(data["per_component"]) == 2
    assert data["per_component"][1]["hd95"] == "inf"
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [r["component_id"] for r in rows] == ["1", "2"]
    assert float(rows[0]["dice"]) == pytest.approx(result.per_component[0]["dice"], rel=1e-15)
    assert rows[1]["hd95"] == "inf" and rows[1]["detected"] == "0"
    assert {"centroid_i", "centroid_j", "centroid_k", "bbox_k_max"} <= set(rows[0])
