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
