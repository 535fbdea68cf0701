"""Render the Extensions Index screenshot (``Resources/Screenshots/overview.png``) from the phantom.

Run from the repository root: ``python scripts/render_extension_screenshot.py``. Deterministic
(fixed seed); the CMake ``EXTENSION_SCREENSHOTURLS`` points at the committed file.
"""

from __future__ import annotations

from pathlib import Path

from AnatomyCommonLib.anatomy.label_schema import default_colors_rgb
from AnatomyCommonLib.anatomy.phantom import make_phantom
from AnatomyCommonLib.rendering import render_orthogonal_views

TARGET = Path(__file__).resolve().parents[1] / "Resources/Screenshots/overview.png"


def main() -> None:
    phantom = make_phantom("small", seed=0, sex="F")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    render_orthogonal_views(
        TARGET,
        phantom.ct,
        phantom.labels,
        default_colors_rgb(),
        title="DAP Atlas labels on the synthetic whole-body CT phantom",
        dpi=90,
        overwrite=True,
    )
    print(TARGET)


if __name__ == "__main__":
    main()
