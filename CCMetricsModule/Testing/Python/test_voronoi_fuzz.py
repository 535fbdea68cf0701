"""The full region map against a brute-force Algorithm 1 on many tie-rich random grids.

The oracle here is independent of the library: for every voxel and every component, the
smallest squared physical distance to the component's voxels, computed from integer index
differences (so lattice ties are exact ties whenever the spacing squares are exact), the
voxel going to the lowest id among the components at the minimum. Components come from
``scipy.ndimage.label`` with the connectivity's structuring element.
"""

import numpy as np
import pytest
from scipy import ndimage

from CCMetricsLib import voronoi, voronoi_regions

SPACINGS = [
    (1.0, 1.0, 1.0),
    (2.0, 1.0, 1.0),
    (1.0, 2.0, 3.0),
    (0.5, 0.5, 2.0),
    (3.0, 1.0, 1.0),
    (0.7, 1.3, 1.0),
    (1.0, 1.0, 2.0),
]
STRUCTURES = {
    6: ndimage.generate_binary_structure(3, 1),
    18: ndimage.generate_binary_structure(3, 2),
    26: ndimage.generate_binary_structure(3, 3),
}


def brute_force_regions(mask, spacing, connectivity):
    labels, n = ndimage.label(mask, structure=STRUCTURES[connectivity])
    grid = np.argwhere(np.ones(mask.shape, bool))
    best = np.full(grid.shape[0], 1e300)
    owner = np.zeros(grid.shape[0], dtype=np.int64)
    squares = np.asarray(spacing, float) ** 2
    for component in range(1, n + 1):
        points = np.argwhere(labels == component)
        differences = (grid[:, None, :] - points[None, :, :]).astype(np.int64) ** 2
        distance = (differences * squares).sum(axis=2).min(axis=1)
        closer = distance < best - 1e-9 * np.maximum(best, 1.0)  # ties keep the lower id
        owner[closer] = component
        best[closer] = distance[closer]
    return owner.reshape(mask.shape), n


def tie_rich_case(seed):
    """Few single voxels and small boxes on a small grid: many voxels equidistant to several."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(3, 13, 3))
    mask = np.zeros(shape, bool)
    for _ in range(int(rng.integers(2, 9))):
        corner = [int(rng.integers(0, s)) for s in shape]
        if rng.random() < 0.6:
            mask[tuple(corner)] = True
        else:
            mask[tuple(slice(c, c + int(rng.integers(1, 4))) for c in corner)] = True
    spacing = SPACINGS[int(rng.integers(0, len(SPACINGS)))]
    connectivity = (6, 18, 26)[int(rng.integers(0, 3))]
    return mask, spacing, connectivity


def mismatches(seeds):
    failures = []
    for seed in seeds:
        mask, spacing, connectivity = tie_rich_case(seed)
        expected, n_expected = brute_force_regions(mask, spacing, connectivity)
        regions, n = voronoi_regions(mask, spacing, connectivity, spacing_order="kji")
        if n != n_expected or not np.array_equal(regions, expected):
            failures.append((seed, int((regions != expected).sum())))
    return failures


def test_brute_force_oracle_breaks_a_hand_made_three_way_tie_to_the_lowest_id():
    mask = np.zeros((1, 3, 3), bool)
    mask[0, 0, 0] = mask[0, 0, 2] = mask[0, 2, 1] = True
    regions, n = brute_force_regions(mask, (1.0, 1.0, 1.0), 6)
    assert n == 3
    # voxel (0, 1, 1): 2 (squared) from ids 1 and 2, 1 from id 3 -> 3; (0, 0, 1): 1 from 1 and 2 -> 1
    assert regions[0].tolist() == [[1, 1, 2], [1, 3, 2], [3, 3, 3]]


def test_region_map_equals_brute_force_algorithm_1_on_400_tie_rich_grids():
    assert mismatches(range(400)) == []


def test_region_map_is_exact_on_the_grids_where_the_feature_transform_map_broke_the_tie_rule():
    """Seeds of tie_rich_case on which the former map (scipy feature transform plus a neighbour
    based tie fix) gave one or two voxels to a higher id than Algorithm 1."""
    assert mismatches([754, 2924, 3655, 9043, 10072, 14011, 15375, 19573]) == []


def test_tie_rich_grids_of_the_fuzz_have_ties_and_anisotropic_spacing():
    """The fuzz is only meaningful if many voxels really are equidistant to several components."""
    tied_cases = anisotropic = 0
    for seed in range(100):
        mask, spacing, connectivity = tie_rich_case(seed)
        anisotropic += len(set(spacing)) > 1
        labels, n = ndimage.label(mask, structure=STRUCTURES[connectivity])
        distances = np.stack(
            [ndimage.distance_transform_edt(labels != c, sampling=spacing) for c in range(1, n + 1)]
        )
        if n > 1:
            ordered = np.sort(distances, axis=0)
            tied_cases += bool(np.any(np.isclose(ordered[0], ordered[1]) & (ordered[0] > 0)))
    assert tied_cases >= 50 and anisotropic >= 50


@pytest.mark.parametrize("top_block, corner_block", [(4, 2), (8, 8), (16, 1), (32, 32)])
def test_region_map_is_exact_whatever_the_block_sizes(monkeypatch, top_block, corner_block):
    """The block sizes change which voxels the corner bounds decide and which get exact
    distances (and on these small grids whether the octree splits at all), never the map."""
    monkeypatch.setattr(voronoi, "TOP_BLOCK", top_block)
    monkeypatch.setattr(voronoi, "CORNER_BLOCK", corner_block)
    assert mismatches(range(1000, 1150)) == []


def test_fuzz_decides_voxels_both_by_corner_bounds_and_by_exact_distances(monkeypatch):
    """Both decision paths of the region map, and ties settled by the bounds alone, occur in the fuzz."""
    seen = {"bounds": 0, "exact": 0, "bound_ties": 0}
    choose, decide = voronoi._choose_from_bounds, voronoi._decide_voxels

    def counting_choose(lower, upper, tolerance2):
        choice, alive = choose(lower, upper, tolerance2)
        seen["bounds"] += int((choice >= 0).sum())
        if lower.shape[1] >= 2:  # the chosen (lowest) id's upper bound equals another's lower bound
            seen["bound_ties"] += int(np.isclose(upper[:, 0], lower[:, 1], rtol=1e-9, atol=0).sum())
        return choice, alive

    def counting_decide(regions, sites, starts, *args):
        seen["exact"] += starts.shape[0]
        return decide(regions, sites, starts, *args)

    monkeypatch.setattr(voronoi, "_choose_from_bounds", counting_choose)
    monkeypatch.setattr(voronoi, "_decide_voxels", counting_decide)
    assert mismatches(range(60)) == []
    assert seen["bounds"] > 10000 and seen["exact"] > 500 and seen["bound_ties"] > 50, seen


@pytest.mark.slow
def test_region_map_equals_brute_force_algorithm_1_on_20000_tie_rich_grids():
    assert mismatches(range(400, 20400)) == []
