"""Skeletal anatomy: skull, spine, pelvis, limbs, sternum and ribs (painted last)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..label_schema import label_id, rib_id, vertebra_id
from .anatomy_builder import AnatomyBuilder
from .materials import SKIN_MM
from .shapes import (
    Capsule,
    Difference,
    Ellipsoid,
    Intersection,
    Shape,
    Sphere,
    Tube,
    Union,
    ZSlab,
    ZStack,
    frame_matrix,
    rotation_matrix,
)


class SkeletonAnatomy(AnatomyBuilder):
    """Bones, the sternum and the ribs."""

    # -- bones
    def _bones(self) -> None:
        t = self.thin
        sacrum_top = self.sacrum_top
        # hips: iliac wing, acetabular block, pubic and ischial rami
        self.femoral_heads = []
        hips, femurs = [], []
        for side, hip_label, femur_label in (
            (-1, label_id("hip left"), label_id("femur left")),
            (1, label_id("hip right"), label_id("femur right")),
        ):
            head = self.jit((side * 86, 5, 88), 2)
            self.femoral_heads.append(Sphere(head, 23))
            # iliac wing: a plate from the sacroiliac joint (postero-medial) to the anterior
            # superior iliac spine, flaring outwards at the iliac crest
            wing_frame = frame_matrix((side * 0.66, 0.75, 0.0), (side * 0.3, 0.0, 0.95))
            hip = Union(
                Ellipsoid((side * 88, -8, 186), (62, 60, t(9, 1.0)), wing_frame, exponent=2.5),
                Difference(
                    Ellipsoid((side * 74, 2, 100), (30, 30, 38)),
                    Sphere(head, 23 + max(1.5, 0.6 * self.min_mm)),
                ),
                Capsule((side * 70, 20, 85), (side * 14, 48, 68), t(9)),
                Capsule((side * 75, -15, 85), (side * 62, -30, 38), t(10)),
                Capsule((side * 62, -30, 38), (side * 16, 40, 58), t(7)),
            )
            hips.append(hip)
            self.add(hip, hip_label, "cortical bone", core=(2.5, "cancellous bone"), where="body")
            femur = Union(
                Sphere(head, 23),
                Capsule(head, (side * 118, -2, 68), t(15)),
                Sphere((side * 124, -6, 72), 16),
                Capsule((side * 120, 0, 62), (side * 108, 15, -30), t(14)),
            )
            femurs.append(femur)
            self.add(femur, femur_label, "dense cortical bone", core=(4.0, "cancellous bone"), where="body")
        self.add(
            Intersection(
                Union(
                    Ellipsoid((0, -36, 168), (58, 22, 20), rotation_matrix("x", -15), exponent=2.5),
                    Ellipsoid((0, -50, 138), (44, 18, 22), rotation_matrix("x", -25)),
                    Ellipsoid((0, -66, 110), (28, 14, 20), rotation_matrix("x", -40)),
                    Ellipsoid((0, -80, 88), (14, 10, 13), rotation_matrix("x", -50)),
                ),
                ZSlab(-100, sacrum_top),
            ),
            label_id("sacrum"),
            "cortical bone",
            core=(2.5, "cancellous bone"),
            where="body",
        )
        # intervertebral discs, vertebrae and the spinal canal
        chain = self.vertebrae
        for upper, lower_top, lower_rx, lower_ry, lower_y in [
            (v, w.z_top, w.rx, w.ry, w.y_body) for v, w in itertools.pairwise(chain)
        ] + [(chain[-1], sacrum_top, 26.0, 17.0, chain[-1].y_body)]:
            if upper.z_bottom - lower_top <= 0:
                continue
            disc = ZStack(
                (lower_top, upper.z_bottom),
                (0.95 * lower_rx, 0.95 * upper.rx),
                (0.95 * lower_ry, 0.95 * upper.ry),
                0.0,
                (lower_y, upper.y_body),
            )
            self.add(disc, 1, "intervertebral disc", where="body")
        bodies = []
        for v in chain:
            cx, cy, canal_y = v.canal
            z0, z1, zc = v.z_bottom, v.z_top, v.z_center
            arch = t(v.arch, 1.1)
            body = ZStack((z0, z1), v.rx, v.ry, 0.0, v.y_body)
            bodies.append((v.name, body))
            spin_len, spin_r = v.spinous
            tp_len, tp_r = v.transverse
            back = canal_y - cy - arch
            parts: list[Shape] = [
                body,
                ZStack((z0, z1), cx + arch, cy + arch, 0.0, canal_y),
                Capsule((0, back + 2, zc), (0, back - spin_len, zc - 0.25 * (z1 - z0)), t(spin_r)),
            ]
            for side in (-1, 1):
                parts.append(
                    Capsule(
                        (side * (cx + arch - 1), canal_y + 1, zc),
                        (side * (cx + arch + tp_len), canal_y - 6, zc),
                        t(tp_r),
                    )
                )
            self.add(
                Intersection(Union(*parts), ZSlab(z0, z1)),
                vertebra_id(v.name),
                "thin cortical bone",
                core=(2.0, "cancellous bone"),
                where="body",
            )
        canal_keys = sorted((v.z_center, v.canal) for v in chain)
        zs = [chain[-1].z_bottom] + [k[0] for k in canal_keys] + [chain[0].z_top + 6]
        canals = [canal_keys[0][1]] + [k[1] for k in canal_keys] + [canal_keys[-1][1]]
        self.add(
            ZStack(zs, [c[0] for c in canals], [c[1] for c in canals], 0.0, [c[2] for c in canals]),
            label_id("spinal canal"),
            "spinal canal",
            where="body",
        )
        # sternum, clavicles, scapulae
        st_top = self.by_name["T2"].z_center + 12
        st_bottom = self.by_name["T9"].z_center + 8
        st_z = [
            st_bottom,
            st_bottom + 12,
            st_bottom + 35,
            0.55 * (st_bottom + st_top),
            st_top - 28,
            st_top - 14,
            st_top,
        ]
        st_a = [6, 12, 16, 16, 18, 26, 27]
        st_b = [t(4, 0.6), t(5, 0.6), t(6, 0.6), t(6, 0.6), t(6.5, 0.6), t(7.5, 0.6), t(7.5, 0.6)]
        st_y = [self.sternum_y(z) - b for z, b in zip(st_z, st_b, strict=True)]
        self.sternum = ZStack(st_z, st_a, st_b, 0.0, st_y)
        self.sternum_top, self.sternum_bottom = st_top, st_bottom
        self.add(
            self.sternum,
            label_id("sternum"),
            "thin cortical bone",
            core=(2.0, "cancellous bone"),
            where="body",
        )
        for side, lab in ((-1, label_id("clavicle left")), (1, label_id("clavicle right"))):
            pts = [
                (side * 30, self.sternum_y(st_top - 5) - 6, st_top - 5),
                (side * 65, 60, 698),
                (side * 110, 32, 708),
                (side * 148, -2, 714),
            ]
            self.add(Tube(pts, t(7)), lab, "cortical bone", core=(2.5, "cancellous bone"), where="body")
        for side, lab in ((-1, label_id("scapula left")), (1, label_id("scapula right"))):
            blade = Ellipsoid(
                (side * 98, -80, 625),
                (40, 70, t(6, 0.6)),
                frame_matrix((side * 0.82, 0.57, 0), (0, 0, 1)),
                exponent=2.5,
            )
            spine = Tube([(side * 72, -92, 668), (side * 128, -66, 688), (side * 150, -22, 704)], t(6))
            self.add(Union(blade, spine), lab, "cortical bone", core=(2.5, "cancellous bone"), where="body")
        self.bone_hosts = Union(*(b for name, b in bodies if name[0] in "TL"), *self.femoral_heads)

    def sternum_y(self, z: float) -> float:
        """Antero-posterior position of the sternum's anterior surface at height z."""
        _, big_b, yc, _ = self.torso_at(z)
        return yc + big_b - (SKIN_MM + float(self.fat_at(z, self.fat_factor)) + 7.0)

    def _ribs(self) -> None:
        r = self.rib_radius
        drops = (22, 35, 45, 52, 58, 62, 66, 70, 72, 74, 75, 75)
        ends = (150, 155, 158, 160, 160, 158, 155, 150, 140, 128, 105, 85)
        n_true = 7
        st_attach = np.linspace(self.sternum_top - 8, self.sternum_bottom + 22, n_true)
        cartilage_mid: dict[tuple[int, int], tuple[float, float, float]] = {}
        rib_paths: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
        for k in range(1, 13):
            v = self.by_name[f"T{k}"]
            cx, _, canal_y = v.canal
            zk = v.z_center
            drop = drops[k - 1] * self.u(0.95, 1.05)
            end = math.radians(ends[k - 1])
            for side in (-1, 1):
                head = (side * (v.rx + r), v.y_body - 3, zk)
                tubercle_x = cx + v.arch + v.transverse[0] + r
                tubercle = (side * tubercle_x, canal_y - 6, zk)
                a0, _, _ = self.cage_at(zk)
                start = math.asin(min(0.95, (tubercle_x + 18) / a0))
                path = [head, tubercle]
                for phi in np.linspace(start, end, max(4, int(math.degrees(end - start) / 8))):
                    g = ((phi - start) / (math.pi - start)) ** 1.3
                    z = zk - drop * g
                    a, b, yc = self.cage_at(z)
                    path.append((side * a * math.sin(phi), yc - b * math.cos(phi), z))
                rib_paths[(k, side)] = path
        # cartilage first (ribs are painted over it, so they stay whole)
        for k in range(1, 11):
            for side in (-1, 1):
                end_point = rib_paths[(k, side)][-1]
                if k <= n_true:
                    z_st = float(st_attach[k - 1])
                    half_width = float(np.interp(z_st, self.sternum.z, self.sternum.a))
                    target = (side * (half_width + 1.0), self.sternum_y(z_st) - 7.0, z_st)
                else:
                    target = cartilage_mid[(k - 1, side)]
                mid = tuple(0.5 * (p + q) for p, q in zip(end_point, target, strict=True))
                cartilage_mid[(k, side)] = mid  # type: ignore[assignment]
                self.add(
                    Capsule(end_point, target, self.thin(5.0)),
                    label_id("rib cartilage"),
                    "cartilage",
                    where="body",
                )
        for (k, side), path in rib_paths.items():
            lab = rib_id(k, "left" if side < 0 else "right")
            self.add(Tube(path, r), lab, "thin cortical bone", core=(1.8, "cancellous bone"), where="body")
