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
