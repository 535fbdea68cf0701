"""LIMIS's initial segmentation in one call: text -> box (Lang2BBox) -> mask (BBox2Mask).

With the dissertation's default adaptation applied (the organ's CT window and the box enlarged
by 10 px per side), as the interaction loop's first two steps would give; plus a PNG of the
result (``segment-slice`` command, main job).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bbox2mask import DEFAULT_BOX_ENLARGEMENT_PX, enlarge_box
from .ct_windows import Window, window_for_structure
from .model_interfaces import BBox2Mask, Detection, Lang2BBox, MaskPrediction
from .organ_vocabulary import resolve_structure


@dataclass
class InitialSegmentation:
    """What the text -> box -> mask pipeline produced on one slice."""

    structure: str
    detection: Detection
    box_xyxy: tuple[float, float, float, float]
    window: Window | None
    prediction: MaskPrediction


def segment_from_text(
    lang2bbox: Lang2BBox,
    bbox2mask: BBox2Mask,
    image_hu: np.ndarray,
    text: str,
    *,
    box_enlargement_px: float = DEFAULT_BOX_ENLARGEMENT_PX,
    use_window: bool = True,
    score_threshold: float = 0.3,
) -> InitialSegmentation:
    """Resolve ``text`` to a structure, detect its box, enlarge it, segment it with its CT window."""
    structure = resolve_structure(text)
    detection = lang2bbox.detect(image_hu, structure, score_threshold=score_threshold)
    box = enlarge_box(detection.box_xyxy, box_enlargement_px, np.shape(image_hu))
    window = window_for_structure(structure) if use_window else None
    prediction = bbox2mask.predict(image_hu, box, window=window)
    return InitialSegmentation(structure, detection, box, window, prediction)


def render_segmentation_png(
    path: str | Path,
    image_hu: np.ndarray,
    mask: np.ndarray | None = None,
    box_xyxy: tuple[float, float, float, float] | None = None,
    *,
    window: Window | None = None,
    pixel_spacing_xy_mm: tuple[float, float] = (1.0, 1.0),
    title: str = "",
    min_size_px: int = 512,
) -> Path:
    """Write the slice (windowed, display orientation) with the mask in red and the box in yellow."""
    from PIL import Image, ImageDraw

    window = window or Window(400, 40, "abdomen")
    image = np.clip((np.asarray(image_hu, np.float32) - window.low_hu) / window.width_hu, 0, 1)
    rgb = np.repeat((image * 255).astype(np.uint8)[..., None], 3, axis=2)
    if mask is not None:
        red = np.array([230, 40, 40], dtype=np.float32)
        m = np.asarray(mask, bool)
        rgb[m] = (0.55 * rgb[m] + 0.45 * red).astype(np.uint8)
    height, width = image.shape
    sx, sy = pixel_spacing_xy_mm
    scale = max(1.0, min_size_px / max(width * sx / min(sx, sy), height * sy / min(sx, sy)))
    out_w = max(1, round(width * sx / min(sx, sy) * scale))
    out_h = max(1, round(height * sy / min(sx, sy) * scale))
    picture = Image.fromarray(rgb).resize((out_w, out_h), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    if box_xyxy is not None:
        fx, fy = out_w / width, out_h / height
        x0, y0, x1, y1 = box_xyxy
        draw.rectangle([x0 * fx, y0 * fy, x1 * fx - 1, y1 * fy - 1], outline=(255, 220, 0), width=2)
    if title:
        draw.text((6, 6), title, fill=(255, 255, 255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path
