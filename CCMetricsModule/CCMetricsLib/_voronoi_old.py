"""Generalized Voronoi regions of the reference's connected components (dissertation section 5.1.2).

Every voxel belongs to the region of the reference component nearest to it in physical (mm)
distance; a voxel equidistant to several components goes to the one with the lowest id
(Appendix E.1.3's deterministic tie rule). Component ids are 1..n in the order of each
component's first voxel in array (C) order, as ``scipy.ndimage.label`` numbers them.

Two ways to get regions, both exact:

- :func:`voronoi_regions` builds the full region map (the ``--regions`` output, the Slicer
  overlay) with :func:`nearest_component_map`: an octree of blocks, each filled at once when the
  distance bounds at its centre leave one possible nearest component, split otherwise, down to
  single voxels decided by exact distances (work grows with the area of the region borders).
- :class:`ComponentSites` answers "which region is this voxel in" for a few voxels only (the
  predicted ones). The nearest voxel of a set seen from outside it is always one of its
  6-neighbourhood boundary voxels (an interior voxel has a neighbour one step closer), so a k-d
  tree over the boundary voxels gives exact nearest components at a cost that grows with the
  number of boundary and query voxels, not with the grid. This is what the metrics use.

:func:`voronoi_regions_per_component_edt` is the literal Algorithm 1 (one distance transform per
component, argmin), kept as the independent definition the tests compare against.

Distances that agree to :data:`TIE_RELATIVE_TOLERANCE` are equidistant: on the voxel lattice such
distances are equal in exact arithmetic, but non-integer spacings round differently in the last bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .exceptions import ImageDimensionError, InvalidParameterError, NonBinaryMaskError

#: Connectivities accepted for the reference's connected components.
CONNECTIVITIES = (6, 18, 26)

#: Two distances closer than this (relative) count as a tie between components.
TIE_RELATIVE_TOLERANCE = 1e-9

#: Flat 6-neighbourhood offsets in (k, j, i) order.
NEIGHBOURS_6_KJI = np.array(
    [[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], dtype=np.int64
)


def check_connectivity(connectivity: int) -> int:
    if int(connectivity) not in CONNECTIVITIES:
        raise InvalidParameterError(
            f"connectivity must be 6, 18 or 26 (faces, +edges, +corners), got {connectivity!r}."
        )
    return int(connectivity)


def spacing_array(spacing: float | Sequence[float] | None, ndim: int = 3) -> np.ndarray:
    """Spacing per array axis (mm) as a float64 array; None means 1 mm, a number means isotropic."""
    if spacing is None:
        return np.ones(ndim)
    values = np.atleast_1d(np.asarray(spacing, dtype=float))
    if values.size == 1:
        values = np.repeat(values, ndim)
    if values.size != ndim or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise InvalidParameterError(
            f"spacing must be one positive value per array axis ({ndim} values, array axis order), "
            f"got {spacing!r}."
        )
    return values


def as_binary_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """A boolean 3D view or copy of a 0/1 mask; NonBinaryMaskError for other values."""
    array = np.asarray(mask)
    if array.ndim != 3:
        raise ImageDimensionError(f"{name} must be a 3D array, got shape {array.shape}.")
    if array.dtype == bool:
        return array
    if array.dtype == np.uint8 and array.flags.c_contiguous and array.max(initial=0) <= 1:
        return array.view(bool)
    values = array[array != 0]
    if values.size and not np.all(values == 1):
        extra = sorted({v.item() for v in np.unique(values)} - {1})[:5]
        raise NonBinaryMaskError(
            f"{name} holds values other than 0 and 1 ({extra}); pass label=N to evaluate one label "
            "of a label map, or evaluate all labels one by one."
        )
    return array != 0


def label_components(mask: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Connected components of a binary 3D mask, numbered 1..n in C order of their first voxel.

    cc3d does the labelling (O(N), about 4 ms per million voxels); the result is renumbered so
    that ids do not depend on cc3d's scan order. Returns (uint16 or uint32 labels, n).
    """
    import cc3d

    connectivity = check_connectivity(connectivity)
    binary = np.ascontiguousarray(mask, dtype=bool)
    labels = cc3d.connected_components(binary.view(np.uint8), connectivity=connectivity)
    n = int(labels.max(initial=0))
    if n > 1:
        flat = labels.ravel()
        positions = np.flatnonzero(flat)
        _, first = np.unique(flat[positions], return_index=True)  # label order, first C position
        order = np.argsort(first, kind="stable")  # order[new - 1] = old - 1
        if not np.array_equal(order, np.arange(n)):
            lookup = np.zeros(n + 1, dtype=labels.dtype)
            lookup[order + 1] = np.arange(1, n + 1, dtype=labels.dtype)
            labels = lookup[labels]
    return labels, n


