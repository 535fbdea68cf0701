"""CT display windows (width/level in HU): radiology presets and the organ -> window defaults.

LIMIS normalises the image with the target organ's window before BBox2Mask (the dissertation
found +5 Dice points from it, 58 % -> 63 %). The per-organ windows of the LIMIS authors are not
published; these are common radiology presets, documented and configurable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A CT window: ``width_hu`` wide, centred on ``level_hu``."""

    width_hu: float
    level_hu: float
    name: str = ""

    @property
    def low_hu(self) -> float:
        return self.level_hu - self.width_hu / 2.0

    @property
    def high_hu(self) -> float:
        return self.level_hu + self.width_hu / 2.0


#: Named presets (W/L in HU).
PRESETS: dict[str, Window] = {
    "abdomen": Window(400, 40, "abdomen"),
    "soft tissue": Window(400, 40, "soft tissue"),
    "liver": Window(150, 30, "liver"),
    "mediastinum": Window(350, 50, "mediastinum"),
    "lung": Window(1500, -600, "lung"),
    "bone": Window(1800, 400, "bone"),
    "brain": Window(80, 40, "brain"),
    "kidney": Window(400, 40, "kidney"),
    "pelvis": Window(400, 40, "pelvis"),
}

#: The window LIMIS applies by default for a structure (canonical DAP names); others use abdomen.
ORGAN_WINDOWS: dict[str, str] = {
    "liver": "liver",
    "gallbladder": "liver",
    "spleen": "liver",
    "pancreas": "abdomen",
    "stomach": "abdomen",
    "duodenum": "abdomen",
    "colon": "abdomen",
    "small bowel": "abdomen",
    "esophagus": "mediastinum",
    "kidney left": "kidney",
    "kidney right": "kidney",
    "bladder": "pelvis",
    "heart": "mediastinum",
    "aorta": "mediastinum",
    "trachea": "lung",
    "bronchi": "lung",
    "brain": "brain",
}


def preset(name: str) -> Window:
    """A named preset; ``KeyError`` listing the known names otherwise."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise KeyError(f"Unknown CT window {name!r}; known presets: {', '.join(sorted(PRESETS))}.")
    return PRESETS[key]


def window_for_structure(structure: str) -> Window:
    """The default window for a structure: lung window for lung lobes, bone window for bones, etc."""
    key = structure.strip().lower()
    if key in ORGAN_WINDOWS:
        return PRESETS[ORGAN_WINDOWS[key]]
    if key.startswith("lung"):
        return PRESETS["lung"]
    if key.startswith(
        ("vertebra", "rib ", "hip", "femur", "skull", "sacrum", "sternum", "clavicle", "scapula")
    ):
        return PRESETS["bone"]
    return PRESETS["abdomen"]


def apply_window(image_hu: np.ndarray, window: Window) -> np.ndarray:
    """Clip to the window and scale to [0, 1] (float32)."""
    low, high = window.low_hu, window.high_hu
    return ((np.clip(np.asarray(image_hu, dtype=np.float32), low, high) - low) / (high - low)).astype(
        np.float32
    )
