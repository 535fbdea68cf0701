"""Clicks, scribbles and boxes reach ScribblePrompt's channels bit-identically to the official encoder.

The oracle below is an independent re-implementation of the authors' code (github
halleewong/ScribblePrompt, ``scribbleprompt/models/unet.py``: ``rescale_inputs``,
``prepare_inputs``, ``click_onehot``, ``bbox_shaded``; ``scribbleprompt/models/sam.py``:
``scribbles_to_clicks``, ``prepare_coords``), written from their logic with torch exactly as they
call it, including its quirks: the resize always runs (``[h, w] != input_size`` compares a list with
a tuple), coordinates are scaled in float32 and truncated by ``.int()``, and ``click_onehot``
writes both click maps at every click, so a later click wins a shared grid pixel.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from LIMISLib.bbox2mask import PreparedPrompt  # noqa: E402
from LIMISLib.neural.scribbleprompt_prompts import encode_prompts  # noqa: E402
from LIMISLib.neural.scribbleprompt_sam import sam_prompts  # noqa: E402

pytestmark = pytest.mark.torch


# ----------------------------------------------------------------------------- the oracle
def official_rescale_inputs(inputs: dict, input_size=(128, 128)) -> dict:
    h, w = inputs["img"].shape[-2:]
    if [h, w] != input_size:  # always true in the original (list vs tuple)
        inputs["img"] = F.interpolate(inputs["img"], size=input_size, mode="bilinear")
        if inputs.get("scribbles") is not None:
            inputs["scribbles"] = F.interpolate(inputs["scribbles"], size=input_size, mode="bilinear")
        if inputs.get("box") is not None:
            coords = inputs["box"].clone().reshape(-1, 2, 2)
            coords[..., 0] = coords[..., 0] * (input_size[1] / w)
            coords[..., 1] = coords[..., 1] * (input_size[0] / h)
            inputs["box"] = coords.reshape(1, -1, 4).int()
        if inputs.get("point_coords") is not None:
            coords = inputs["point_coords"].clone()
            coords[..., 0] = coords[..., 0] * (input_size[1] / w)
            coords[..., 1] = coords[..., 1] * (input_size[0] / h)
            inputs["point_coords"] = coords.int()
    return inputs


def official_click_onehot(point_coords, point_labels, shape):
    batch, n = point_coords.shape[0], point_coords.shape[1]
    embed = torch.zeros((batch, 2, *shape))
    labels = point_labels.flatten().float()
    idx = torch.cat(
        (torch.arange(batch).reshape(-1, 1).repeat(1, n)[..., None], point_coords), axis=2
    ).reshape(-1, 3)
    embed[idx[:, 0], 0, idx[:, 2], idx[:, 1]] = labels
    embed[idx[:, 0], 1, idx[:, 2], idx[:, 1]] = 1.0 - labels
    return embed


def official_bbox_shaded(boxes, shape):
    boxes = boxes.int().cpu().numpy()
    embed = torch.zeros((boxes.shape[0], 1, *shape), dtype=torch.float32)
    for i in range(boxes.shape[0]):
        for j in range(boxes.shape[1]):
            x1, y1, x2, y2 = boxes[i, j, :]
            embed[i, 0, min(y1, y2) : max(y1, y2), min(x1, x2) : max(x1, x2)] = 1.0
    return embed


def official_prepare_inputs(inputs: dict) -> torch.Tensor:
    img = inputs["img"]
    shape = tuple(img.shape[-2:])
    box = (
        official_bbox_shaded(inputs["box"], shape)
        if inputs.get("box") is not None
        else torch.zeros(img.shape)
    )
    if inputs.get("point_coords") is not None:
        clicks = official_click_onehot(inputs["point_coords"], inputs["point_labels"], shape)
    else:
        clicks = torch.zeros((img.shape[0], 2, *shape))
    if inputs.get("scribbles") is not None:
        clicks = torch.clamp(clicks + inputs["scribbles"], min=0.0, max=1.0)
    mask = inputs["mask_input"] if inputs.get("mask_input") is not None else torch.zeros(img.shape)
    return torch.cat((img, box, clicks, mask), dim=-3)


def official_encoding(image01, box, positive, negative, scribbles, previous) -> torch.Tensor:
    clicks = list(positive) + list(negative)
    inputs = {
        "img": torch.from_numpy(image01)[None, None],
        "box": None if box is None else torch.tensor([[box]], dtype=torch.float32),
        "point_coords": torch.tensor([clicks], dtype=torch.float32) if clicks else None,
        "point_labels": torch.tensor([[1] * len(positive) + [0] * len(negative)]) if clicks else None,
        "scribbles": None if scribbles is None else torch.from_numpy(scribbles)[None],
        "mask_input": None if previous is None else torch.from_numpy(previous)[None, None],
    }
    return official_prepare_inputs(official_rescale_inputs(inputs)).float()


def official_sam_points(
    point_coords, point_labels, scribbles_128, old_size=(128, 128), new_size=(1024, 1024)
):
    """``ScribblePromptSAM.predict``'s point path: scribbles_to_clicks, concatenation, prepare_coords."""
    pos = torch.nonzero(scribbles_128[0])
    neg = torch.nonzero(scribbles_128[1])
    points = torch.cat([pos, neg], dim=0)
    points = torch.stack([points[:, 1], points[:, 0]], dim=-1).unsqueeze(0)
    labels = torch.cat([torch.ones((1, pos.shape[0])), torch.zeros((1, neg.shape[0]))], dim=1)
    if point_coords is not None:
        points = torch.cat([point_coords, points], dim=-2)
        labels = torch.cat([point_labels, labels], dim=-1)
    coords = points.clone().float()
    coords[..., 0] = coords[..., 0] * (new_size[1] / old_size[1])
    coords[..., 1] = coords[..., 1] * (new_size[0] / old_size[0])
    return coords, labels


