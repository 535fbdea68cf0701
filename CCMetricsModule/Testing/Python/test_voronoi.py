"""Generalized Voronoi regions: exact, spacing-aware, ties to the lowest component id."""

import numpy as np
import pytest
from scipy import ndimage

from CCMetricsLib import voronoi_regions
from CCMetricsLib.exceptions import InvalidParameterError, NonBinaryMaskError
from CCMetricsLib.voronoi import (
    component_sites,
    label_components,
    voronoi_regions_per_component_edt,
)

SPACINGS = [None, (2.0, 1.0, 1.0), (1.0, 2.0, 3.0), (0.8, 0.8, 2.0), (3.0, 1.0, 1.0), (0.7, 1.3, 1.0)]


def random_seeds(rng, shape, n_blobs):
    mask = np.zeros(shape, bool)
    for _ in range(n_blobs):
        corner = [rng.integers(0, s) for s in shape]
        if rng.random() < 0.5:
            mask[tuple(corner)] = True  # single voxels on the lattice make exact ties common
        else:
            mask[tuple(slice(c, c + rng.integers(1, 4)) for c in corner)] = True
    return mask


@pytest.mark.parametrize("case", range(120))
def test_region_map_equals_algorithm_1_on_random_tie_rich_cases(case):
    rng = np.random.default_rng(case)
    mask = random_seeds(rng, tuple(rng.integers(4, 14, 3)), int(rng.integers(2, 8)))
    spacing = SPACINGS[case % len(SPACINGS)]
    connectivity = (6, 18, 26)[case % 3]
    fast, n = voronoi_regions(mask, spacing, connectivity, spacing_order="kji")
    slow, n_slow = voronoi_regions_per_component_edt(mask, spacing, connectivity)
    assert n == n_slow
    assert np.array_equal(fast, slow)


def test_a_voxel_equidistant_to_two_components_goes_to_the_lower_id():
    mask = np.zeros((1, 1, 9), bool)
    mask[0, 0, 0] = mask[0, 0, 8] = True
    regions, n = voronoi_regions(mask)
    assert n == 2
    assert regions[0, 0].tolist() == [1, 1, 1, 1, 1, 2, 2, 2, 2]  # voxel 4 is 4 voxels from both


def test_anisotropic_spacing_moves_the_partition_by_physical_distance():
    # component 1: the row k=0 (j <= 7); component 2: the column j=10. The probe voxel (k=3, j=4)
    # is 3 steps from the first along k and 6 steps from the second along j.
    mask = np.zeros((7, 11, 1), bool)
    mask[0, :8, 0] = True
    mask[:, 10, 0] = True
    labels, n = label_components(mask)
    assert n == 2
    isotropic, _ = voronoi_regions(mask)
    assert isotropic[3, 4, 0] == labels[0, 0, 0]  # 3 mm to k=0 against 6 mm to j=10
    stretched, _ = voronoi_regions(mask, spacing=(3.0, 1.0, 1.0), spacing_order="kji")
    assert stretched[3, 4, 0] == labels[6, 10, 0]  # 9 mm to k=0 against 6 mm to j=10
    slow, _ = voronoi_regions_per_component_edt(mask, spacing=(3.0, 1.0, 1.0))
    assert np.array_equal(stretched, slow)


def test_component_ids_follow_array_order_like_scipy_label():
    rng = np.random.default_rng(3)
    mask = rng.random((12, 13, 14)) > 0.85
    labels, n = label_components(mask, connectivity=26)
    expected, n_expected = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    assert n == n_expected
    assert np.array_equal(labels, expected)


def test_connectivity_decides_whether_diagonal_voxels_are_one_component():
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True
    assert label_components(mask, 26)[1] == 1
    assert label_components(mask, 18)[1] == 2
    assert label_components(mask, 6)[1] == 2
    with pytest.raises(InvalidParameterError):
        label_components(mask, 8)


def test_sparse_nearest_component_agrees_with_the_full_map():
    rng = np.random.default_rng(7)
    mask = random_seeds(rng, (20, 24, 22), 9)
    for spacing in (None, (2.0, 0.7, 1.1)):
        regions, n = voronoi_regions(mask, spacing, spacing_order="kji")
        labels, _ = label_components(mask)
        sites = component_sites(labels, n, spacing)
        probes = np.argwhere(~mask)
        assert np.array_equal(sites.nearest_component(probes), regions[tuple(probes.T)])


def test_empty_reference_has_no_regions_and_label_maps_are_refused():
    regions, n = voronoi_regions(np.zeros((4, 4, 4), np.uint8))
    assert n == 0 and not regions.any()
    with pytest.raises(NonBinaryMaskError, match="label=N"):
        voronoi_regions(np.full((4, 4, 4), 3, np.uint8))


def test_voronoi_regions_takes_the_spacing_of_a_volume():
    from AnatomyCommonLib import Volume

    mask = np.zeros((7, 11, 1), np.uint8)
    mask[0, :7, 0] = 1
    mask[:, 10, 0] = 1
    volume = Volume.from_geometry(mask, spacing_mm=(1.0, 1.0, 3.0))  # i, j, k: k is 3 mm
    from_volume, _ = voronoi_regions(volume)
    explicit, _ = voronoi_regions(mask, spacing=(3.0, 1.0, 1.0), spacing_order="kji")
    assert np.array_equal(from_volume, explicit)


def test_voronoi_regions_refuses_an_anisotropic_raw_array_spacing_without_its_axis_order():
    """(3, 1, 1) read as (z, y, x) or as SimpleITK's (x, y, z) gives different maps: say which."""
    from AnatomyCommonLib import Volume
    from CCMetricsLib.exceptions import GeometryMismatchError

    mask = np.zeros((7, 11, 5), np.uint8)
    mask[0, :7, 0] = 1
    mask[:, 10, 4] = 1
    mask[6, 0, 4] = 1
    with pytest.raises(InvalidParameterError, match=r"spacing_order='kji'.*spacing_order='xyz'"):
        voronoi_regions(mask, spacing=(3.0, 1.0, 1.0))
    with pytest.raises(InvalidParameterError, match="spacing_order"):
        voronoi_regions(mask, spacing=(3.0, 1.0, 1.0), spacing_order="zyx")
    kji, n = voronoi_regions(mask, spacing=(3.0, 1.0, 1.0), spacing_order="kji")
    xyz, _ = voronoi_regions(mask, spacing=(1.0, 1.0, 3.0), spacing_order="xyz")
    expected, n_expected = voronoi_regions_per_component_edt(mask, spacing=(3.0, 1.0, 1.0))
    misread, _ = voronoi_regions_per_component_edt(mask, spacing=(1.0, 1.0, 3.0))
    assert n == n_expected == 3
    assert np.array_equal(kji, expected) and np.array_equal(xyz, expected)
    assert not np.array_equal(expected, misread)  # the order matters on this mask
    for isotropic in (2.0, (2.0, 2.0, 2.0), None):  # no order to state
        assert np.array_equal(voronoi_regions(mask, spacing=isotropic)[0], voronoi_regions(mask)[0])
    volume = Volume.from_geometry(mask, spacing_mm=(1.0, 1.0, 3.0))  # i, j, k: k is 3 mm
    assert np.array_equal(voronoi_regions(volume)[0], expected)
    with pytest.raises(GeometryMismatchError, match="spacing"):
        voronoi_regions(volume, spacing=(1.0, 1.0, 3.0), spacing_order="kji")
