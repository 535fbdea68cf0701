"""Organ anatomy by body region: thorax, abdomen, pelvis, head and neck."""

from __future__ import annotations

import numpy as np

from ..label_schema import label_id
from .anatomy_builder import AnatomyBuilder
from .shapes import (
    Capsule,
    Difference,
    Ellipsoid,
    HalfSpace,
    Intersection,
    Sphere,
    Tube,
    Union,
    ZStack,
    rotation_matrix,
)


class OrganAnatomy(AnatomyBuilder):
    """Organs of the thorax, abdomen, pelvis (sex-specific) and head and neck."""

    def _thorax(self) -> None:
        self.rib_radius = self.thin(5.0)
        inset = self.rib_radius + 4.0
        zs = np.arange(372.0, 722.0, 10.0)
        cav = [self.cage_at(float(z)) for z in zs]
        cav_a = [c[0] - inset for c in cav] + [26.0]
        cav_b = [c[1] - inset for c in cav] + [24.0]
        cav_y = [c[2] for c in cav] + [-18.0]
        cavity = ZStack([*zs, 736.0], cav_a, cav_b, 0.0, cav_y, 2.3)
        dome_top_right = 478.0 + self.u(-6, 6)
        dome_top_left = dome_top_right - 15.0 + self.u(-4, 4)
        # centred anteriorly: the lung bases reach lowest in the posterior costophrenic recesses
        dome_right = Ellipsoid((70, 20, dome_top_right - 130), (125, 110, 130))
        dome_left = Ellipsoid((-70, 20, dome_top_left - 130), (125, 110, 130))
        self.below_diaphragm = Union(dome_right, dome_left)
        self.dome_top = (dome_top_left, dome_top_right)
        z_t4 = self.by_name["T4"].z_center
        lungs = {}
        for side in (-1, 1):
            lung = Difference(
                Intersection(cavity, HalfSpace((side * 10, 0, 0), (side, 0, 0))), dome_right, dome_left
            )
            lungs[side] = lung
            posterior = (0.0, -70.0, z_t4 + (8.0 if side < 0 else 0.0))
            anterior_z = (dome_top_left if side < 0 else dome_top_right) - 25.0
            normal = (0.0, posterior[2] - anterior_z, 85.0 - posterior[1])  # perpendicular in y-z
            oblique = HalfSpace(posterior, normal)  # upper lobe side (anterior-superior)
            if side < 0:
                self.add(lung, label_id("lung lower lobe left"), "lung", where="deep")
                self.add(Intersection(lung, oblique), label_id("lung upper lobe left"), "lung", where="deep")
            else:
                z_horizontal = self.by_name["T6"].z_center + self.u(-5, 5)
                self.add(lung, label_id("lung lower lobe right"), "lung", where="deep")
                self.add(Intersection(lung, oblique), label_id("lung upper lobe right"), "lung", where="deep")
                below = HalfSpace((0, 0, z_horizontal), (0, 0, -1))
                self.add(
                    Intersection(lung, oblique, below),
                    label_id("lung middle lobe right"),
                    "lung",
                    where="deep",
                )
        self.lungs = Union(lungs[-1], lungs[1])
        self.heart = Ellipsoid(self.jit((-22, 28, 535)), self.size((58, 46, 56)), rotation_matrix("z", -40))
        self.add(self.heart, label_id("heart"), "blood", where="deep")
        self.add(
            Ellipsoid(self.jit((0, 62, 622), 2), (20, 10, 26)),
            label_id("thymus"),
            "visceral tissue",
            where="deep",
        )

    # -- abdomen
    def _abdomen(self) -> None:
        below = self.below_diaphragm
        # small bowel: a serpentine filling the central abdomen
        points = []
        for row, z in enumerate((298, 272, 246, 220, 194)):
            xs = (-60, -30, 0, 30, 60) if row % 2 == 0 else (60, 30, 0, -30, -60)
            for n, x in enumerate(xs):
                points.append(
                    (x + self.u(-5, 5), 42 + 18 * (-1) ** (n + row) + self.u(-4, 4), z + self.u(-4, 4))
                )
        self.add(Tube(points, 13.0), label_id("small bowel"), "small bowel")
        colon = [
            (72, 15, 175), (80, 5, 240), (78, 5, 320), (70, 30, 352), (30, 66, 338),  # cecum, ascending
            (-20, 66, 332), (-70, 40, 372), (-88, 5, 392),  # transverse, splenic flexure
            (-90, -5, 320), (-88, -5, 240), (-75, 15, 185),  # descending
            (-45, 35, 160), (-15, 0, 168),  # sigmoid
        ]  # fmt: skip
        colon = [self.jit(p, 3) for p in colon]
        self.add(
            Tube([colon[-1], (-6, -10, 140), (0, -20, 105), (0, -8, 72), (0, 2, 48)], [12, 16, 15, 12, 9]),
            label_id("rectum"),
            "colon content",
        )
        self.add(
            Tube(colon, [24, 22, 22, 21, 20, 20, 20, 19, 18, 18, 17, 16, 15]),
            label_id("colon"),
            "colon content",
        )
        for index in (4, 5, 7):  # gas pockets on the anterior side of the colon
            x, y, z = colon[index]
            self.add(Sphere((x, y + 9, z), 9), None, "air", where={label_id("colon")})
        duodenum = [
            (18, 56, 358),
            (40, 34, 352),
            (48, 22, 320),
            (32, 32, 296),
            (0, 40, 292),
            (-25, 36, 300),
            (-35, 40, 318),
        ]
        self.add(Tube(duodenum, 12.0), label_id("duodenum"), "small bowel")
        stomach = Intersection(
            Union(
                Ellipsoid(self.jit((-58, 5, 440)), self.size((42, 44, 40))),
                Ellipsoid((-42, 35, 398), (36, 28, 48), rotation_matrix("y", -20)),
                Tube([(-35, 58, 372), (-5, 64, 360), (18, 56, 358)], [20, 17, 14]),
            ),
            below,
        )
        self.add(stomach, label_id("stomach"), "stomach content")
        self.add(
            Intersection(stomach, Ellipsoid((-55, 35, 450), (38, 22, 26))),
            None,
            "air",
            where={label_id("stomach")},
        )
        self.liver = Difference(
            Intersection(
                Union(
                    Ellipsoid(self.jit((55, 8, 412)), self.size((88, 92, 72)), rotation_matrix("z", 15)),
                    Ellipsoid(self.jit((-8, 42, 428)), self.size((52, 36, 30)), rotation_matrix("z", -10)),
                ),
                below,
            ),
            Capsule((0, -30, 320), (0, -30, 500), 36),  # keeps the liver off the spine and aorta
        )
        self.add(self.liver, label_id("liver"), "liver")
        self.add(
            Ellipsoid(self.jit((52, 48, 362), 2), self.size((14, 28, 16), 0.1), rotation_matrix("x", 30)),
            label_id("gallbladder"),
            "bile",
        )
        self.spleen = Intersection(
            Ellipsoid(self.jit((-96, -38, 418)), self.size((24, 52, 55)), rotation_matrix("z", -35)), below
        )
        self.add(self.spleen, label_id("spleen"), "spleen")
        self.add(
            Tube([self.jit((24, 36, 340), 2), (2, 42, 352), (-40, 30, 365), (-82, 0, 385)], [16, 13, 12, 10]),
            label_id("pancreas"),
            "pancreas",
        )
        # splenic vein along the back of the pancreas, portal vein up into the liver hilum
        self.add(
            Tube([(-84, -8, 384), (-40, 18, 364), (0, 30, 352), (28, 22, 370), (50, 10, 398)], self.thin(6)),
            label_id("portal vein and splenic vein"),
            "blood",
        )
        kidneys = []
        for side, center, lab in (
            (-1, (-72, -35, 352), label_id("kidney left")),
            (1, (72, -36, 336), label_id("kidney right")),
        ):
            c = self.jit(center)
            rotation = rotation_matrix("y", -side * 15) @ rotation_matrix("z", side * 20)
            kidney = Ellipsoid(c, self.size((27, 23, 54)), rotation)
            kidneys.append(kidney)
            self.add(kidney, lab, "kidney cortex")
            medulla = Ellipsoid((c[0] - side * 4, c[1], c[2]), (14, 12, 36), rotation)
            self.add(medulla, None, "kidney medulla", where={lab})
        self.kidneys = Union(*kidneys)
        self.add(
            Ellipsoid(self.jit((-46, -28, 414), 2), (7, 5, 18)), label_id("adrenal gland left"), "adrenal"
        )
        self.add(
            Ellipsoid(self.jit((44, -30, 402), 2), (7, 5, 18)), label_id("adrenal gland right"), "adrenal"
        )

    def _pelvis(self) -> None:
        if self.sex == "M":
            self.add(
                Ellipsoid(self.jit((0, 45, 105), 2), self.size((36, 30, 28), 0.1)),
                label_id("bladder"),
                "urine",
            )
            self.add(Ellipsoid(self.jit((0, 24, 64), 2), (17, 14, 15)), label_id("prostate"), "prostate")
            for side in (-1, 1):
                self.add(
                    Ellipsoid(self.jit((side * 17, 66, 22), 2), (12, 11, 19)),
                    label_id("gonads"),
                    "testis",
                    where="deep",
                )
        else:
            self.add(
                Ellipsoid(self.jit((0, 22, 138), 3), self.size((30, 20, 36)), rotation_matrix("x", -35)),
                label_id("uterus"),
                "uterus",
            )
            self.add(Ellipsoid((0, 14, 104), (14, 14, 16)), label_id("uterocervix"), "uterus")
            for side in (-1, 1):
                self.add(
                    Ellipsoid(self.jit((side * 52, 5, 132), 3), (14, 9, 18)), label_id("gonads"), "ovary"
                )
            self.add(
                Ellipsoid(self.jit((0, 48, 96), 2), self.size((38, 28, 24), 0.1)),
                label_id("bladder"),
                "urine",
            )

    def _head_and_neck(self) -> None:
        self.add(Ellipsoid((0, -6, 920), (65, 83, 70)), label_id("brain"), "brain")
        eyes = [(side * 32, 58, 882) for side in (-1, 1)]
        skull = Union(
            Difference(
                Ellipsoid((0, -5, 918), (73, 92, 81)),
                Ellipsoid((0, -6, 920), (66, 84, 72)),
                *(Sphere(eye, 15) for eye in eyes),  # orbits
            ),
            Tube(
                [
                    (-48, -10, 862),
                    (-46, 8, 800),
                    (-20, 50, 792),
                    (0, 62, 794),
                    (20, 50, 792),
                    (46, 8, 800),
                    (48, -10, 862),
                ],
                self.thin(6),
            ),
        )
        self.add(skull, label_id("skull"), "skull", where="body")
        for eye, lab in zip(eyes, (label_id("eyeball left"), label_id("eyeball right")), strict=True):
            self.add(Sphere(eye, 12), lab, "eyeball", where="body")
        for side, lab in ((-1, label_id("thyroid left")), (1, label_id("thyroid right"))):
            self.add(Ellipsoid(self.jit((side * 19, 22, 748), 1.5), (8, 9, 20)), lab, "thyroid", where="deep")
