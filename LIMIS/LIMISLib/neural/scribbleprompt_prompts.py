"""Prompt encoding exactly as ScribblePrompt does it (5 input channels at 128 x 128).

What the released code does (github halleewong/ScribblePrompt, ``scribbleprompt/models/unet.py``:
``rescale_inputs`` then ``prepare_inputs``), and therefore what this module reproduces bit for bit:

* **image**: grayscale, min-max scaled to [0, 1] (the authors assert the range), resized to
  128 x 128 with bilinear interpolation, ``align_corners=False``;
* **box** ``(x0, y0, x1, y1)`` in pixels of the (cropped) image: each coordinate is multiplied by
  ``128 / W`` (x) or ``128 / H`` (y) **in float32** (a float32 tensor times a Python float: torch
  rounds the factor to float32 first) and **truncated** toward zero; the channel is 1 on
  ``[min(y):max(y), min(x):max(x)]`` (end excluded) and 0 elsewhere;
* **clicks** ``(x, y)`` with label 1 (positive) or 0 (negative), scaled the same way, in one list
  (here: the positive clicks, then the negative ones). ``click_onehot`` writes *both* maps at each
  click: positive map = label, negative map = 1 - label, so when two clicks land on the same grid
  pixel the later one decides that pixel on both maps;
* **scribbles** (optional, 2 x H x W: positive, negative; float32): resized bilinearly
  (``align_corners=False``), added to the click maps and clamped to [0, 1];
* **previous prediction**: the previous step's **logits** at 128 x 128 (zeros on the first step).

Boxes follow :mod:`LIMISLib.model_interfaces`: continuous pixel edges, ``x0 <= x < x1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional

from ..exceptions import InvalidPromptError
from ..model_interfaces import check_scribbles
from .scribbleprompt_unet import INPUT_SIZE

Box = tuple[float, float, float, float]
Point = tuple[float, float]


def minmax_normalise(image: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the image's own min and max (float32; a constant image gives zeros)."""
    image = np.asarray(image, dtype=np.float32)
    low, high = float(image.min()), float(image.max())
    if not math.isfinite(low) or not math.isfinite(high):
        raise InvalidPromptError(
            "The image contains NaN or infinite values; BBox2Mask needs finite intensities."
        )
    if high <= low:
        return np.zeros_like(image, dtype=np.float32)
    return ((image - low) / (high - low)).astype(np.float32)


def resize_image(image01: np.ndarray | torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """(H, W) image -> (1, 1, size, size) float tensor, bilinear with ``align_corners=False``."""
    tensor = torch.as_tensor(np.asarray(image01, dtype=np.float32))[None, None]
    if tuple(tensor.shape[-2:]) == (size, size):
        return tensor
    return functional.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)


def scale_to_grid(
    points_xy: Sequence[Sequence[float]], image_shape: tuple[int, int], size: int = INPUT_SIZE
) -> list[tuple[int, int]]:
    """Pixel ``(x, y)`` pairs of an (H, W) image -> integer coordinates on the size x size grid.

    As ScribblePrompt's ``rescale_inputs``: float32 coordinate times the float32 factor
    ``size / W`` (``size / H``), truncated toward zero.
    """
    height, width = image_shape
    factors = np.array([size / width, size / height], dtype=np.float32)
    points = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2)
    scaled = np.trunc(points * factors).astype(np.int64)  # float32 x float32 -> float32, like torch
    return [(int(x), int(y)) for x, y in scaled]


def box_on_grid(
    box_xyxy: Box, image_shape: tuple[int, int], size: int = INPUT_SIZE
) -> tuple[int, int, int, int]:
    """A box in image pixels -> integer ``(x0, y0, x1, y1)`` on the grid (corners scaled, truncated)."""
    (x0, y0), (x1, y1) = scale_to_grid(
        [(box_xyxy[0], box_xyxy[1]), (box_xyxy[2], box_xyxy[3])], image_shape, size
    )
    return x0, y0, x1, y1