def boundary_flags_6(values_flat: np.ndarray, positions: np.ndarray, own: np.ndarray, strides) -> np.ndarray:
    """True where a voxel has a 6-neighbour whose value differs from ``own``.

    ``values_flat`` is a raveled C-order array with a one-voxel frame around everything of
    interest (so ``positions +- stride`` never leaves it); O(len(positions)).
    """
    flags = np.zeros(positions.shape, dtype=bool)
    for stride in strides:
        for step in (-int(stride), int(stride)):
            flags |= values_flat[positions + step] != own
    return flags


class ComponentSites:
    """Boundary voxels of every reference component, with exact nearest-component queries.

    ``boundary_kji`` (B, 3) are voxel indices, ``component_ids`` (B,) their component (1..n).
    Memory O(B); building the k-d tree O(B log B); a query O(log B) per voxel.
    """

    def __init__(
        self, boundary_kji: np.ndarray, component_ids: np.ndarray, spacing_kji_mm, n_components: int
    ):
        order = np.argsort(component_ids, kind="stable")
        self.spacing = spacing_array(spacing_kji_mm)
        self.component_ids = np.asarray(component_ids)[order].astype(np.int64)
        self.points_mm = np.asarray(boundary_kji, dtype=np.float64)[order] * self.spacing
        self.n_components = int(n_components)
        edges = np.searchsorted(self.component_ids, np.arange(1, self.n_components + 2))
        self._starts = edges[:-1]
        self._stops = edges[1:]
        self._tree = None
        self._component_trees: dict[tuple[int, bool], object] = {}

    @property
    def tree(self):
        from scipy.spatial import cKDTree

        if self._tree is None:
            self._tree = cKDTree(self.points_mm, leafsize=32, balanced_tree=False)
        return self._tree

    def component_points_mm(self, component_id: int) -> np.ndarray:
        return self.points_mm[self._starts[component_id - 1] : self._stops[component_id - 1]]

    def component_tree(self, component_id: int, far: bool = False):
        """k-d tree of one component's boundary voxels (mm); ``far=True``: larger leaves, about
        20 % faster for queries far from the component (the full region map)."""
        from scipy.spatial import cKDTree

        key = (component_id, far)
        tree = self._component_trees.get(key)
        if tree is None:
            tree = cKDTree(
                self.component_points_mm(component_id), leafsize=64 if far else 32, balanced_tree=False
            )
            self._component_trees[key] = tree
        return tree

    def nearest_component(self, points_kji: np.ndarray) -> np.ndarray:
        """Id of the nearest component of each voxel (lowest id among equidistant ones).

        Exact: all boundary voxels within the tie tolerance of the nearest distance are
        considered, however many there are.
        """
        points = np.asarray(points_kji, dtype=np.float64).reshape(-1, 3) * self.spacing
        if points.shape[0] == 0 or self.n_components == 0:
            return np.zeros(points.shape[0], dtype=np.int64)
        if self.n_components == 1:
            return np.ones(points.shape[0], dtype=np.int64)
        k = min(8, self.points_mm.shape[0])
        distances, indices = self.tree.query(points, k=k, workers=-1 if len(points) > 20000 else 1)
        distances = distances.reshape(len(points), k)
        indices = indices.reshape(len(points), k)
        limit = distances[:, 0] * (1.0 + TIE_RELATIVE_TOLERANCE) + 1e-12
        within = distances <= limit[:, None]
        candidates = np.where(within, self.component_ids[indices], np.iinfo(np.int64).max)
        nearest = candidates.min(axis=1)
        crowded = np.flatnonzero(within[:, -1]) if k < self.points_mm.shape[0] else np.empty(0, int)
        if crowded.size:  # k equidistant boundary voxels or more: look at all of them
            balls = self.tree.query_ball_point(points[crowded], r=limit[crowded])
            for row, members in zip(crowded, balls, strict=True):
                nearest[row] = self.component_ids[np.asarray(members, dtype=np.int64)].min()
        return nearest


