"""Generalized Voronoi regions of the reference's connected components (dissertation section 5.1.2).

Every voxel belongs to the region of the reference component nearest to it in physical (mm)
distance; a voxel equidistant to several components goes to the one with the lowest id
(Appendix E.1.3's deterministic tie rule). Component ids are 1..n in the order of each
component's first voxel in array (C) order, as ``scipy.ndimage.label`` numbers them.

Two ways to get regions, both exact:

- :func:`voronoi_regions` builds the full region map (the ``--regions`` output, the Slicer
  overlay) with :func:`nearest_component_map`: an octree of blocks, each filled at once when the
  distance bounds at its centre leave one possible nearest component, split otherwise, down to
  small blocks whose voxels are decided by second-order bounds from exact values at the block
  corners, or by exact distances where those bounds cannot tell (work grows with the area of the
  region borders).
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


#: Axis orders a raw-array spacing can be given in: numpy array order, SimpleITK GetSpacing() order.
SPACING_ORDERS = ("kji", "xyz")


def resolve_spacing_kji(spacing, spacing_order: str | None = None, volume_spacing_kji=None) -> np.ndarray:
    """Spacing in array axis order (k, j, i), mm.

    An anisotropic spacing given with raw arrays is ambiguous (numpy's array order (z, y, x) versus
    SimpleITK's ``GetSpacing()`` order (x, y, z)) and silently changes distances and regions if
    misread, so it needs ``spacing_order``; isotropic spacing and Volumes (``volume_spacing_kji``)
    need nothing, and a spacing given with a Volume must agree with it.
    """
    from .exceptions import GeometryMismatchError

    if spacing_order is not None and spacing_order not in SPACING_ORDERS:
        raise InvalidParameterError(
            f"spacing_order must be 'kji' (array axis order) or 'xyz' (SimpleITK GetSpacing() order), "
            f"got {spacing_order!r}."
        )
    if spacing is None:
        return np.asarray(volume_spacing_kji, dtype=float) if volume_spacing_kji is not None else np.ones(3)
    values = spacing_array(spacing)
    if spacing_order == "xyz":
        values = values[::-1].copy()
    anisotropic = not np.allclose(values, values[0], rtol=1e-6, atol=0)
    if anisotropic and spacing_order is None and volume_spacing_kji is None:
        raise InvalidParameterError(
            f"spacing={tuple(float(v) for v in values)} is anisotropic and the masks are raw arrays, so "
            "its axis order is ambiguous; pass spacing_order='kji' (one value per numpy array axis, "
            "e.g. (sz, sy, sx) for sitk.GetArrayFromImage arrays) or spacing_order='xyz' (SimpleITK "
            "GetSpacing() order), or pass AnatomyCommonLib Volumes that carry their geometry."
        )
    if volume_spacing_kji is not None and not np.allclose(values, volume_spacing_kji, atol=1e-4):
        raise GeometryMismatchError(
            f"spacing={tuple(values)} disagrees with the reference volume's spacing "
            f"{tuple(np.round(np.asarray(volume_spacing_kji, dtype=float), 4))} (array axis order); "
            "leave spacing=None."
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
    *,
    spacing_order: str | None = None,
) -> tuple[np.ndarray, int]:
    """Full generalized Voronoi region map of the reference's connected components.

    ``reference`` is a binary 3D mask or a :class:`~AnatomyCommonLib.volume.Volume` holding one
    (its spacing is used; a ``spacing`` given with it must agree). ``spacing`` in mm: a number or
    an isotropic triple, or with raw arrays an anisotropic triple together with ``spacing_order``
    ("kji": numpy array axis order, e.g. (sz, sy, sx) for ``sitk.GetArrayFromImage`` arrays;
    "xyz": SimpleITK ``GetSpacing()`` order); without it InvalidParameterError (the two readings
    give different maps). None = 1 mm. Returns (int32 region map with values 1..n, n); a reference
    without foreground gives zeros and 0. Exact to Algorithm 1, ties to the lowest component id.

    Method (:func:`nearest_component_map`): an octree of blocks over the grid; the distance to
    each component is 1-Lipschitz, so from the distances at a block's centre the components that
    can be nearest anywhere in the block are known; a block with one candidate is filled, the
    others are split down to small blocks, whose voxels are decided from exact squared distances
    at the block corners (the squared distance to a point set minus |x|^2 is concave, which gives
    lower and upper bounds that are tight to second order), and the few voxels those bounds leave
    from their candidates' exact distances (lowest id among equidistant ones). Work grows with the
    area of the region boundaries, not the volume; memory is the output plus the labels of the
    reference's bounding box. On 512x512x500 voxels with 60 lesions: see README (CC-Metrics,
    region map).
    """
    volume_spacing = None
    if hasattr(reference, "spacing_kji_mm") and hasattr(reference, "array"):
        volume_spacing = reference.spacing_kji_mm
        reference = reference.array
    spacing_kji = resolve_spacing_kji(spacing, spacing_order, volume_spacing)
    mask = as_binary_mask(reference, "reference")
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

#: Block edge (voxels, finest axis) at which blocks are decided voxel by voxel from exact values at
#: their corners (:func:`_decide_by_corners`) instead of being split further.
CORNER_BLOCK = 8

#: Top-level blocks processed together (bounds the memory of the candidate lists).
TOP_BLOCKS_PER_BATCH = 512


def nearest_component_map(
    sites: ComponentSites,
    shape: tuple[int, int, int],
    top_block: int | None = None,
    corner_block: int | None = None,
) -> np.ndarray:
    """Id of the nearest component (lowest id among equidistant ones) of every voxel of ``shape``.

    Exact for voxels outside the components (there the distance to a component's boundary voxels
    is the distance to the component); component voxels get a nearest boundary, and the caller
    overwrites them. The distance to a point set is 1-Lipschitz: a component whose distance at
    a block's centre exceeds the smallest one there by more than the block's diameter cannot be
    nearest for any voxel of the block. Blocks with one candidate are filled; the others are split
    into eight (an octree) down to blocks of ``corner_block`` voxels (:data:`CORNER_BLOCK`), whose
    voxels are decided by second-order bounds from exact values at the block corners
    (:func:`_decide_by_corners`), the few voxels those leave by exact distances (within
    :data:`TIE_RELATIVE_TOLERANCE`). ``top_block``/``corner_block`` (None: the module constants)
    change only the speed, never the result.

    Before querying a child block's candidates, bounds from the parent prune without a query:
    the parent's nearest point of each candidate gives an upper bound of its distance at the
    child's centre, the parent's distance minus the centre offset a lower bound.
    """
    top_block = TOP_BLOCK if top_block is None else int(top_block)
    corner_block = CORNER_BLOCK if corner_block is None else int(corner_block)
    shape_arr = np.asarray(shape, dtype=np.int64)
    n = sites.n_components
    if n <= 1:
        return np.full(shape, n, dtype=np.int32)
    regions = np.empty(shape, dtype=np.int32)
    # blocks about as long in mm along every axis: fewer voxels along coarsely sampled axes
    top_size = np.maximum(
        1, 2 ** np.round(np.log2(top_block * sites.spacing.min() / sites.spacing)).astype(np.int64)
    )
    top = np.stack(
        np.meshgrid(*[np.arange(0, s, b) for s, b in zip(shape, top_size, strict=True)], indexing="ij"),
        axis=-1,
    ).reshape(-1, 3)
    corner_size = np.maximum(1, top_size * corner_block // top_block)
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
                if np.all(size <= corner_size):
                    _decide_by_corners(regions, sites, starts, extent, size, blocks, components, tolerance)
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


def _decide_by_corners(regions, sites, starts, extents, size, blocks, components, tolerance) -> None:
    """Decide every voxel of small blocks from exact values at the blocks' corners.

    For a point set P, phi(x) = d(x, P)^2 and psi(x) = |x|^2 - phi(x) = max_p (2 x.p - |p|^2) is
    convex. For a voxel v = sum_i w_i c_i (trilinear weights w_i of the block's corners c_i, s(v)
    = sum_i w_i |c_i - v|^2) this gives, with g_i = c_i - p_i (p_i the nearest point of c_i):

    - lower bound: phi(v) >= sum_i w_i phi(c_i) - s(v) (Jensen on psi);
    - upper bound: phi(v) <= |v - p_i|^2 = phi(c_i) + 2 (v - c_i).g_i + |v - c_i|^2 for every i,
      hence also for their w-weighted mean, sum_i w_i phi(c_i) + s(v) + 2 sum_i w_i (v - c_i).g_i.
      The two bounds differ by 2 sum_i w_i (p_i - p(v)).(c_i - v) >= 0 (psi's gradient 2 p is
      monotone): zero when the corners share their nearest point, small when it moves little
      across the block; Lipschitz bounds from the centre are off by the block's size instead.

    Both are two matrix products per block size. A voxel is decided when the lowest id among the
    candidates not excluded by the bounds has an upper bound within the tie tolerance of every
    other candidate's lower bound (so a tie never goes to a higher id); the rare others get exact
    k-d tree distances (:func:`_decide_voxels`). Corners are shared between neighbouring blocks and
    queried once per component; whole blocks are first pruned and filled with coarser bounds.
    """
    if blocks.size == 0:
        return
    size = np.asarray(size, dtype=np.int64)
    n = sites.n_components
    n_blocks = starts.shape[0]
    # corners: offsets 0 and size along axes longer than one voxel (a one-voxel axis needs none)
    corner_offsets = np.stack(
        np.meshgrid(*[np.array([0, s]) if s > 1 else np.array([0]) for s in size], indexing="ij"), axis=-1
    ).reshape(-1, 3)
    n_corners = corner_offsets.shape[0]
    voxel_offsets = np.stack(np.meshgrid(*[np.arange(s) for s in size], indexing="ij"), axis=-1)
    voxel_offsets = voxel_offsets.reshape(-1, 3)
    n_voxels = voxel_offsets.shape[0]
    # per (voxel offset, corner): trilinear weight w_i, v - c_i (mm), |v - c_i|^2
    fraction = voxel_offsets / size
    weights = np.ones((n_voxels, n_corners))
    for axis in range(3):
        if size[axis] > 1:
            at_far = corner_offsets[:, axis] > 0
            weights *= np.where(at_far[None, :], fraction[:, axis, None], 1.0 - fraction[:, axis, None])
    offset_mm = (voxel_offsets[:, None, :] - corner_offsets[None, :, :]) * sites.spacing  # (V, C, 3)
    offset_sq = (offset_mm**2).sum(axis=2)
    spread = (weights * offset_sq).sum(axis=1)
    weighted_offsets = (2.0 * weights[:, :, None] * offset_mm).reshape(n_voxels, 3 * n_corners)
    # exact values at the corners, each (corner, component) once
    grid_shape = np.asarray(regions.shape) // size + 2
    corner_grid = (starts[blocks] // size)[:, None, :] + (corner_offsets // size)[None, :, :]
    keys = np.ravel_multi_index(tuple(corner_grid.reshape(-1, 3).T), grid_shape) * (n + 1)
    keys += np.repeat(components, n_corners)
    del corner_grid
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    del keys
    corner_mm = np.stack(np.unravel_index(unique_keys // (n + 1), grid_shape), axis=1) * size * sites.spacing
    _, nearest_point = _distances(sites, unique_keys % (n + 1), corner_mm)
    gradient = corner_mm - nearest_point  # g_i = c_i - p_i
    squared = (gradient**2).sum(axis=1)
    del corner_mm, nearest_point, unique_keys
    inverse = inverse.reshape(-1, n_corners)
    # whole blocks first: bounds valid for every voxel of the block
    corner_squared = squared[inverse]  # (pairs, C)
    block_lower = np.sqrt(np.maximum(corner_squared.min(axis=1) - spread.max(), 0.0))
    block_upper = (np.sqrt(corner_squared) + np.sqrt(offset_sq.max(axis=0))[None, :]).min(axis=1)
    smallest = np.full(n_blocks, np.inf)
    np.minimum.at(smallest, blocks, block_upper)
    keep = block_lower <= smallest[blocks] * tolerance + 1e-12
    blocks, components, inverse, corner_squared = (
        blocks[keep],
        components[keep],
        inverse[keep],
        corner_squared[keep],
    )
    count = np.bincount(blocks, minlength=n_blocks)
    single = count == 1
    if single.any():
        value = np.zeros(n_blocks, dtype=np.int64)
        value[blocks[single[blocks]]] = components[single[blocks]]
        decided = np.flatnonzero(single)
        _fill_blocks(regions, starts[decided], extents[decided], value[decided], size)
    # voxel by voxel, blocks grouped by their number of candidates k: arrays (blocks, k, voxels)
    order = np.lexsort((components, blocks, count[blocks]))
    order = order[count[blocks[order]] > 1]
    blocks, components, inverse, corner_squared = (
        blocks[order],
        components[order],
        inverse[order],
        corner_squared[order],
    )
    pair_count = count[blocks]
    tolerance2 = tolerance**2
    strides = np.array(regions.strides) // regions.itemsize
    voxel_flat = voxel_offsets @ strides
    exact_voxels, exact_pairs, exact_upper = [], [], []
    for k in np.unique(pair_count):
        rows = np.flatnonzero(pair_count == k)
        group_blocks = blocks[rows[::k]]
        ids = components[rows].reshape(-1, k)  # ascending within a block
        upper = corner_squared[rows] @ weights.T  # squared distances from here on
        lower = (upper - spread).reshape(-1, k, n_voxels)
        upper += spread
        upper += gradient[inverse[rows]].reshape(rows.size, 3 * n_corners) @ weighted_offsets.T
        upper = upper.reshape(-1, k, n_voxels)
        choice, alive = _choose_from_bounds(lower, upper, tolerance2)
        # voxels beyond the grid (blocks at its far edges) are never written
        valid = np.ones(choice.shape, dtype=bool)
        partial = np.flatnonzero(np.any(extents[group_blocks] < size, axis=1))
        valid[partial] = np.all(
            voxel_offsets[None, :, :] < extents[group_blocks[partial]][:, None, :], axis=2
        )
        flat = (starts[group_blocks] @ strides)[:, None] + voxel_flat[None, :]
        write = (choice >= 0) & valid
        if k == 2:
            winners = np.where(choice == 0, ids[:, :1], ids[:, 1:])
        else:
            winners = np.take_along_axis(ids, np.maximum(choice, 0), axis=1)
        regions.ravel()[flat[write]] = winners[write]
        del flat, write, winners
        block_index, voxel_column = np.nonzero((choice < 0) & valid)
        if block_index.size == 0:
            continue
        # the rest: the smallest single-corner upper bound |v - p_i|^2, then exact distances
        pair_rows = rows.reshape(-1, k)[block_index]  # (m, k)
        corner_rows = inverse[pair_rows]  # (m, k, C)
        tangent = squared[corner_rows] + offset_sq[voxel_column][:, None, :]
        tangent += 2.0 * np.einsum("mkcx,mcx->mkc", gradient[corner_rows], offset_mm[voxel_column])
        refined = np.minimum(upper[block_index, :, voxel_column], tangent.min(axis=2))
        still_alive = alive[block_index, :, voxel_column]
        lower_left = np.where(still_alive, lower[block_index, :, voxel_column], np.inf)
        choice_left, alive_left = _choose_from_bounds(lower_left[:, :, None], refined[:, :, None], tolerance2)
        choice_left, alive_left = choice_left[:, 0], alive_left[:, :, 0] & still_alive
        voxel_coordinates = starts[group_blocks[block_index]] + voxel_offsets[voxel_column]
        done = choice_left >= 0
        regions.ravel()[np.ravel_multi_index(tuple(voxel_coordinates[done].T), regions.shape)] = ids[
            block_index[done], choice_left[done]
        ]
        voxel, candidate = np.nonzero(alive_left & ~done[:, None])
        if voxel.size:
            exact_voxels.append(voxel_coordinates[voxel])
            exact_pairs.append(ids[block_index[voxel], candidate])
            exact_upper.append(np.sqrt(np.maximum(refined[voxel, candidate], 0.0)))
    if exact_voxels:
        voxels = np.concatenate(exact_voxels)
        flat = np.ravel_multi_index(tuple(voxels.T), regions.shape)
        unique_flat, voxel_index = np.unique(flat, return_inverse=True)
        voxel_starts = np.stack(np.unravel_index(unique_flat, regions.shape), axis=1)
        _decide_voxels(
            regions,
            sites,
            voxel_starts,
            voxel_index,
            np.concatenate(exact_pairs),
            np.concatenate(exact_upper),
            tolerance,
        )


def _choose_from_bounds(lower: np.ndarray, upper: np.ndarray, tolerance2: float):
    """Nearest candidate from bounds of squared distances, arrays (m, k, V), candidates by ascending id.

    Returns (choice (m, V): index of the winner along k, -1 where the bounds cannot tell; alive
    (m, k, V): the candidates the bounds do not exclude). The winner is the lowest id among the
    candidates whose lower bound is within the tie tolerance of the smallest upper bound, when its
    upper bound is within the tolerance of every other such candidate's lower bound: then it is
    nearest or tied with the nearest, and every lower id is farther beyond the tolerance.
    """
    if lower.shape[1] == 2:  # the common case, without the general bookkeeping
        first_wins = upper[:, 0] <= lower[:, 1] * tolerance2 + 1e-12
        second_wins = lower[:, 0] > upper[:, 1] * tolerance2 + 1e-12
        choice = np.where(first_wins, 0, np.where(second_wins, 1, -1))
        alive = np.stack([~second_wins, ~first_wins], axis=1)
        return choice, alive
    alive = lower <= upper.min(axis=1, keepdims=True) * tolerance2 + 1e-12
    first = np.argmax(alive, axis=1)[:, None, :]  # the lowest id among them (ids ascend)
    first_upper = np.take_along_axis(upper, first, axis=1)[:, 0, :]
    others = np.where(alive, lower, np.inf)
    np.put_along_axis(others, first, np.inf, axis=1)
    sure = first_upper <= others.min(axis=1) * tolerance2 + 1e-12
    return np.where(sure, first[:, 0, :], -1), alive


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
