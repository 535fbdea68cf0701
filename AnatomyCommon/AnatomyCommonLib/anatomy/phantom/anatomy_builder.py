"""Template anatomy constants and the builder base class every body region extends.

Holds the body contour, fat and muscle thickness and spine curvature tables (template mm),
the vertebra dimensions, the records of one paint operation and one lesion host, and
:class:`AnatomyBuilder`: the seeded random draws, minimum thicknesses and contour lookups the
region mixins (:mod:`.anatomy_trunk`, :mod:`.anatomy_organs`, :mod:`.anatomy_vessels`,
:mod:`.anatomy_skeleton`) share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .materials import SKIN_MM
from .rasterise import BodyPart
from .shapes import Shape

# Outer body contour of the trunk and neck: superellipse per height.
TORSO_Z = (25, 45, 90, 160, 230, 300, 380, 460, 560, 640, 690, 720, 742, 765, 860, 895)
TORSO_A = (105, 163, 182, 176, 168, 152, 158, 166, 170, 172, 180, 170, 100, 58, 55, 55)
TORSO_B = (68, 105, 122, 112, 108, 112, 116, 120, 120, 112, 100, 90, 68, 60, 58, 56)
TORSO_YC = (-5, -5, 0, 8, 10, 10, 8, 5, 2, -2, -8, -10, -12, -8, -4, -2)
TORSO_P = (2.2, 2.4, 2.6, 2.6, 2.5, 2.4, 2.3, 2.2, 2.2, 2.3, 2.8, 2.6, 2.2, 2.0, 2.0, 2.0)
_FAT_Z, _FAT_MM = (25, 100, 230, 330, 420, 500, 640, 700, 760, 900), (18, 22, 24, 25, 18, 13, 12, 10, 7, 5)
_MUSCLE_Z, _MUSCLE_MM = (25, 100, 230, 330, 420, 560, 690, 742), (12, 15, 14, 12, 10, 9, 10, 0)
#: Shoulder and neck interior is muscle; below, the trunk interior is "unknown tissue".
NECK_MUSCLE_Z = 700.0
# Antero-posterior position of the vertebral body centres (spinal curvature).
_SPINE_Y_Z = (150, 190, 250, 330, 430, 520, 620, 700, 760, 850)
_SPINE_Y = (-22, -22, -10, -12, -36, -44, -42, -25, -8, -12)

VERTEBRAE = tuple(
    [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
)


@dataclass
class Vertebra:
    name: str
    z_top: float
    z_bottom: float
    y_body: float
    rx: float
    ry: float
    canal: tuple[float, float, float]  # semi-axes x, y and centre y of the spinal canal
    arch: float
    spinous: tuple[float, float]  # length, radius
    transverse: tuple[float, float]
    disc_mm: float = 0.0  # nominal disc height below this vertebra

    @property
    def z_center(self) -> float:
        return 0.5 * (self.z_top + self.z_bottom)


def vertebra_specs(name: str) -> dict[str, Any]:
    region, number = name[0], int(name[1:])
    if region == "C":
        rx = {1: 10.0, 2: 9.0}.get(number, 9.5 + 0.5 * (number - 3) + (0.5 if number == 7 else 0.0))
        return {
            "height": {1: 13.0, 2: 18.0}.get(number, 14.0),
            "disc": 4.5,
            "rx": rx,
            "ry": 8.0 + 0.15 * number,
            "canal": {1: (13.0, 10.0), 2: (11.0, 8.5)}.get(number, (11.0, 7.5)),
            "arch": 4.5,
            "spinous": ({1: 6.0, 7: 26.0}.get(number, 15.0), 3.5),
            "transverse": (20.0 if number == 1 else 10.0, 3.5),
        }
    if region == "T":
        return {
            "height": (20, 20, 21, 21, 22, 22, 23, 23, 24, 24, 25, 26)[number - 1],
            "disc": 5.0 if number < 12 else 6.0,
            "rx": 12.5 + 0.6 * (number - 1),
            "ry": 10.0 + 5.0 * (number - 1) / 11.0,
            "canal": (8.5, 7.5),
            "arch": 5.0,
            "spinous": (26.0, 4.5),
            "transverse": (16.0, 4.5),
        }
    return {
        "height": (28, 29, 30, 30, 30)[number - 1],
        "disc": 8.0 if number < 5 else 9.0,
        "rx": 19.0 + number,
        "ry": 16.0 + 0.5 * (number - 1),
        "canal": (10.5, 8.5),
        "arch": 6.0,
        "spinous": (24.0, 5.5),
        "transverse": ((20.0, 24.0, 26.0, 24.0, 22.0)[number - 1], 4.5),
    }


@dataclass
class LesionHost:
    name: str
    weight: float
    shape: Shape | None  # None: lymph node sampled next to the vessels
    labels: frozenset[int]
    material: str
    diameter_mm: tuple[float, float]


@dataclass
class _Op:
    shape: Shape
    label: int | None
    material: str | None
    core: tuple[float, str] | None = None
    where: str | frozenset[int] = "core"


class AnatomyBuilder:
    """State and helpers shared by the body-region mixins that build one seed's anatomy.

    ``__init__`` draws the seed-dependent body size and fat, then calls ``_build`` (defined by
    :class:`.anatomy.Anatomy`, which combines the regions), filling ``ops`` (the structures in
    painting order), ``body_parts`` and the lesion hosts.
    ``min_mm`` (the coarsest voxel size) only sets minimum thicknesses of thin structures, and
    ``z_step_mm`` (the largest superior-inferior distance between two 26-adjacent voxel centres)
    the minimum gap between vertebrae; every random draw happens in a fixed order, so the
    anatomy does not otherwise depend on the grid.
    """

    def __init__(self, seed: int, sex: str, min_mm: float, z_step_mm: float | None = None):
        self.rng = np.random.default_rng([int(seed), 0])
        self.sex = sex
        self.min_mm = float(min_mm)
        self.z_step_mm = float(min_mm if z_step_mm is None else z_step_mm)
        rng = self.rng
        self.scale_xy = (float(rng.uniform(0.96, 1.04)), float(rng.uniform(0.95, 1.05)))
        self.fat_factor = float(rng.uniform(0.85, 1.2)) * (1.3 if sex == "F" else 1.0)
        self.ops: list[_Op] = []
        self.body_parts: list[BodyPart] = []
        self.hosts: list[LesionHost] = []
        self.node_paths: list[tuple[np.ndarray, np.ndarray]] = []  # vessel polylines for lymph nodes
        self._build()

    # -- small helpers
    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def jit(self, point: Sequence[float], mm: float = 3.0) -> tuple[float, float, float]:
        return tuple(float(v) + self.u(-mm, mm) for v in point)  # type: ignore[return-value]

    def size(self, semi: Sequence[float], fraction: float = 0.05) -> tuple[float, float, float]:
        factor = self.u(1 - fraction, 1 + fraction)
        return tuple(float(v) * factor for v in semi)  # type: ignore[return-value]

    def thin(self, radius: float, factor: float = 0.9) -> float:
        """Radius of a thin tube, at least ``factor`` voxels so it stays one connected piece."""
        return max(float(radius), factor * self.min_mm)

    def add(self, shape: Shape, label: int | None, material: str | None, **kwargs: Any) -> Shape:
        self.ops.append(_Op(shape, label, material, **kwargs))
        return shape

    @staticmethod
    def fat_at(z: Any, factor: float) -> Any:
        return (np.interp(z, _FAT_Z, _FAT_MM) * factor).astype(np.float32)

    @staticmethod
    def muscle_at(z: Any) -> Any:
        return np.interp(z, _MUSCLE_Z, _MUSCLE_MM).astype(np.float32)

    def torso_at(self, z: float) -> tuple[float, float, float, float]:
        """(A, B, yc, p) of the trunk contour at height z."""
        return tuple(
            float(np.interp(z, TORSO_Z, v)) for v in (self.torso_a, self.torso_b, self.torso_yc, TORSO_P)
        )  # type: ignore[return-value]

    def spine_y(self, z: float) -> float:
        return float(np.interp(z, _SPINE_Y_Z, _SPINE_Y))

    # -- rib cage outline (used by the thorax organs and by the ribs)
    def cage_at(self, z: float) -> tuple[float, float, float]:
        """Rib cage centre line at height z: (half width a, half depth b, centre y)."""
        big_a, big_b, yc, _ = self.torso_at(z)
        fat = float(self.fat_at(z, self.fat_factor))
        muscle = float(self.muscle_at(z))
        r = self.rib_radius
        a = big_a - (SKIN_MM + fat + max(muscle, 9.0) + r + 3)
        front = yc + big_b - (SKIN_MM + fat + 6 + r + 3)
        back = yc - big_b + (SKIN_MM + fat + 13)
        a = min(a, float(np.interp(z, (600, 650, 680, 712), (500, 118, 95, 64))))
        front = min(front, float(np.interp(z, (600, 650, 680, 712), (500, 86, 62, 38))))
        back = max(back, float(np.interp(z, (600, 650, 680, 712), (-500, -86, -78, -70))))
        return a, 0.5 * (front - back), 0.5 * (front + back)