def component_sites(
    labels: np.ndarray, n_components: int, spacing_kji_mm=None, origin_kji=(0, 0, 0), *, framed: bool = False
) -> ComponentSites:
    """:class:`ComponentSites` of a label array (boundary = a 6-neighbour outside the component or grid).

    ``origin_kji`` is the grid index of ``labels[0, 0, 0]`` (when ``labels`` is a crop of a larger
    grid); ``framed=True`` says that ``labels`` already has a one-voxel zero frame (saves a copy).
    """
    padded = labels if framed else np.pad(labels, 1)
    origin = np.asarray(origin_kji) - (0 if framed else 1)
    strides = np.array(padded.strides) // padded.itemsize
    flat = padded.ravel()
    positions = np.flatnonzero(flat)
    own = flat[positions]
    boundary = boundary_flags_6(flat, positions, own, strides)
    kji = np.stack(np.unravel_index(positions[boundary], padded.shape), axis=1) + origin
    return ComponentSites(kji, own[boundary], spacing_kji_mm, n_components)


def voronoi_regions(
    reference: np.ndarray,
    spacing: float | Sequence[float] | None = None,
    connectivity: int = 26,
) -> tuple[np.ndarray, int]:
    """Full generalized Voronoi region map of the reference's connected components.

    ``reference`` is a binary 3D mask (or a :class:`~AnatomyCommonLib.volume.Volume` holding one,
    whose spacing is used when ``spacing`` is None); ``spacing`` is one value per array axis in
    array axis order (mm; None = 1). Returns (int32 region map with values 1..n, n); a reference
    without foreground gives zeros and 0. Exact to Algorithm 1, ties to the lowest component id.

    Method (:func:`nearest_component_map`): an octree of blocks over the grid; the distance to
    each component is 1-Lipschitz, so from the distances at a block's centre the components that
    can be nearest anywhere in the block are known; a block with one candidate is filled, the
    others are split, down to single voxels, whose candidates' exact distances decide (lowest id
    among equidistant ones). Work grows with the area of the region boundaries, not the volume;
    memory is the output plus the labels of the reference's bounding box. On 512x512x500 voxels
    with 60 lesions: see README (CC-Metrics, region map).
    """
    if hasattr(reference, "spacing_kji_mm") and hasattr(reference, "array"):
        spacing = reference.spacing_kji_mm if spacing is None else spacing
        reference = reference.array
    mask = as_binary_mask(reference, "reference")
    spacing_kji = spacing_array(spacing)
    connectivity = check_connectivity(connectivity)
    flat = np.flatnonzero(mask)
    if flat.size == 0:
        return np.zeros(mask.shape, dtype=np.int32), 0
    coords = np.unravel_index(flat, mask.shape)
    lo = np.array([c.min() for c in coords]) - 1
    hi = np.array([c.max() for c in coords]) + 2
    crop = np.zeros(tuple(hi - lo), dtype=bool)
    crop[tuple(c - o for c, o in zip(coords, lo, strict=True))] = True
    del coords, flat
    labels, n = label_components(crop, connectivity)
    del crop
    if n == 1:
        return np.ones(mask.shape, dtype=np.int32), 1
    sites = component_sites(labels, n, spacing_kji, origin_kji=lo, framed=True)
    regions = nearest_component_map(sites, mask.shape)
    inside = tuple(slice(max(a, 0), min(b, s)) for a, b, s in zip(lo, hi, mask.shape, strict=True))
    local = tuple(slice(w.start - o, w.stop - o) for w, o in zip(inside, lo, strict=True))
    for k in range(inside[0].start, inside[0].stop):  # component voxels keep their own id
        own = labels[k - lo[0], local[1], local[2]]
        target = regions[k, inside[1], inside[2]]
        np.copyto(target, own, where=own != 0, casting="unsafe")
    return regions, n


