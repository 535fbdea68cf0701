"""eval-lang2bbox gives COCO mAP / mAP@50 / mAP@75; eval-bbox2mask gives the paper's Dice ablation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from AnatomyCommonLib.image_io import write_volume
from LIMISLib.bbox2mask import enlarge_box
from LIMISLib.ct_windows import window_for_structure
from LIMISLib.model_evaluation import (
    PAPER_ABLATION,
    coco_box_metrics,
    dice,
    evaluate_bbox2mask,
    format_bbox2mask_table,
    format_lang2bbox_table,
    full_ablation_grid,
)
from LIMISLib.model_interfaces import MaskPrediction
from LIMISLib.training_data import PrepareSettings, SliceDataset, prepare_data

pytest.importorskip("faster_coco_eval")
NAMES = ["liver", "spleen"]


def shifted(box, dx):
    x0, y0, x1, y1 = box
    return (x0 + dx, y0, x1 + dx, y1)


def test_perfect_detections_score_one_everywhere():
    truth = [{"liver": (10, 10, 50, 40), "spleen": (60, 20, 80, 40)}, {"liver": (5, 5, 30, 30)}]
    found = [{n: (b, 0.9) for n, b in t.items()} for t in truth]
    result = coco_box_metrics(truth, found, [(100, 100)] * 2, NAMES)
    assert result["overall"] == {"mAP": 1.0, "mAP50": 1.0, "mAP75": 1.0}
    assert result["per_structure"]["spleen"]["mAP"] == 1.0


def test_a_box_with_iou_0_62_counts_at_50_and_60_percent_but_not_at_75():
    # 100 x 10 box shifted by 23.5 px: IoU = 76.5 / 123.5 = 0.619 -> matched at IoU 0.50, 0.55, 0.60 only.
    truth = [{"liver": (0, 0, 100, 10)}]
    found = [{"liver": (shifted((0, 0, 100, 10), 23.5), 0.8)}]
    result = coco_box_metrics(truth, found, [(50, 200)], NAMES)
    assert result["per_structure"]["liver"]["mAP50"] == pytest.approx(1.0)
    assert result["per_structure"]["liver"]["mAP75"] == pytest.approx(0.0)
    assert result["per_structure"]["liver"]["mAP"] == pytest.approx(0.3)
    assert math.isnan(result["per_structure"]["spleen"]["mAP"])  # no ground truth: not a zero


def test_ranking_by_score_gives_the_coco_average_precision():
    # two images: the right liver box scores 0.9, a wrong one 0.95 -> precision 1/2 at recall 0.5, 2/3 at 1.
    truth = [{"liver": (0, 0, 10, 10)}, {"liver": (0, 0, 10, 10)}]
    found = [{"liver": ((0, 0, 10, 10), 0.9)}, {"liver": ((50, 50, 60, 60), 0.95)}]
    result = coco_box_metrics(truth, found, [(100, 100)] * 2, NAMES)
    # COCO's 101-point interpolated precision: 0.5 for recall 0..0.5 (51 points), 0 above -> 51 * 0.5 / 101.
    assert result["overall"]["mAP50"] == pytest.approx(51 * 0.5 / 101, abs=1e-6)


def test_the_lang2bbox_table_lists_every_structure_and_the_overall_row():
    truth = [{"liver": (10, 10, 50, 40)}]
    table = format_lang2bbox_table(
        coco_box_metrics(truth, [{"liver": ((10, 10, 50, 40), 1.0)}], [(64, 64)], NAMES)
    )
    lines = table.splitlines()
    assert lines[0].split() == ["structure", "mAP", "mAP@50", "mAP@75"]
    assert lines[1].startswith("liver") and lines[3].startswith("overall")


def test_dice_of_two_masks():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:5], b[:, :5] = True, True
    assert dice(a, b) == pytest.approx(2 * 25 / 100)
    assert dice(np.zeros(3), np.zeros(3)) == 1.0


class BoxAsMask:
    """A BBox2Mask stand-in whose mask is the box it is given; records the settings it saw."""

    name = "box"

    def __init__(self) -> None:
        self.crop_to_box = True
        self.calls = []

    def predict(
        self, image_hu, box_xyxy, *, positive_clicks=(), negative_clicks=(), previous=None, window=None
    ):
        x0, y0, x1, y1 = (round(v) for v in box_xyxy)
        probabilities = np.zeros(image_hu.shape, np.float32)
        probabilities[y0:y1, x0:x1] = 1
        self.calls.append((self.crop_to_box, window, box_xyxy))
        return MaskPrediction(logits=probabilities * 20 - 10, probabilities=probabilities)


@pytest.fixture(scope="module")
def phantom_slices(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    phantom = make_phantom("tiny", seed=0)
    write_volume(phantom.ct, root / "images" / "c0.nii.gz")
    write_volume(phantom.labels, root / "labels" / "c0.nii.gz")
    prepare_data([("dap", root)], root / "prepared", PrepareSettings(spacing_mm=6.0, size=64))
    data = SliceDataset.load(root / "prepared")
    data.records = [r for r in data.records if {"liver", "spleen"} <= set(r["boxes"])][:3]
    return data


def test_bbox2mask_ablation_runs_the_paper_settings_and_its_dice_is_checked_independently(phantom_slices):
    stub = BoxAsMask()
    result = evaluate_bbox2mask(stub, phantom_slices, structures=NAMES)
    assert result["settings"] == [s.label for s in PAPER_ABLATION]
    assert result["count"] == {"liver": 3, "spleen": 3}
    # independent Dice of "the box enlarged by m px" against the liver mask
    for setting in PAPER_ABLATION:
        values = []
        for record in phantom_slices.records:
            labels = phantom_slices.load_arrays(record)["labels"]
            reference = labels == label_id("liver")
            x0, y0, x1, y1 = (
                round(v) for v in enlarge_box(record["boxes"]["liver"], setting.box_enlargement_px, (64, 64))
            )
            predicted = np.zeros((64, 64), bool)
            predicted[y0:y1, x0:x1] = True
            values.append(2 * (predicted & reference).sum() / (predicted.sum() + reference.sum()))
        assert result["per_structure"]["liver"][setting.label] == pytest.approx(np.mean(values))
    windows = {str(w) for _, w, _ in stub.calls}
    assert str(window_for_structure("liver")) in windows and "None" in windows
    assert {crop for crop, _, _ in stub.calls} == {True, False}
    table = format_bbox2mask_table(result)
    assert "whole image, min-max, box +0 px" in table and "crop, CT window, box +10 px" in table


def test_the_full_grid_has_the_twelve_combinations():
    grid = full_ablation_grid()
    assert len(grid) == 12 == len({s.label for s in grid})