def rasterise_box(box_grid: Sequence[int], size: int = INPUT_SIZE) -> np.ndarray:
    """(size, size) float32 map: 1 on rows ``min(y):max(y)`` and columns ``min(x):max(x)``, end excluded."""
    x0, y0, x1, y1 = (int(v) for v in box_grid)
    channel = np.zeros((size, size), dtype=np.float32)
    channel[max(min(y0, y1), 0) : max(y0, y1), max(min(x0, x1), 0) : max(x0, x1)] = 1.0
    return channel


def rasterise_clicks(points_grid: Sequence[Sequence[int]], size: int = INPUT_SIZE) -> np.ndarray:
    """(size, size) float32 map with one pixel set to 1 per click ``(x, y)`` on the grid."""
    return click_channels(points_grid, (), size)[0]


def click_channels(
    positive_grid: Sequence[Sequence[int]], negative_grid: Sequence[Sequence[int]], size: int = INPUT_SIZE
) -> np.ndarray:
    """(2, size, size) float32 click maps as ``click_onehot``: each click sets label / 1 - label.

    The clicks are applied in order (positives, then negatives), so a later click on the same grid
    pixel overrides an earlier one on both maps.
    """
    channels = np.zeros((2, size, size), dtype=np.float32)
    labelled = [(point, 1.0) for point in positive_grid] + [(point, 0.0) for point in negative_grid]
    for (x, y), label in labelled:
        if not (0 <= x < size and 0 <= y < size):
            raise InvalidPromptError(f"Click ({x}, {y}) lies outside the {size} x {size} model grid.")
        channels[0, int(y), int(x)] = label
        channels[1, int(y), int(x)] = 1.0 - label
    return channels


def resize_scribbles(scribbles: np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """(2, H, W) -> (1, 2, size, size), bilinear with ``align_corners=False`` (as ``rescale_inputs``)."""
    tensor = torch.as_tensor(np.asarray(scribbles, dtype=np.float32))[None]
    return functional.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)


def encode_prompts(
    image01: np.ndarray,
    box_xyxy: Box | None,
    *,
    positive_clicks: Sequence[Point] = (),
    negative_clicks: Sequence[Point] = (),
    scribbles: np.ndarray | None = None,
    previous_logits: np.ndarray | torch.Tensor | None = None,
    size: int = INPUT_SIZE,
) -> torch.Tensor:
    """The (1, 5, size, size) network input for one image in [0, 1] and its prompts.

    Box and clicks are in pixels of ``image01`` (H, W); ``scribbles`` is (2, H, W) (positive,
    negative); ``previous_logits`` is already (size, size).
    """
    image01 = np.asarray(image01, dtype=np.float32)
    if image01.ndim != 2:
        raise InvalidPromptError(f"ScribblePrompt takes one 2D image, got shape {image01.shape}.")
    if image01.size and (float(image01.min()) < 0.0 or float(image01.max()) > 1.0):
        raise InvalidPromptError("The image must be scaled to [0, 1] first (see minmax_normalise).")
    shape = image01.shape
    image = resize_image(image01, size)
    box = torch.zeros((1, 1, size, size))
    if box_xyxy is not None:
        box[0, 0] = torch.from_numpy(rasterise_box(box_on_grid(box_xyxy, shape, size), size))
    positive_grid = scale_to_grid(positive_clicks, shape, size)
    negative_grid = scale_to_grid(negative_clicks, shape, size)
    clicks = torch.from_numpy(click_channels(positive_grid, negative_grid, size))[None]
    if scribbles is not None:
        scribble = resize_scribbles(check_scribbles(scribbles, shape), size)
        clicks = torch.clamp(clicks + scribble, 0.0, 1.0)
    previous = torch.zeros((1, 1, size, size))
    if previous_logits is not None:
        previous_tensor = torch.as_tensor(np.asarray(previous_logits, dtype=np.float32))
        if tuple(previous_tensor.shape[-2:]) != (size, size):
            raise InvalidPromptError(
                f"Previous logits must be {size} x {size}, got {tuple(previous_tensor.shape)}."
            )
        previous[0, 0] = previous_tensor.reshape(size, size)
    return torch.cat((image, box, clicks, previous), dim=1)
