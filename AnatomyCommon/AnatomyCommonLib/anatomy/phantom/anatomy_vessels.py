"""Vessel and airway anatomy: aorta, veins and their branches, trachea and bronchi."""

from __future__ import annotations

import numpy as np

from ..label_schema import label_id
from .anatomy_builder import AnatomyBuilder
from .shapes import Capsule, Tube, Union


class VesselAnatomy(AnatomyBuilder):
    """Vessels (also the paths lymph-node lesions follow) and airways."""

    def _vessels(self) -> None:
        t = self.thin
        sy = self.spine_y
        aorta = [
            (3, 35, 560), (6, 38, 598), (2, 30, 632),  # ascending
            (-18, 12, 645), (-30, -14, 638),  # arch
            (-32, sy(610) + 6, 610), (-30, sy(560) + 8, 560), (-27, sy(500) + 10, 500),  # descending
            (-20, sy(440) + 22, 440), (-12, sy(395) + 28, 395),  # through the diaphragm
            (-8, sy(300) + 30, 300), (-4, sy(252) + 30, 252),  # abdominal, down to the bifurcation
        ]  # fmt: skip
        aorta_r = [14, 14, 13, 12, 12, 11.5, 11, 11, 11, 10.5, 10, 9]
        self.add(Tube(aorta, aorta_r), label_id("aorta"), "blood", where="deep")
        self.node_paths.append((np.asarray(aorta[6:], dtype=float), np.asarray(aorta_r[6:], dtype=float)))
        bifurcation = aorta[-1]
        ivc = [
            (22, 22, 482),
            (25, 0, 445),
            (26, -8, 405),
            (27, sy(330) + 29, 330),
            (22, sy(270) + 30, 270),
            (14, sy(245) + 26, 245),
        ]
        self.add(Tube(ivc, [13, 12, 12, 11, 11, 10]), label_id("inferior vena cava"), "blood", where="deep")
        # veins first: the arteries lie in front of them and win where they touch
        for side, vein in ((-1, label_id("iliac vein left")), (1, label_id("iliac vein right"))):
            pts_v = [
                ivc[-1],
                (side * 34, 12, 205),
                (side * 44, 22, 155),
                (side * 50, 36, 110),
                (side * 66, 46, 70),
            ]
            self.add(Tube(pts_v, [t(8), t(8), t(7), t(7), t(6)]), vein, "blood", where="deep")
        for side, artery in ((-1, label_id("iliac artery left")), (1, label_id("iliac artery right"))):
            pts_a = [
                bifurcation,
                (side * 30, 28, 205),
                (side * 46, 38, 155),
                (side * 54, 48, 110),
                (side * 76, 58, 70),
            ]
            radii_a = [t(7), t(6.5), t(6), t(5.5), t(5)]
            self.add(Tube(pts_a, radii_a), artery, "blood", where="deep")
            self.node_paths.append((np.asarray(pts_a, dtype=float), np.asarray(radii_a)))
        aorta_395 = (-12, sy(395) + 28, 395)
        self.add(
            Capsule((aorta_395[0], aorta_395[1] + 8, 392), (-8, aorta_395[1] + 26, 388), t(4)),
            label_id("celiac trunk"),
            "blood",
            where="deep",
        )
        self.add(
            Tube([(-12, 52, 562), (-14, 36, 596), (-42, 10, 602)], [t(12), t(11), t(9)]),
            label_id("pulmonary artery"),
            "blood",
            where="deep",
        )
        self.add(
            Capsule((-14, 36, 596), (28, 8, 588), t(9)), label_id("pulmonary artery"), "blood", where="deep"
        )
        self.add(
            Capsule((2, 30, 636), (14, 22, 672), t(7)),
            label_id("brachiocephalic artery"),
            "blood",
            where="deep",
        )
        neck_vessels = (
            ("subclavian artery right", [(14, 22, 672), (40, 6, 690), (80, -2, 696)], 5.0),
            ("subclavian artery left", [(-24, 6, 642), (-40, 0, 684), (-80, -4, 694)], 5.0),
            ("common carotid artery right", [(14, 22, 672), (28, 6, 730), (30, 4, 800)], 4.5),
            ("common carotid artery left", [(-10, 22, 645), (-28, 6, 730), (-30, 4, 800)], 4.5),
            ("internal jugular vein right", [(38, 10, 785), (40, 14, 720), (34, 18, 692)], 6.0),
            ("internal jugular vein left", [(-38, 10, 785), (-40, 14, 720), (-34, 18, 692)], 6.0),
            ("brachiocephalic vein right", [(34, 18, 692), (18, 26, 640)], 7.0),
            ("brachiocephalic vein left", [(-34, 18, 692), (-6, 40, 665), (16, 28, 642)], 6.0),
        )
        for name, pts, radius in neck_vessels:
            self.add(Tube(pts, t(radius)), label_id(name), "blood", where="deep")

    def _airways(self) -> None:
        t = self.thin
        sy = self.spine_y
        esophagus = [
            (0, 8, 790), (2, 5, 730), (4, -14, 660), (6, sy(600) + 21, 600), (8, sy(520) + 22.5, 520),
            (2, sy(470) + 26, 470), (-12, 4, 448), (-32, 14, 438),
        ]  # fmt: skip
        self.add(Tube(esophagus, t(7)), label_id("esophagus"), "esophagus", where="deep")
        self.add(
            Tube([(0, 26, 790), (0, 22, 740), (0, 8, 670), (0, -2, 618)], t(9)),
            label_id("trachea"),
            "air",
            where="deep",
        )
        carina = (0, -3, 614)
        right_main, intermediate, left_main = (26, -6, 596), (36, -8, 572), (-38, -10, 588)
        bronchi = [
            (carina, right_main, 7.0), (right_main, (52, 0, 618), 5.0), (right_main, intermediate, 6.0),
            (intermediate, (52, 22, 556), 4.5), (intermediate, (58, -30, 530), 5.0),
            (carina, left_main, 6.5), (left_main, (-58, 6, 610), 5.0), (left_main, (-58, -32, 538), 5.0),
        ]  # fmt: skip
        self.add(
            Union(*(Capsule(a, b, t(r)) for a, b, r in bronchi)), label_id("bronchi"), "air", where="deep"
        )
