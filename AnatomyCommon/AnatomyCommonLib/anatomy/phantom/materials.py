"""Grid presets, tissue materials with their Hounsfield units, and axis-code orientations.

:data:`SIZE_PRESETS` are the phantom grids (tiny 6 mm ... realistic 512 x 512 x 510), given per
anatomical axis; :data:`MATERIAL_HU` is the mean CT value of every material the CT is computed from;
:func:`orientation_to_direction` turns a code such as "LPS" into a direction matrix.
"""

from __future__ import annotations

import numpy as np

from .presets import FOV_CENTER_RAS, SIZE_PRESETS  # noqa: F401  (re-exported)

_MATERIAL_TABLE: tuple[tuple[str, float], ...] = (
    ("air", -1000.0),  # outside the body, airways, bowel and stomach gas
    ("lung", -850.0),
    ("fat", -100.0),
    ("muscle", 50.0),
    ("skin", 30.0),
    ("visceral tissue", -40.0),  # "unknown tissue": mesentery, mediastinum, face
    ("liver", 60.0),
    ("spleen", 50.0),
    ("kidney cortex", 40.0),
    ("kidney medulla", 28.0),
    ("blood", 40.0),  # heart, aorta, veins (non-contrast)
    ("stomach content", 20.0),
    ("small bowel", 30.0),
    ("colon content", 10.0),
    ("urine", 5.0),
    ("brain", 35.0),
    ("eyeball", 10.0),
    ("cortical bone", 1000.0),
    ("dense cortical bone", 1200.0),  # femoral shaft
    ("thin cortical bone", 750.0),  # vertebrae, ribs, sternum
    ("cancellous bone", 250.0),
    ("skull", 1000.0),
    ("cartilage", 120.0),
    ("intervertebral disc", 80.0),
    ("spinal canal", 25.0),
    ("pancreas", 45.0),
    ("bile", 10.0),
    ("adrenal", 30.0),
    ("thyroid", 110.0),
    ("prostate", 40.0),
    ("testis", 35.0),
    ("uterus", 55.0),
    ("ovary", 35.0),
    ("breast", -50.0),
    ("esophagus", 40.0),
    ("lesion liver", 20.0),  # hypodense metastasis
    ("lesion lung", 40.0),  # soft-tissue nodule
    ("lesion bone", 120.0),  # lytic
    ("lesion lymph node", 40.0),
    ("lesion kidney", 10.0),  # cyst-like
    ("lesion spleen", 25.0),
)

#: Mean Hounsfield units of every material (before noise).
MATERIAL_HU: dict[str, float] = dict(_MATERIAL_TABLE)
MATERIAL_INDEX: dict[str, int] = {name: index for index, (name, _) in enumerate(_MATERIAL_TABLE)}
HU_LOOKUP = np.array([hu for _, hu in _MATERIAL_TABLE], dtype=np.float32)

SKIN_MM = 2.5
#: Coarsest voxel size (mm) at which ribs and vertebrae are guaranteed to stay separate pieces.
MAX_FAITHFUL_SPACING_MM = 8.0
SUBCUTANEOUS_LABELS = frozenset({0, 42, 3})  # air, skin, subcutaneous fat

_AXIS_LETTERS: dict[str, tuple[int, float]] = {
    "R": (0, 1.0),
    "L": (0, -1.0),
    "A": (1, 1.0),
    "P": (1, -1.0),
    "S": (2, 1.0),
    "I": (2, -1.0),
}


def orientation_to_direction(code: str) -> np.ndarray:
    """3x3 direction matrix (columns = RAS unit vectors of i, j, k) of an axis code like "LPS".

    Each letter names the anatomical direction the voxel index **increases towards** (the
    NIfTI/nibabel "axcodes" and DICOM convention): "RAS" means i grows towards patient Right,
    j towards Anterior, k towards Superior (the identity); "LPS" means i grows towards Left,
    j towards Posterior, k towards Superior (ITK's/DICOM's default patient frame). Beware that
    ITK's ``SpatialOrientation`` enum names orientations by where axes come **from**, so ITK's
    "RAI" is this function's "LPS".
    """
    if not isinstance(code, str) or len(code) != 3:
        raise ValueError(
            f"Orientation must be a 3-letter code such as 'RAS' or 'LPS' (one of R/L, A/P, S/I "
            f"per voxel axis), got {code!r}."
        )
    direction = np.zeros((3, 3))
    used: set[int] = set()
    for column, letter in enumerate(code.upper()):
        if letter not in _AXIS_LETTERS:
            raise ValueError(
                f"Orientation {code!r} has the letter {letter!r}; use only R, L, A, P, S, I "
                "(one from each pair), e.g. 'RAS', 'LPS', 'LAI', 'SRA'."
            )
        axis, sign = _AXIS_LETTERS[letter]
        if axis in used:
            raise ValueError(
                f"Orientation {code!r} names the same anatomical axis twice; use one letter from "
                "each pair R/L, A/P and S/I."
            )
        used.add(axis)
        direction[axis, column] = sign
    return direction
