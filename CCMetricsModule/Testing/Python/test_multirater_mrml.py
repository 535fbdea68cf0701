"""The multi-rater analysis on real MRML nodes (slicer-core) equals the library on arrays."""

import numpy as np
import pytest
from scipy import ndimage

from AnatomyCommonLib import Volume
from AnatomyCommonLib import slicer_bridge as bridge
from CCMetricsLib import multirater_agreement
from CCMetricsLib.mrml_nodes import multirater_nodes
from CCMetricsLib.synthetic import Sphere, sphere_mask

pytestmark = pytest.mark.mrml


def test_rater_segmentations_and_labelmaps_give_the_library_numbers(mrml_scene):
    shape = (24, 36, 36)
    base = sphere_mask(shape, [Sphere((8, 9, 9), 4.0), Sphere((16, 24, 24), 5.0)])
    a, b, c = base, ndimage.binary_dilation(base), np.roll(base, 1, axis=2)
    geometry = Volume.from_geometry(np.zeros(shape, np.uint8), (0.9, 0.9, 1.5), (10.0, -5.0, 20.0))
    ct_node = bridge.volume_to_node(geometry.with_array(np.zeros(shape, np.int16)), "CT", scene=mrml_scene)
    nodes = [
        bridge.labelmap_to_segmentation_node(
            geometry.with_array(a.astype(np.uint8)),
            [bridge.LabelDescription(1, "lesions")],
            "Rater A",
            scene=mrml_scene,
            reference_volume_node=ct_node,
        ),
        bridge.volume_to_node(
            geometry.with_array(b.astype(np.uint8)), "Rater B", scene=mrml_scene, labelmap=True
        ),
        bridge.volume_to_node(
            geometry.with_array(c.astype(np.uint8)), "Rater C", scene=mrml_scene, labelmap=True
        ),
    ]
    repeat = bridge.volume_to_node(
        geometry.with_array(np.roll(a, 1, axis=1).astype(np.uint8)),
        "A again",
        scene=mrml_scene,
        labelmap=True,
    )
    model = bridge.volume_to_node(
        geometry.with_array(base.astype(np.uint8)), "Model", scene=mrml_scene, labelmap=True
    )
    out = multirater_nodes(nodes, [model], [repeat], scene=mrml_scene)
    expected = multirater_agreement(
        {"Rater A": a, "Rater B": b, "Rater C": c},
        repeats={"Rater A": [np.roll(a, 1, axis=1)]},
        predictions={"Model": base},
        spacing=geometry.spacing_kji_mm,
    )
    rows = bridge.table_node_to_rows(out.pair_table)
    assert [(r["a"], r["b"], r["kind"]) for r in rows] == [(p.a, p.b, p.kind) for p in expected.pairs]
    for row, pair in zip(rows, expected.pairs, strict=True):
        assert row["dice"] == pytest.approx(pair.dice)
        assert row["cc_dice"] == pytest.approx(pair.cc_dice)
    models = bridge.table_node_to_rows(out.model_table)
    assert models[0]["cc_dice"] == pytest.approx(expected.models[0]["cc_dice"])
    consensus = bridge.node_to_volume(out.consensus)
    assert np.array_equal(consensus.array != 0, expected.consensus)
    assert np.allclose(consensus.ijk_to_ras, geometry.ijk_to_ras)