#: Block edge (voxels) of the octree's top level along the finest axis (:func:`nearest_component_map`).
TOP_BLOCK = 32

#: Top-level blocks processed together (bounds the memory of the candidate lists).
TOP_BLOCKS_PER_BATCH = 512


def nearest_component_map(sites: ComponentSites, shape: tuple[int, int, int]) -> np.ndarray:
    """Id of the nearest component (lowest id among equidistant ones) of every voxel of ``shape``.

    Exact for voxels outside the components (there the distance to a component's boundary voxels
    is the distance to the component); component voxels get a nearest boundary, and the caller
    overwrites them. The distance to a point set is 1-Lipschitz: a component whose distance at
    a block's centre exceeds the smallest one there by more than the block's diameter cannot be
    nearest for any voxel of the block. Blocks with one candidate are filled; the others are split
    into eight (an octree) down to single voxels, whose exact distances (within
    :data:`TIE_RELATIVE_TOLERANCE`) decide.

    Before querying a child block's candidates, bounds from the parent prune without a query:
    the parent's nearest point of each candidate gives an upper bound of its distance at the
    child's centre, the parent's distance minus the centre offset a lower bound.
    """
    shape_arr = np.asarray(shape, dtype=np.int64)
    n = sites.n_components
    if n <= 1:
        return np.full(shape, n, dtype=np.int32)
    regions = np.empty(shape, dtype=np.int32)
    # blocks about as long in mm along every axis: fewer voxels along coarsely sampled axes
    top_size = np.maximum(
        1, 2 ** np.round(np.log2(TOP_BLOCK * sites.spacing.min() / sites.spacing)).astype(np.int64)
    )
    top = np.stack(
        np.meshgrid(*[np.arange(0, s, b) for s, b in zip(shape, top_size, strict=True)], indexing="ij"),
        axis=-1,
    ).reshape(-1, 3)
    tolerance = 1.0 + TIE_RELATIVE_TOLERANCE
    # per component: its bounding box (mm) and one of its points, for bounds at the top level
    box_lo = np.array([sites.component_points_mm(c).min(axis=0) for c in range(1, n + 1)])
    box_hi = np.array([sites.component_points_mm(c).max(axis=0) for c in range(1, n + 1)])
    anchor = np.array(
        [
            sites.component_points_mm(c)[
                sites.component_tree(c, far=True).query((box_lo[c - 1] + box_hi[c - 1]) / 2)[1]
            ]
            for c in range(1, n + 1)
        ]
    )
    for batch in range(0, top.shape[0], TOP_BLOCKS_PER_BATCH):
        starts = top[batch : batch + TOP_BLOCKS_PER_BATCH]
        blocks = np.repeat(np.arange(starts.shape[0]), n)
        components = np.tile(np.arange(1, n + 1), starts.shape[0])
        parent_distance = parent_point = parent_centre = None
        size = top_size.copy()
        while blocks.size:
            extent = np.minimum(size, shape_arr - starts)
            centres_mm = (starts + (extent - 1) / 2.0) * sites.spacing
            radius = 0.5 * np.linalg.norm((extent - 1) * sites.spacing, axis=1)
            leaf = bool(np.all(size == 1))
            slack = 1e-9 * (not leaf) + 1e-12
            if n > 1:  # prune with bounds, no query: from the parent, or (top) from the boxes
                centre = centres_mm[blocks]
                if parent_distance is None:
                    gap = np.maximum(box_lo[components - 1] - centre, 0) + np.maximum(
                        centre - box_hi[components - 1], 0
                    )
                    lower = np.linalg.norm(gap, axis=1)
                    upper = np.linalg.norm(centre - anchor[components - 1], axis=1)
                else:
                    upper = np.linalg.norm(centre - parent_point, axis=1)
                    lower = parent_distance - np.linalg.norm(centre - parent_centre, axis=1)
                smallest_upper = np.full(starts.shape[0], np.inf)
                np.minimum.at(smallest_upper, blocks, upper)
                keep = lower <= (smallest_upper[blocks] + 2.0 * radius[blocks]) * tolerance + slack
                blocks, components, upper = blocks[keep], components[keep], upper[keep]
                count = np.bincount(blocks, minlength=starts.shape[0])
                single = count == 1
                if single.any():
                    lone = single[blocks]
                    decided = np.flatnonzero(single)
                    value = np.zeros(starts.shape[0], dtype=np.int64)
                    value[blocks[lone]] = components[lone]
                    _fill_blocks(regions, starts[decided], extent[decided], value[decided], size)
                    blocks, components, upper = blocks[~lone], components[~lone], upper[~lone]
                if leaf:
                    _decide_voxels(regions, sites, starts, blocks, components, upper, tolerance)
                    break
            distance, point = _distances(sites, components, centres_mm[blocks])
            nearest = np.full(starts.shape[0], np.inf)
            np.minimum.at(nearest, blocks, distance)
            keep = distance <= (nearest[blocks] + 2.0 * radius[blocks]) * tolerance + slack
            blocks, components, distance, point = blocks[keep], components[keep], distance[keep], point[keep]
            count = np.bincount(blocks, minlength=starts.shape[0])
            lowest = np.full(starts.shape[0], n + 1, dtype=np.int64)
            np.minimum.at(lowest, blocks, components)
            decided = (count == 1) | ((count > 0) & leaf)
            _fill_blocks(regions, starts[decided], extent[decided], lowest[decided], size)
            if leaf:
                break
            split = np.flatnonzero(count > 1)
            # split the axes longer than half the longest (in mm) into two
            length_mm = np.where(size > 1, size * sites.spacing, 0.0)
            halve = (size > 1) & (2 * length_mm > length_mm.max())
            child_size = np.where(halve, size // 2, size)
            offsets = np.stack(
                np.meshgrid(*[np.arange(2 if h else 1) for h in halve], indexing="ij"), axis=-1
            ).reshape(-1, 3)
            n_children = offsets.shape[0]
            remap = np.full(starts.shape[0], -1, dtype=np.int64)
            remap[split] = np.arange(split.size)
            children = (starts[split][:, None, :] + offsets[None] * child_size).reshape(-1, 3)
            valid = np.all(children < shape_arr, axis=1)
            member = remap[blocks] >= 0
            pair_parent = remap[blocks[member]]
            # every surviving (parent, component) pair goes to each of the parent's valid children
            child_index = np.full(children.shape[0], -1, dtype=np.int64)
            child_index[valid] = np.arange(int(valid.sum()))
            slots = pair_parent[:, None] * n_children + np.arange(n_children)[None, :]
            pair_child = child_index[slots]
            ok = pair_child >= 0
            rows = np.broadcast_to(np.arange(pair_parent.size)[:, None], slots.shape)[ok]
            parent_distance = distance[member][rows]
            parent_point = point[member][rows]
            parent_centre = centres_mm[blocks[member]][rows]
            blocks = pair_child[ok]
            components = components[member][rows]
            starts = children[valid]
            size = child_size
    return regions


def _distances(sites: ComponentSites, components: np.ndarray, points_mm: np.ndarray):
    """Exact distance (mm) from each point to its component, and that component's nearest point."""
    distance = np.empty(components.size)
    nearest = np.empty((components.size, 3))
    order = np.argsort(components, kind="stable")
    edges = np.searchsorted(components[order], np.arange(1, sites.n_components + 2))
    for component in range(1, sites.n_components + 1):
        rows = order[edges[component - 1] : edges[component]]
        if rows.size:
            distance[rows], index = sites.component_tree(component, far=True).query(
                points_mm[rows], k=1, workers=-1 if rows.size > 20000 else 1
            )
            nearest[rows] = sites.component_points_mm(component)[index]
    return distance, nearest


def _decide_voxels(regions, sites, starts, blocks, components, upper, tolerance) -> None:
    """Single voxels with several candidate components (pairs ``blocks``/``components``).

    Every candidate but the one with the smallest upper bound is queried; that one wins without a
    query when all others are farther than its bound (beyond the tie tolerance, so no tie);
    otherwise it is queried too and the lowest id among the equidistant wins.
    """
    if blocks.size == 0:
        return
    n_blocks = starts.shape[0]
    centres_mm = starts * sites.spacing
    order = np.lexsort((components, upper, blocks))
    ordered = blocks[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    guess, others = order[first], order[~first]
    exact = np.full(blocks.size, np.nan)
    exact[others] = _distances(sites, components[others], centres_mm[blocks[others]])[0]
    others_nearest = np.full(n_blocks, np.inf)
    np.minimum.at(others_nearest, blocks[others], exact[others])
    sure = others_nearest[blocks[guess]] > upper[guess] * tolerance + 1e-12
    winner = np.zeros(n_blocks, dtype=np.int64)
    winner[blocks[guess[sure]]] = components[guess[sure]]
    unsure = guess[~sure]
    if unsure.size:
        exact[unsure] = _distances(sites, components[unsure], centres_mm[blocks[unsure]])[0]
        open_block = np.zeros(n_blocks, dtype=bool)
        open_block[blocks[unsure]] = True
        rows = np.flatnonzero(open_block[blocks])
        nearest = np.full(n_blocks, np.inf)
        np.minimum.at(nearest, blocks[rows], exact[rows])
        tied = rows[exact[rows] <= nearest[blocks[rows]] * tolerance + 1e-12]
        lowest = np.full(n_blocks, np.iinfo(np.int64).max)
        np.minimum.at(lowest, blocks[tied], components[tied])
        winner[open_block] = lowest[open_block]
    decided = np.flatnonzero(winner > 0)
    regions.ravel()[np.ravel_multi_index(tuple(starts[decided].T), regions.shape)] = winner[decided]


def _fill_blocks(regions: np.ndarray, starts: np.ndarray, extents: np.ndarray, values: np.ndarray, size):
    """Write one value into each block (slices for large blocks, flat indices for small ones)."""
    if starts.shape[0] == 0:
        return
    if np.prod(size) >= 256:
        for (k, j, i), (dk, dj, di), value in zip(starts, extents, values, strict=True):
            regions[k : k + dk, j : j + dj, i : i + di] = value
        return
    grid = np.stack(np.meshgrid(*[np.arange(int(b)) for b in size], indexing="ij"), axis=-1).reshape(-1, 3)
    voxels = starts[:, None, :] + grid[None]
    inside = np.all(grid[None] < extents[:, None, :], axis=2)
    flat = np.ravel_multi_index(tuple(voxels[inside].T), regions.shape)
    regions.ravel()[flat] = np.broadcast_to(values[:, None], inside.shape)[inside]


def voronoi_regions_per_component_edt(
    reference: np.ndarray,
    spacing: float | Sequence[float] | None = None,
    connectivity: int = 26,
) -> tuple[np.ndarray, int]:
    """Algorithm 1 of the dissertation: one distance transform per component, voxel-wise argmin.

    O(n N) time; the slow, obviously-correct definition used to check :func:`voronoi_regions`.
    """
    from scipy import ndimage

    mask = as_binary_mask(reference, "reference")
    spacing_kji = spacing_array(spacing)
    labels, n = label_components(mask, connectivity)
    regions = np.zeros(mask.shape, dtype=np.int32)
    best = np.full(mask.shape, np.inf)
    for component in range(1, n + 1):
        distance = ndimage.distance_transform_edt(labels != component, sampling=spacing_kji)
        closer = distance < best * (1.0 - TIE_RELATIVE_TOLERANCE) - 1e-12  # ties keep the lower id
        regions[closer] = component
        best[closer] = distance[closer]
    return regions, n
