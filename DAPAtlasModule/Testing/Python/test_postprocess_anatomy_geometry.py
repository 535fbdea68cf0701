"""Orientation-aware geometry: heights and plane distances from the full direction matrix."""

from __future__ import annotations

import numpy as np
import pytest
from postprocess_cases import ORIENTATIONS, phantom

from DAPAtlasLib.postprocess.anatomy_geometry import MidsagittalPlane, PatientGeometry


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_linear_fields_equal_the_ras_positions_of_the_voxels(orientation):
    volume = phantom(orientation).labels
    geometry = PatientGeometry(volume)
    region = (slice(3, 9), slice(10, 14), slice(5, 12))
    kji = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in region], indexing="ij"), -1).reshape(
        -1, 3
    )
    ras = volume.kji_to_ras(kji)
    heights = np.broadcast_to(geometry.height_field(region), (6, 4, 7)).reshape(-1)
    assert np.allclose(heights, ras[:, 2], atol=1e-3)
    plane = MidsagittalPlane((1.0, 2.0, 3.0), (-0.6, 0.8, 0.0), 53.1, "fit")
    distance = np.broadcast_to(plane.signed_distance_field(geometry, region), (6, 4, 7)).reshape(-1)
    assert np.allclose(distance, plane.signed_distance(ras), atol=1e-3)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_region_above_a_height_holds_every_voxel_above_it_and_is_tight_for_axis_aligned_grids(orientation):
    volume = phantom(orientation).labels
    geometry = PatientGeometry(volume)
    region = geometry.region_above(700.0)
    all_heights = np.broadcast_to(geometry.height_field(geometry.full_region()), volume.shape)
    inside = np.zeros(volume.shape, dtype=bool)
    inside[region] = True
    assert not np.any((all_heights > 700.0) & ~inside)
    if orientation != "oblique":
        assert np.all(all_heights[region] > 700.0 - max(volume.spacing_mm))


def test_axis_aligned_height_fields_are_one_dimensional():
    geometry = PatientGeometry(phantom("LPS").labels)
    assert geometry.height_field(geometry.full_region()).shape == (geometry.shape[0], 1, 1)


@pytest.mark.parametrize("seed", range(6))
def test_median_ras_is_the_median_of_all_ras_points_bit_for_bit(seed, monkeypatch):
    """Axis-aligned grids take the middle voxels per axis instead of every point; the oracle is
    np.median over the RAS points of every voxel (subsampled as documented), and an oblique grid."""
    from AnatomyCommonLib.volume import Volume
    from DAPAtlasLib.postprocess import anatomy_geometry

    rng = np.random.default_rng(seed)
    for trial in range(200):
        shape = tuple(int(n) for n in rng.integers(1, 25, 3))
        matrix = np.eye(4)
        matrix[:3, :3] = 0.0
        for axis, (row, sign) in enumerate(zip(rng.permutation(3), rng.choice([-1, 1], 3), strict=True)):
            matrix[row, axis] = sign * rng.uniform(0.3, 5.0)
        matrix[:3, 3] = rng.uniform(-500, 500, 3) * (trial % 2)
        if trial % 7 == 0:
            matrix[:3, :3] = matrix[:3, :3] @ np.linalg.qr(rng.normal(size=(3, 3)))[0]  # oblique
        geometry = PatientGeometry(Volume(np.zeros(shape, dtype=np.uint8), matrix))
        assert (geometry.coordinate_axes is None) == (trial % 7 == 0)
        mask = rng.random(shape) < rng.uniform(0.001, 1.0)
        if not mask.any():
            continue
        region = tuple(slice(int(o), int(o) + n) for o, n in zip(rng.integers(0, 90, 3), shape, strict=True))
        most = int(rng.integers(1, 40)) if trial % 3 == 0 else 200_000
        monkeypatch.setattr(anatomy_geometry, "MEDIAN_MAX_POINTS", most)
        flat = np.flatnonzero(mask)
        flat = flat[:: -(-len(flat) // most)] if len(flat) > most else flat
        kji = np.stack(np.unravel_index(flat, shape), axis=1) + [s.start for s in region]
        expected = np.median(kji @ geometry.axes_ras.T + geometry.origin_ras, axis=0)
        got = anatomy_geometry.median_ras(geometry, mask, region)
        assert got.tobytes() == expected.tobytes(), (trial, got, expected)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_top_height_is_the_largest_height_of_the_voxels(orientation):
    from DAPAtlasLib.postprocess.anatomy_geometry import heights_of, top_height

    geometry = PatientGeometry(phantom(orientation).labels)
    rng = np.random.default_rng(3)
    for _ in range(30):
        shape = tuple(int(n) for n in rng.integers(1, 12, 3))
        region = tuple(slice(int(o), int(o) + n) for o, n in zip(rng.integers(0, 20, 3), shape, strict=True))
        mask = rng.random(shape) < rng.uniform(0.01, 1.0)
        mask.flat[int(rng.integers(0, mask.size))] = True
        assert top_height(geometry, mask, region) == float(heights_of(geometry, mask, region).max())
