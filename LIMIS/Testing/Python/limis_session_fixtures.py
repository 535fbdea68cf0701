"""Shared helpers of the LIMIS interaction tests: synthetic slices, small sessions and BBox2Mask test
doubles (the phantom fixture is in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from AnatomyCommonLib.anatomy.label_schema import label_id
from LIMISLib.model_interfaces import MaskPrediction
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.session import InteractionSession, SessionConfig
from LIMISLib.slice_geometry import box_around_mask
from LIMISLib.volume_session import VolumeSession

#: The big ellipse of :func:`two_organ_slice` (x centre, y centre, x radius, y radius) in pixels.
BIG = (40.0, 32.0, 14.0, 10.0)
#: The small disc of :func:`two_organ_slice`.
SMALL = (62.0, 32.0, 4.0, 4.0)


def ellipse(shape: tuple[int, int], cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0


def two_organ_slice(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image HU 64 x 80, big organ mask, small organ mask): two 60 HU structures in fat, noise 8 HU."""
    shape = (64, 80)
    rng = np.random.default_rng(seed)
    big, small = ellipse(shape, *BIG), ellipse(shape, *SMALL)
    image = np.full(shape, -100.0, np.float32) + rng.normal(0, 8, shape).astype(np.float32)
    image[big | small] = 60.0 + rng.normal(0, 8, int((big | small).sum()))
    return image, big, small


def started_on_big():
    """(session, big, small): a 2D session on :func:`two_organ_slice` started with a box around the big
    ellipse (2 px margin), no default-adaptation proposal."""
    image, big, small = two_organ_slice()
    session = InteractionSession(
        image, IntensityBBox2Mask(), target="liver", config=SessionConfig(propose_default_adaptation=False)
    )
    session.start(box_around_mask(big, 2.0))
    return session, big, small


def organ_session(phantom, organ: str):
    """(session, truth on the slice, k): a VolumeSession on ``phantom`` whose active slice is the middle
    slice holding ``organ``, segmented there by name with the intensity baseline."""
    session = VolumeSession(phantom.ct, IntensityBBox2Mask(), labels=phantom.labels)
    truth = phantom.labels.array == label_id(organ)
    present = truth.any(axis=(1, 2))
    k = int(np.flatnonzero(present)[present.sum() // 2])
    session.set_active_slice(k)
    assert session.segment(organ).ok
    return session, truth[k], k


@dataclass
class RecordingBBox2Mask:
    """Wraps a BBox2Mask and records the arguments of every call."""

    inner: object = field(default_factory=IntensityBBox2Mask)
    calls: list[dict] = field(default_factory=list)
    name: str = "recording"

    def predict(
        self,
        image_hu,
        box_xyxy,
        *,
        positive_clicks=(),
        negative_clicks=(),
        previous=None,
        window=None,
        scribbles=None,
    ):
        self.calls.append(
            {
                "box": tuple(box_xyxy),
                "positive": list(positive_clicks),
                "negative": list(negative_clicks),
                "previous": previous,
                "window": window,
                "scribbles": scribbles,
            }
        )
        return self.inner.predict(
            image_hu,
            box_xyxy,
            positive_clicks=positive_clicks,
            negative_clicks=negative_clicks,
            previous=previous,
            window=window,
            **({} if scribbles is None else {"scribbles": scribbles}),
        )


class StubbornBBox2Mask:
    """A model that ignores clicks and marks every pixel of the box as certain foreground
    (a worst case for the click rules: the negative-click pixel comes back from the model)."""

    name = "stubborn"

    def predict(
        self, image_hu, box_xyxy, *, positive_clicks=(), negative_clicks=(), previous=None, window=None
    ):
        probabilities = np.zeros(np.shape(image_hu), np.float32)
        x0, y0, x1, y1 = (round(v) for v in box_xyxy)
        probabilities[y0:y1, x0:x1] = 0.99
        logits = np.where(probabilities > 0, 4.6, -20.0).astype(np.float32)
        return MaskPrediction(logits=logits, probabilities=probabilities)


class GradientBBox2Mask:
    """Probabilities rising linearly from 0 (left edge of the box) to 1 (right edge): every
    threshold cuts the box somewhere, so critical regions always exist."""

    name = "gradient"

    def predict(
        self, image_hu, box_xyxy, *, positive_clicks=(), negative_clicks=(), previous=None, window=None
    ):
        shape = np.shape(image_hu)
        probabilities = np.zeros(shape, np.float32)
        x0, y0, x1, y1 = (round(v) for v in box_xyxy)
        ramp = np.linspace(0.0, 1.0, max(1, x1 - x0), dtype=np.float32)
        probabilities[y0:y1, x0:x1] = ramp[None, :]
        clipped = np.clip(probabilities, 1e-4, 1 - 1e-4)
        return MaskPrediction(logits=np.log(clipped / (1 - clipped)), probabilities=probabilities)
