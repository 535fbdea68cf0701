"""The contract between the LIMIS interaction loop and its two models.

The loop (:mod:`LIMISLib.session`) works with any Lang2BBox and BBox2Mask that implement
these protocols; the real ones are Grounding DINO + LoRA and ScribblePrompt.

Image conventions for both: one 2D slice ``image_hu`` of shape (H, W) in Hounsfield units,
already in *display orientation* (row 0 is the top of the slice view, column 0 its left edge,
as the user sees it). Points are ``(x, y)`` = (column, row) in pixels; boxes are
``(x0, y0, x1, y1)`` in pixels with ``x0 <= x < x1`` and ``y0 <= y < y1`` (continuous edges, the
box covers pixel columns ``floor(x0) .. ceil(x1) - 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from .ct_windows import Window
from .exceptions import InvalidPromptError

Box = tuple[float, float, float, float]
Point = tuple[float, float]


def check_scribbles(scribbles, image_shape: tuple[int, int]) -> np.ndarray:
    """Scribbles as a float32 (2, H, W) array in [0, 1] (positive, negative), or a clear error."""
    array = np.asarray(scribbles, dtype=np.float32)
    if array.shape != (2, *image_shape):
        raise InvalidPromptError(
            f"Scribbles must be (2, {image_shape[0]}, {image_shape[1]}) (positive, negative), "
            f"got {array.shape}."
        )
    if not np.isfinite(array).all() or float(array.min()) < 0.0 or float(array.max()) > 1.0:
        raise InvalidPromptError("Scribble maps hold values in [0, 1] (1 = scribbled pixel).")
    return array


@dataclass(frozen=True)
class Detection:
    """A box found for a structure name, with the detector's confidence (0..1)."""

    label: str
    box_xyxy: Box
    score: float


@dataclass
class MaskPrediction:
    """BBox2Mask output for one slice.

    ``logits`` and ``probabilities`` cover the whole slice (H, W); outside the model's crop the
    probability is 0. ``model_logits`` is the raw model-resolution output that the next step
    feeds back as its "previous prediction" channel; ``crop_xyxy`` is the image region the model saw.
    """

    logits: np.ndarray
    probabilities: np.ndarray
    model_logits: np.ndarray | None = None
    crop_xyxy: Box | None = None
    extras: dict = field(default_factory=dict)

    def mask(self, threshold: float = 0.5) -> np.ndarray:
        """Binary mask (bool, H x W) of pixels with probability >= threshold."""
        return self.probabilities >= threshold


@runtime_checkable
class BBox2Mask(Protocol):
    """Box (+ clicks, + scribbles, + previous prediction) -> mask probabilities on a 2D slice."""

    name: str

    def predict(
        self,
        image_hu: np.ndarray,
        box_xyxy: Box,
        *,
        positive_clicks: Sequence[Point] = (),
        negative_clicks: Sequence[Point] = (),
        previous: MaskPrediction | None = None,
        window: Window | None = None,
        scribbles: np.ndarray | None = None,
    ) -> MaskPrediction:
        """Segment the structure in ``box_xyxy``; ``window`` = CT window applied before normalising
        (None: min-max of the crop, as ScribblePrompt does by default); ``scribbles`` = (2, H, W)
        positive and negative scribble masks over the slice (1 = scribbled), or None."""
        ...


@runtime_checkable
class Lang2BBox(Protocol):
    """Structure name -> box on a 2D slice."""

    name: str

    def detect(
        self,
        image_hu: np.ndarray,
        target: str,
        *,
        candidates: Sequence[str] | None = None,
        score_threshold: float = 0.3,
    ) -> Detection:
        """The highest-scoring box for ``target`` (a canonical DAP structure name).

        ``candidates`` are the other names put in the prompt (" . "-separated, lower case, as in
        training); raises :class:`LIMISLib.exceptions.StructureNotFoundError` below the threshold.
        """
        ...
