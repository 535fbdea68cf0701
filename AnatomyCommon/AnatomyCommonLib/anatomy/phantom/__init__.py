"""Synthetic whole-body CT phantoms with DAP Atlas labels and lesion instances.

Tests, demos and benchmarks of every module use these phantoms instead of patient data. The anatomy
is defined **analytically in patient RAS millimetres** (+x = patient Right, +y = Anterior,
+z = Superior), from the top of the skull (z ~ 1005 mm) to the mid-thighs (z = 0), body centred
at x = 0. Shapes are superellipsoids, elliptic/superelliptic cross-section stacks, cone-capsules
(tubes along polylines), boxes and half-spaces combined with union / intersection / difference.
Each shape is rasterised onto an arbitrary voxel grid (any spacing, any axis permutation or flip,
or an oblique direction matrix): only the voxels inside the shape's bounding box are visited, and
their RAS positions are computed from the grid's IJK->RAS matrix. Structures are painted in a
fixed order (body layers, muscles, organs, vessels, airways, bones, ribs last), so later structures
win where shapes overlap.

Consequences worth knowing:

* The same ``seed`` gives the same anatomy in physical space whatever the grid orientation. The
  presets build grids whose voxel centres are the *same physical points* for every axis-aligned
  orientation ("RAS", "LPS", "SRA", ...), so labels and CT (noise included) agree voxel for voxel
  after reorientation.
* A few thin structures get a minimum thickness that depends on the coarsest voxel size (ribs,
  vertebral arches, small vessels, the gaps between vertebrae), so that ribs stay single connected
  components and vertebrae stay separated even on the 6 mm "tiny" grid. Positions never depend on
  the grid.
* The CT is computed from a per-voxel *material* (air, lung, fat, cortical bone, ...) looked up in
  :data:`MATERIAL_HU`, plus Gaussian noise; labels keep the host anatomy where lesions are drawn.

Anatomical simplifications: no arms, no heart chambers (the heart is one label), no nasal cavity,
no gluteus medius/minimus, no duodenal/SMA detail beyond a C-loop. Sizes and positions vary
slightly with the seed (about +-4 % body width/depth, +-5 % organ size, a few mm of position).

The code is split by what it does: :mod:`.materials` (grid presets, materials, orientation
codes), :mod:`.shapes` (analytic shapes), :mod:`.rasterise` (painting shapes onto a grid),
:mod:`.anatomy_builder` and the body regions :mod:`.anatomy_trunk`, :mod:`.anatomy_organs`,
:mod:`.anatomy_vessels`, :mod:`.anatomy_skeleton` combined in :mod:`.anatomy`, :mod:`.lesions`,
and the public API in :mod:`.generator`. :mod:`.sample_case` writes a phantom case to disk.
"""

from .generator import Phantom, make_phantom, phantom_grid
from .materials import MATERIAL_HU, SIZE_PRESETS, orientation_to_direction

__all__ = [
    "MATERIAL_HU",
    "SIZE_PRESETS",
    "Phantom",
    "make_phantom",
    "orientation_to_direction",
    "phantom_grid",
]