# ----------------------------------------------------------------------------- random cases
def random_case(rng: np.random.Generator):
    height, width = int(rng.integers(16, 420)), int(rng.integers(16, 420))
    if rng.random() < 0.15:
        height, width = 128, 128
    image = rng.random((height, width)).astype(np.float32)

    def coordinate(limit: int) -> float:
        kind = rng.random()
        if kind < 0.3:  # exact multiples of the grid step: where float32 vs float64 scaling differ
            return float(np.float32(int(rng.integers(0, 128)) * limit / 128))
        if kind < 0.5:
            return float(int(rng.integers(0, limit)))
        return float(rng.uniform(0, limit - 1e-3))

    box = None
    if rng.random() < 0.85:
        xs = sorted(coordinate(width) for _ in range(2))
        ys = sorted(coordinate(height) for _ in range(2))
        box = (xs[0], ys[0], xs[1], ys[1])
    positive = [(coordinate(width), coordinate(height)) for _ in range(int(rng.integers(0, 5)))]
    negative = [(coordinate(width), coordinate(height)) for _ in range(int(rng.integers(0, 5)))]
    if positive and rng.random() < 0.3:  # a negative click on a positive one's grid pixel
        negative.append(positive[int(rng.integers(len(positive)))])
    scribbles = None
    if rng.random() < 0.7:
        scribbles = np.zeros((2, height, width), np.float32)
        for channel in (0, 1):
            for _ in range(int(rng.integers(0, 3))):  # random polylines, 1-3 px thick
                points = rng.uniform([0, 0], [width, height], size=(int(rng.integers(2, 6)), 2))
                for (xa, ya), (xb, yb) in itertools.pairwise(points):
                    for t in np.linspace(0, 1, 200):
                        x, y = int(xa + t * (xb - xa)), int(ya + t * (yb - ya))
                        r = int(rng.integers(0, 2))
                        scribbles[channel, max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1] = 1
    previous = rng.normal(0, 5, (128, 128)).astype(np.float32) if rng.random() < 0.5 else None
    return image, box, positive, negative, scribbles, previous


