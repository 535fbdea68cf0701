"""Per-structure statistics: voxel count, volume (ml), HU mean/std/min/max, centroid."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from postprocess_cases import phantom

from AnatomyCommonLib.volume import Volume
from DAPAtlasLib.exceptions import GeometryMismatchError, InvalidLabelValuesError, OutputExistsError
from DAPAtlasLib.statistics import (
    COLUMNS,
    statistics_rows,
    structure_statistics,
    volumes_by_system,
    write_statistics_csv,
    write_statistics_json,
)


def test_values_match_an_independent_computation_on_an_anisotropic_oblique_grid():
    rng = np.random.default_rng(3)
    labels = np.zeros((12, 10, 9), dtype=np.uint8)
    labels[2:6, 3:8, 1:4] = 13
    labels[7:11, 1:3, 5:9] = 104
    labels[0, 0, 0] = 104
    ct = rng.normal(40, 25, labels.shape).round().astype(np.int16)
    angle = np.deg2rad(30)
    direction = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    volume = Volume.from_geometry(labels, (0.7, 1.1, 2.5), (10.0, -4.0, 100.0), direction)
    stats = {s.label: s for s in structure_statistics(volume, volume.with_array(ct))}
    assert set(stats) == {13, 104}
    for label, item in stats.items():
        mask = labels == label
        values = ct[mask].astype(float)
        assert item.voxel_count == mask.sum()
        assert item.volume_ml == pytest.approx(mask.sum() * 0.7 * 1.1 * 2.5 / 1000)
        assert (item.hu_mean, item.hu_std) == pytest.approx((values.mean(), values.std()))
        assert (item.hu_min, item.hu_max) == (values.min(), values.max())
        assert item.centroid_kji == pytest.approx(tuple(np.argwhere(mask).mean(axis=0)))
        assert item.centroid_ras_mm == pytest.approx(tuple(volume.kji_to_ras(np.argwhere(mask)).mean(axis=0)))
    assert stats[104].name == "Femur Right" and stats[104].system == "bones" and stats[104].side == "right"


def test_float_ct_and_missing_ct_are_handled():
    labels = np.zeros((4, 4, 4), dtype=np.uint8)
    labels[1:3, 1:3, 1:3] = 25
    volume = Volume(labels)
    ct = np.full(labels.shape, 30.5, dtype=np.float32)
    (item,) = structure_statistics(volume, volume.with_array(ct))
    assert item.hu_mean == pytest.approx(30.5) and item.hu_std == pytest.approx(0.0)
    (item,) = structure_statistics(volume)
    assert item.hu_mean is None and item.volume_ml == pytest.approx(8 / 1000)


def test_phantom_organ_volumes_and_intensities_are_plausible():
    p = phantom("LPS")
    stats = {s.name: s for s in structure_statistics(p.labels, p.ct)}
    assert 1000 < stats["Liver"].volume_ml < 3000
    assert stats["Liver"].hu_mean == pytest.approx(60, abs=5)
    assert stats["Kidney Left"].centroid_ras_mm[0] < 0 < stats["Kidney Right"].centroid_ras_mm[0]
    by_system = volumes_by_system(list(stats.values()))
    assert sum(by_system.values()) == pytest.approx(sum(s.volume_ml for s in stats.values()))
    assert next(iter(by_system)) == "musculature"


def test_csv_and_json_files_hold_one_row_per_structure(tmp_path):
    p = phantom("RAS")
    stats = structure_statistics(p.labels, p.ct)
    csv_path = write_statistics_csv(stats, tmp_path / "stats.csv", extra={"case": "phantom"})
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(stats) and list(rows[0]) == ["case", *COLUMNS]
    assert rows[0]["case"] == "phantom" and int(rows[0]["label"]) == stats[0].label
    json_path = write_statistics_json(stats, tmp_path / "stats.json")
    data = json.loads(json_path.read_text())
    assert data["structures"] == json.loads(json.dumps(statistics_rows(stats)))
    assert set(data["volume_ml_by_system"]) <= {s.system for s in stats}
    with pytest.raises(OutputExistsError):
        write_statistics_csv(stats, csv_path)


def test_wrong_inputs_are_refused_clearly():
    p = phantom("RAS")
    with pytest.raises(InvalidLabelValuesError, match="non-integer"):
        structure_statistics(p.ct.with_array(p.ct.array.astype(np.float32) + 0.5))
    with pytest.raises(GeometryMismatchError):
        structure_statistics(p.labels, phantom("RAS", "M", 0, "small").ct)
