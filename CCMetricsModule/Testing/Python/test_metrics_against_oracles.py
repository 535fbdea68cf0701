"""Per-component and global metrics equal MONAI and the authors' CCMetrics package."""

import importlib.util

import numpy as np
import pytest

# The oracles (MONAI, the authors' CCMetrics) need torch; without them the module skips.
torch = pytest.importorskip("torch")
pytest.importorskip("monai")
# Only look CCMetrics up here: importing it switches torch's autograd off process-wide, which
# at collection time would break every later training test; the tests import it when they run.
if importlib.util.find_spec("CCMetrics") is None:
    pytest.skip("could not import 'CCMetrics' (the authors' package, extra 'test')", allow_module_level=True)

from CCMetricsLib import compare, evaluate  # noqa: E402
from CCMetricsLib.synthetic import perturb_prediction, random_spheres, sphere_mask  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::FutureWarning"
)  # MONAI warns about empty masks, CPU Voronoi and deprecated arguments


def one_hot(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))


def equidistant_predicted_voxels(reference, prediction):
    """Predicted voxels outside the reference with two equally near components (Algorithm 1)."""
    from scipy import ndimage

    from CCMetricsLib.voronoi import label_components

    labels, n = label_components(reference)
    distances = np.sort([ndimage.distance_transform_edt(labels != k) for k in range(1, n + 1)], axis=0)
    return int(np.count_nonzero((distances[1] - distances[0] < 1e-9) & prediction & ~reference))


@pytest.fixture(scope="module")
def isotropic_case():
    shape = (56, 64, 60)
    spheres = random_spheres(shape, 7, radius_mm=(2.5, 9.0), gap_mm=5.0, seed=12)
    reference = sphere_mask(shape, spheres)
    prediction, plan = perturb_prediction(
        reference,
        missed=1,
        dilated=2,
        eroded=1,
        shifted=2,
        false_positives=2,
        false_positive_radius_mm=3.0,
        seed=4,
    )
    # the package breaks ties arbitrarily: compare on a case without equidistant predicted voxels
    assert equidistant_predicted_voxels(reference, prediction) == 0
    return reference, prediction, plan


@pytest.fixture(scope="module")
def reference_package_values(isotropic_case):
    from CCMetrics import (
        CCDiceMetric,
        CCHausdorffDistance95Metric,
        CCHausdorffDistanceMetric,
        CCSurfaceDiceMetric,
        CCSurfaceDistanceMetric,
    )

    reference, prediction, _ = isotropic_case
    classes = {
        "dice": CCDiceMetric(),
        "nsd": CCSurfaceDiceMetric(class_thresholds=[1.0]),
        "hd95": CCHausdorffDistance95Metric(metric_worst_score=50),
        "hd": CCHausdorffDistanceMetric(metric_worst_score=50),
        "assd": CCSurfaceDistanceMetric(metric_worst_score=50, symmetric=True),
    }
    values = {}
    for name, metric in classes.items():
        metric(one_hot(prediction).numpy(), one_hot(reference).numpy())
        values[name] = metric.cc_aggregate(mode="overall").numpy().ravel()
    return values


@pytest.mark.parametrize("metric", ["dice", "nsd", "hd95", "hd", "assd"])
def test_per_component_values_equal_the_ccmetrics_package_on_isotropic_data(
    isotropic_case, reference_package_values, metric
):
    reference, prediction, plan = isotropic_case
    result = evaluate(reference, prediction, distance_worst=50)
    ours = np.array([row[metric] for row in result.per_component])
    assert len(ours) == len(reference_package_values[metric])
    assert ours == pytest.approx(reference_package_values[metric], rel=1e-5, abs=1e-5)
    missed = [row["component_id"] for row in result.per_component if row["prediction_voxels"] == 0]
    assert missed == plan.missed


def test_cc_dice_equals_monai_dice_metric_per_component(isotropic_case):
    from monai.metrics import DiceMetric

    reference, prediction, _ = isotropic_case
    expected = DiceMetric(include_background=False, per_component=True)(
        one_hot(prediction), one_hot(reference)
    )
    assert evaluate(reference, prediction, metrics=["dice"]).mean["dice"] == pytest.approx(
        float(expected), abs=1e-6
    )