def _oblique(shape, spacing, origin) -> np.ndarray:
    """IJK->RAS of a grid turned 30 degrees about S and flipped in A (not an axis-aligned grid)."""
    angle = np.deg2rad(30.0)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [-np.sin(angle), -np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag(spacing)
    matrix[:3, 3] = origin
    return matrix


def test_agreement_through_the_job_runner_equals_the_library_on_the_same_arrays(mrml_scene):
    """Read (main) -> JobWorker compute -> attach (main) gives multirater_agreement's numbers on the
    nodes' arrays, a Dice equal to the hand count, and a consensus on the reference volume's grid."""
    from AnatomyCommonLib.background_jobs import JobWorker
    from CCMetricsLib.mrml_nodes import compute_agreement, read_agreement_inputs, show_agreement

    shape = (20, 30, 28)
    matrix = _oblique(shape, (0.8, 1.1, 2.5), (-30.0, 12.0, 40.0))
    base = sphere_mask(shape, [Sphere((6, 8, 9), 3.5), Sphere((13, 20, 18), 5.0)])
    masks = {
        "Rater A": base,
        "Rater B": ndimage.binary_dilation(base),
        "Rater C": np.roll(base, 2, axis=1),
    }
    repeat = np.roll(base, 1, axis=2)
    prediction = ndimage.binary_erosion(base) | np.roll(base, 1, axis=0)
    geometry = Volume(np.zeros(shape, np.int16), matrix)
    ct_node = bridge.volume_to_node(geometry, "CT", scene=mrml_scene)
    rater_nodes = [
        bridge.labelmap_to_segmentation_node(
            geometry.with_array(masks["Rater A"].astype(np.uint8) * 3),
            [bridge.LabelDescription(3, "tumour")],
            "Rater A",
            scene=mrml_scene,
            reference_volume_node=ct_node,
        ),
        *[
            bridge.volume_to_node(
                geometry.with_array(masks[name].astype(np.uint8)), name, scene=mrml_scene, labelmap=True
            )
            for name in ("Rater B", "Rater C")
        ],
    ]
    repeat_node = bridge.volume_to_node(
        geometry.with_array(repeat.astype(np.uint8)), "A again", scene=mrml_scene, labelmap=True
    )
    model_node = bridge.volume_to_node(
        geometry.with_array(prediction.astype(np.uint8)), "Model", scene=mrml_scene, labelmap=True
    )

    inputs = read_agreement_inputs(
        rater_nodes, [model_node], [repeat_node], grid_node=ct_node, scene=mrml_scene
    )
    worker = JobWorker("agreement test")
    try:
        update = worker.submit(lambda job: compute_agreement(inputs, job=job), "agreement").wait(600)
    finally:
        worker.stop(timeout_s=60)
    assert update.state == "succeeded", update.error
    out = show_agreement(update.result, scene=mrml_scene)

    spacing = Volume(np.zeros(shape, np.uint8), matrix).spacing_kji_mm
    expected = multirater_agreement(
        masks, repeats={"Rater A": [repeat]}, predictions={"Model": prediction}, spacing=spacing
    )
    pairs = bridge.table_node_to_rows(out.pair_table)
    assert [(r["a"], r["b"], r["kind"]) for r in pairs] == [(p.a, p.b, p.kind) for p in expected.pairs]
    for row, pair in zip(pairs, expected.pairs, strict=True):
        for key in ("dice", "cc_dice_a_ref", "cc_dice_b_ref", "cc_dice"):
            assert row[key] == pytest.approx(getattr(pair, key), abs=1e-12)
    # one pair's Dice by hand: 2 |A and B| / (|A| + |B|)
    a, b = masks["Rater A"], masks["Rater B"]
    assert pairs[0]["dice"] == pytest.approx(2 * np.count_nonzero(a & b) / (a.sum() + b.sum()))
    models = bridge.table_node_to_rows(out.model_table)
    assert len(models) == 1
    for key, value in expected.models[0].items():
        assert models[0][key] == (value if isinstance(value, str) else pytest.approx(value, abs=1e-12))
    assert out.result.inter == pytest.approx(expected.inter)
    assert out.result.intra == pytest.approx(expected.intra)
    assert out.result.staple == expected.staple

    consensus = bridge.node_to_volume(out.consensus)
    assert out.consensus.IsA("vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(consensus.array != 0, expected.consensus)
    np.testing.assert_allclose(consensus.ijk_to_ras, bridge.node_to_volume(ct_node).ijk_to_ras, atol=1e-9)
    assert consensus.array.shape == shape