@pytest.mark.parametrize("seed", range(8))
def test_unet_inputs_are_bit_identical_to_the_official_encoder_on_random_cases(seed):
    rng = np.random.default_rng(1000 + seed)
    for _ in range(40):
        image, box, positive, negative, scribbles, previous = random_case(rng)
        ours = encode_prompts(
            image,
            box,
            positive_clicks=positive,
            negative_clicks=negative,
            scribbles=scribbles,
            previous_logits=previous,
        )
        theirs = official_encoding(image, box, positive, negative, scribbles, previous)
        assert ours.dtype == theirs.dtype == torch.float32
        assert torch.equal(ours, theirs), (image.shape, box, positive, negative)


def test_the_random_cases_exercise_what_could_differ():
    """The generator really produces shared click pixels, float32 rounding cases and scribbles."""
    rng = np.random.default_rng(1000)
    shared = float32_differs = scribbled = 0
    for _ in range(320):
        image, box, positive, negative, scribbles, _ = random_case(rng)
        height, width = image.shape
        fx, fy = np.float32(128 / width), np.float32(128 / height)
        on_grid = [
            {(int(np.float32(x) * fx), int(np.float32(y) * fy)) for x, y in c} for c in (positive, negative)
        ]
        shared += bool(on_grid[0] & on_grid[1])
        scribbled += scribbles is not None and bool(scribbles.any())
        for x, _ in positive + negative + ([] if box is None else [box[:2], box[2:]]):
            float32_differs += int(np.float32(x) * np.float32(128 / width)) != int(x * 128 / width)
    assert shared >= 10 and scribbled >= 100 and float32_differs >= 5


def test_a_negative_click_on_a_positive_clicks_pixel_clears_the_positive_map_there():
    x = encode_prompts(
        np.zeros((64, 64), np.float32), None, positive_clicks=[(10, 10)], negative_clicks=[(10.4, 10.2)]
    )
    assert x[0, 2, 20, 20] == 0 and x[0, 3, 20, 20] == 1


@pytest.mark.parametrize("seed", range(4))
def test_sam_points_from_clicks_and_scribbles_match_the_official_predictor(seed):
    rng = np.random.default_rng(2000 + seed)
    for _ in range(20):
        image, box, positive, negative, scribbles, _ = random_case(rng)
        height, width = image.shape
        box = box if box is not None else (0.0, 0.0, float(width), float(height))
        prepared = PreparedPrompt(
            crop=(0, 0, width, height),
            image01=image,
            box_in_crop=box,
            positive=positive,
            negative=negative,
            scribbles=scribbles,
        )
        _, boxes, points = sam_prompts(prepared)
        # the official predictor sees the 128 x 128 image: clicks and scribbles on that grid
        clicks = positive + negative
        coords = labels = None
        if clicks:
            grid = official_rescale_inputs(
                {
                    "img": torch.zeros(1, 1, height, width),
                    "point_coords": torch.tensor([clicks], dtype=torch.float32),
                }
            )["point_coords"]
            coords, labels = grid, torch.tensor([[1] * len(positive) + [0] * len(negative)])
        scribbles_128 = (
            torch.zeros(2, 128, 128)
            if scribbles is None
            else F.interpolate(torch.from_numpy(scribbles)[None], size=(128, 128), mode="bilinear")[0]
        )
        expected_coords, expected_labels = official_sam_points(coords, labels, scribbles_128)
        if expected_coords.shape[1] == 0:
            assert points is None
        else:
            assert torch.equal(points[0], expected_coords)
            assert torch.equal(points[1].float(), expected_labels.float())
        grid_box = official_rescale_inputs(
            {"img": torch.zeros(1, 1, height, width), "box": torch.tensor([[box]], dtype=torch.float32)}
        )["box"]
        expected_boxes = grid_box.reshape(-1, 2, 2).float()
        expected_boxes[..., 0] = expected_boxes[..., 0] * (1024 / 128)
        expected_boxes[..., 1] = expected_boxes[..., 1] * (1024 / 128)
        assert torch.equal(boxes, expected_boxes.reshape(-1, 4))