def monai_global(prediction, reference, spacing, tolerance):
    from monai.metrics import (
        DiceMetric,
        HausdorffDistanceMetric,
        MeanIoU,
        SurfaceDiceMetric,
        SurfaceDistanceMetric,
    )

    p, r = one_hot(prediction), one_hot(reference)
    sp = [float(s) for s in spacing]
    return {
        "dice": float(DiceMetric(include_background=False)(p, r)),
        "iou": float(MeanIoU(include_background=False)(p, r)),
        "nsd": float(SurfaceDiceMetric([tolerance], include_background=False)(p, r, spacing=sp)),
        "hd95": float(HausdorffDistanceMetric(include_background=False, percentile=95)(p, r, spacing=sp)),
        "hd": float(HausdorffDistanceMetric(include_background=False)(p, r, spacing=sp)),
        "assd": float(SurfaceDistanceMetric(include_background=False, symmetric=True)(p, r, spacing=sp)),
    }


def test_single_component_metrics_equal_monai_with_anisotropic_spacing():
    spacing = (2.5, 0.8, 1.1)
    shape = (24, 60, 48)
    reference = sphere_mask(shape, random_spheres(shape, 1, (8.0, 12.0), spacing=spacing, seed=2), spacing)
    prediction = np.roll(reference, (1, 3, -2), axis=(0, 1, 2))
    prediction[10:12] = False
    result = evaluate(reference, prediction, spacing=spacing, spacing_order="kji", nsd_tolerance=1.5)
    expected = monai_global(prediction, reference, spacing, 1.5)
    (row,) = result.per_component
    for metric, value in expected.items():
        assert row[metric] == pytest.approx(value, rel=1e-5), metric
        assert result.standard[metric] == pytest.approx(value, rel=1e-5), metric


def test_standard_metrics_equal_monai_global_metrics_on_anisotropic_multi_component_data():
    spacing = (2.0, 0.8, 0.8)
    shape = (30, 80, 80)
    reference = sphere_mask(shape, random_spheres(shape, 5, (3.0, 10.0), 4.0, spacing, seed=5), spacing)
    prediction, _ = perturb_prediction(
        reference,
        missed=1,
        dilated=1,
        eroded=1,
        shifted=1,
        false_positives=1,
        false_positive_radius_mm=3.0,
        spacing=spacing,
        seed=1,
    )
    result = evaluate(reference, prediction, spacing=spacing, spacing_order="kji", nsd_tolerance=2.0)
    expected = monai_global(prediction, reference, spacing, 2.0)
    for metric, value in expected.items():
        assert result.standard[metric] == pytest.approx(value, rel=1e-5), metric


def test_surface_metrics_use_millimetres():
    reference = np.zeros((10, 10, 30), bool)
    reference[3:7, 3:7, 5:10] = True
    shifted = np.roll(reference, 4, axis=2)  # 4 voxels along i
    in_voxels = evaluate(reference, shifted, metrics=["hd"])
    in_mm = evaluate(reference, shifted, spacing=(1.0, 1.0, 0.5), spacing_order="kji", metrics=["hd"])
    assert in_voxels.mean["hd"] == pytest.approx(4.0)
    assert in_mm.mean["hd"] == pytest.approx(2.0)


def test_several_predictions_share_one_table_and_equal_separate_evaluations(isotropic_case):
    reference, prediction, _ = isotropic_case
    perfect = reference.copy()
    table = compare(reference, {"model A": prediction, "model B": perfect}, distance_worst=50)
    assert [row["prediction"] for row in table.summary_rows()] == ["model A", "model B"]
    assert table["model B"].mean["dice"] == 1.0 and table["model B"].mean["hd95"] == 0.0
    alone = evaluate(reference, prediction, distance_worst=50)
    assert table["model A"].per_component == alone.per_component
    rows = table.component_rows()
    assert len(rows) == 2 * alone.counts["n_reference_components"]
