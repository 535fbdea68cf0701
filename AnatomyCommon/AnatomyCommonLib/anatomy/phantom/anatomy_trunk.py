"""Trunk anatomy: body contour and layers, the spine's layout, the large muscles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..label_schema import label_id
from .anatomy_builder import (
    NECK_MUSCLE_Z,
    TORSO_A,
    TORSO_B,
    TORSO_P,
    TORSO_YC,
    TORSO_Z,
    VERTEBRAE,
    AnatomyBuilder,
    Vertebra,
    vertebra_specs,
)
from .materials import MATERIAL_INDEX
from .rasterise import BodyPart
from .shapes import Capsule, Ellipsoid, Tube, ZStack, rotation_matrix


class TrunkAnatomy(AnatomyBuilder):
    """Body parts (skin, fat, muscle wall, core), vertebra layout and muscles."""

    def _body(self) -> None:
        ff = self.fat_factor
        self.torso_a = np.array(TORSO_A, dtype=float) * self.u(0.98, 1.02)
        self.torso_b = np.array(TORSO_B, dtype=float) * self.u(0.98, 1.02)
        self.torso_yc = np.array(TORSO_YC, dtype=float)
        torso = ZStack(TORSO_Z, self.torso_a, self.torso_b, 0.0, self.torso_yc, TORSO_P)
        muscle_label, visceral_label = np.uint8(2), np.uint8(1)
        muscle_mat, visceral_mat = (
            np.uint8(MATERIAL_INDEX["muscle"]),
            np.uint8(MATERIAL_INDEX["visceral tissue"]),
        )

        def torso_core_label(z: Any) -> Any:
            return np.where(z > NECK_MUSCLE_Z, muscle_label, visceral_label)

        def torso_core_material(z: Any) -> Any:
            return np.where(z > NECK_MUSCLE_Z, muscle_mat, visceral_mat)

        def const(value: float) -> Callable[[Any], Any]:
            return lambda z: np.float32(value)

        def const_u8(value: int) -> Callable[[Any], Any]:
            return lambda z: np.uint8(value)

        parts = [
            BodyPart(
                torso, lambda z: self.fat_at(z, ff), self.muscle_at, torso_core_label, torso_core_material
            ),
            # cranium and face
            BodyPart(
                Ellipsoid(self.jit((0, -4, 918), 2), self.size((80, 99, 88), 0.03)),
                const(4 * ff),
                const(0.0),
                const_u8(1),
                const_u8(MATERIAL_INDEX["visceral tissue"]),
            ),
            BodyPart(
                Ellipsoid((0, 28, 848), (60, 72, 68)),
                const(6 * ff),
                const(4.0),
                const_u8(1),
                const_u8(MATERIAL_INDEX["muscle"]),
            ),
        ]
        for side in (-1, 1):  # thighs: muscle inside
            parts.append(
                BodyPart(
                    Capsule((side * 90, 8, 115), (side * 97, 14, -40), 80 * self.u(0.97, 1.03), 70),
                    const(12 * ff),
                    const(0.0),
                    const_u8(2),
                    const_u8(MATERIAL_INDEX["muscle"]),
                )
            )
        if self.sex == "M":
            parts.append(
                BodyPart(
                    Ellipsoid((0, 62, 30), (38, 30, 36)),
                    const(3.0),
                    const(0.0),
                    const_u8(1),
                    const_u8(MATERIAL_INDEX["visceral tissue"]),
                )
            )
        else:
            for side, lab in ((-1, label_id("breast left")), (1, label_id("breast right"))):
                parts.append(
                    BodyPart(
                        Ellipsoid(
                            self.jit((side * 80, 98, 560)),
                            self.size((66, 40, 60), 0.08),
                            rotation_matrix("z", side * 15),
                        ),
                        const(5.0),
                        const(0.0),
                        const_u8(lab),
                        const_u8(MATERIAL_INDEX["breast"]),
                    )
                )
        self.body_parts = parts

    def _spine_layout(self) -> None:
        """Vertebrae C1..L5 stacked from the skull base down, plus the sacrum's top."""
        scale = self.u(0.98, 1.02)
        z = 835.0 + self.u(-3, 3)
        # voxels of two vertebrae further apart in z than z_step_mm can never be 26-neighbours
        gap_min = 1.05 * self.z_step_mm
        self.vertebrae: list[Vertebra] = []
        for name in VERTEBRAE:
            spec = vertebra_specs(name)
            height, disc = spec["height"] * scale, spec["disc"] * scale
            z_top, z_bottom = z, z - height
            y_body = self.spine_y(0.5 * (z_top + z_bottom))
            cx, cy = spec["canal"]
            canal_y = y_body - spec["ry"] - cy - 1.5
            self.vertebrae.append(
                Vertebra(
                    name,
                    z_top,
                    z_bottom,
                    y_body,
                    spec["rx"],
                    spec["ry"],
                    (cx, cy, canal_y),
                    spec["arch"],
                    spec["spinous"],
                    spec["transverse"],
                    disc,
                )
            )
            z = z_bottom - disc
        self.sacrum_top = z
        # shrink vertebrae symmetrically where the disc is thinner than the grid allows
        chain = [*self.vertebrae]
        for upper_index, upper in enumerate(chain):
            extra = max(0.0, gap_min - upper.disc_mm) / 2
            upper.z_bottom += extra
            if upper_index + 1 < len(chain):
                chain[upper_index + 1].z_top -= extra
            else:
                self.sacrum_top -= extra
        self.by_name = {v.name: v for v in self.vertebrae}

    def _muscles(self) -> None:
        verts = self.vertebrae
        for side, lab in ((-1, label_id("autochthon left")), (1, label_id("autochthon right"))):
            points, radii = [], []
            for v in verts[1:]:
                cx, cy, canal_y = v.canal
                points.append((side * (cx + v.arch + 8), canal_y - cy - 12, v.z_center))
                radii.append({"C": 9.0, "T": 13.0, "L": 20.0}[v.name[0]])
            points.append((side * 22, -70, 165))
            radii.append(10.0)
            self.add(Tube(points, radii), lab, "muscle", where="deep")
        for side, lab in ((-1, label_id("iliopsoas left")), (1, label_id("iliopsoas right"))):
            pts = [
                (side * 22, self.spine_y(395) + 4, 395),
                (side * 36, self.spine_y(320) + 6, 320),
                (side * 46, self.spine_y(245) + 8, 245),
                (side * 60, 4, 175),
                (side * 72, 32, 118),
                (side * 86, 40, 78),
                (side * 106, 22, 32),
            ]
            self.add(Tube(pts, [6, 14, 19, 20, 17, 14, 11]), lab, "muscle", where="deep")
        for side, lab in ((-1, label_id("gluteus maximus left")), (1, label_id("gluteus maximus right"))):
            self.add(
                Ellipsoid(
                    self.jit((side * 78, -78, 92)), self.size((48, 26, 62)), rotation_matrix("z", side * 25)
                ),
                lab,
                "muscle",
                where="deep",
            )
