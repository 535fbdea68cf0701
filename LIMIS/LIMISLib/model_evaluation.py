"""``eval-lang2bbox`` and ``eval-bbox2mask``: the two evaluations the dissertation reports.

* **Lang2BBox** (3.3.3.1): COCO mAP (IoU 0.50:0.95), mAP@50 and mAP@75, per structure and
  overall, computed by ``faster-coco-eval`` (a maintained COCO evaluation, the same numbers as
  pycocotools). Every slice is prompted with all structures of the vocabulary; each structure
  gets its highest-scoring box (LIMIS picks one box per structure) with its score as the
  detection confidence; ground truth is one box per present structure.
* **BBox2Mask** (3.3.3.2): Dice per structure for the ablation the paper reports: whole image
  vs crop, without / with the organ's CT window, box enlarged by 0 / 10 / 20 px
  (:data:`PAPER_ABLATION`; ``full_grid`` runs all 12 combinations). Boxes are the ground-truth
  boxes, or a detector's boxes when one is given.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .bbox2mask import enlarge_box
from .ct_windows import window_for_structure
from .exceptions import StructureNotFoundError
from .training_data import SliceDataset, structure_masks

METRIC_NAMES = ("mAP", "mAP50", "mAP75")


# ---------------------------------------------------------------------------------- Lang2BBox
def _coco_stats(
    ground_truth: dict, detections: list[dict], category_ids: Sequence[int] | None
) -> dict[str, float]:
    from faster_coco_eval import COCO, COCOeval_faster

    quiet = lambda *args, **kwargs: None  # noqa: E731
    gt = COCO(ground_truth, print_function=quiet)
    if not detections:
        return dict.fromkeys(METRIC_NAMES, 0.0)
    dt = gt.loadRes(detections)
    evaluation = COCOeval_faster(gt, dt, "bbox", print_function=quiet)
    if category_ids is not None:
        evaluation.params.catIds = list(category_ids)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    stats = [float(v) for v in evaluation.stats[:3]]
    return {
        name: (value if value >= 0 else float("nan")) for name, value in zip(METRIC_NAMES, stats, strict=True)
    }


def coco_box_metrics(
    ground_truth_boxes: Sequence[dict[str, Sequence[float]]],
    detections: Sequence[dict[str, tuple[Sequence[float], float]]],
    image_shapes: Sequence[tuple[int, int]],
    structures: Sequence[str],
) -> dict:
    """COCO metrics for per-image ground truth ``{name: xyxy}`` and detections ``{name: (xyxy, score)}``.

    Returns ``{"overall": {mAP, mAP50, mAP75}, "per_structure": {name: {...}}}``; a structure
    without ground truth gets NaN.
    """
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(structures)]
    category_of = {name: i + 1 for i, name in enumerate(structures)}
    images, annotations, results = [], [], []
    for image_id, (boxes, found, shape) in enumerate(
        zip(ground_truth_boxes, detections, image_shapes, strict=True)
    ):
        images.append({"id": image_id + 1, "height": int(shape[0]), "width": int(shape[1])})
        for name, (x0, y0, x1, y1) in boxes.items():
            if name not in category_of:
                continue
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id + 1,
                    "category_id": category_of[name],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
        for name, ((x0, y0, x1, y1), score) in found.items():
            if name in category_of:
                results.append(
                    {
                        "image_id": image_id + 1,
                        "category_id": category_of[name],
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "score": float(score),
                    }
                )
    ground_truth = {"images": images, "annotations": annotations, "categories": categories}
    present = sorted({a["category_id"] for a in annotations})
    overall = (
        _coco_stats(ground_truth, results, present) if present else dict.fromkeys(METRIC_NAMES, float("nan"))
    )
    per_structure = {}
    for name in structures:
        cid = category_of[name]
        per_structure[name] = (
            _coco_stats(ground_truth, results, [cid])
            if cid in present
            else dict.fromkeys(METRIC_NAMES, float("nan"))
        )
    return {
        "overall": overall,
        "per_structure": per_structure,
        "n_images": len(images),
        "n_boxes": len(annotations),
    }


def evaluate_lang2bbox(
    detector,
    data: SliceDataset,
    *,
    structures: Sequence[str] | None = None,
    max_slices: int | None = None,
    progress=None,
) -> dict:
    """COCO box metrics of a :class:`.neural.grounding_dino.GroundingDinoLang2BBox` on prepared slices."""
    structures = list(structures or data.structures)
    records = data.records[: max_slices or len(data.records)]
    iterator = progress(records, len(records), "eval-lang2bbox") if progress else records
    truths, found, shapes = [], [], []
    for record in iterator:
        arrays = data.load_arrays(record)
        truths.append({k: v for k, v in record["boxes"].items() if k in structures})
        found.append(detector.detect_normalised(arrays["image"], structures))
        shapes.append(arrays["image"].shape)
    return coco_box_metrics(truths, found, shapes, structures)


# ---------------------------------------------------------------------------------- BBox2Mask
@dataclass(frozen=True)
class AblationSetting:
    """One row of the BBox2Mask ablation."""

    crop_to_box: bool
    use_window: bool
    box_enlargement_px: float

    @property
    def label(self) -> str:
        return (
            f"{'crop' if self.crop_to_box else 'whole image'}, "
            f"{'CT window' if self.use_window else 'min-max'}, box +{self.box_enlargement_px:g} px"
        )


#: The sequence of the dissertation (Dice 53 -> 58 -> 63 -> 66, and 54 with +20 px).
PAPER_ABLATION: tuple[AblationSetting, ...] = (
    AblationSetting(False, False, 0),
    AblationSetting(True, False, 0),
    AblationSetting(True, True, 0),
    AblationSetting(True, True, 10),
    AblationSetting(True, True, 20),
)


def full_ablation_grid() -> tuple[AblationSetting, ...]:
    """All 12 combinations (whole/crop x window/min-max x 0/10/20 px)."""
    return tuple(
        AblationSetting(crop, window, margin)
        for crop in (False, True)
        for window in (False, True)
        for margin in (0, 10, 20)
    )


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    prediction, reference = np.asarray(prediction, bool), np.asarray(reference, bool)
    total = int(prediction.sum()) + int(reference.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(prediction, reference).sum()) / total


def evaluate_bbox2mask(
    bbox2mask,
    data: SliceDataset,
    *,
    settings: Iterable[AblationSetting] = PAPER_ABLATION,
    structures: Sequence[str] | None = None,
    detector=None,
    score_threshold: float = 0.0,
    threshold: float = 0.5,
    max_slices: int | None = None,
    progress=None,
) -> dict:
    """Dice per structure for every ablation setting.

    Returns ``{"settings": [label, ...], "per_structure": {name: {label: mean Dice}},
    "mean": {label: mean Dice over all (slice, structure) pairs}, "count": {name: n}}``.
    """
    settings = list(settings)
    structures = list(structures or data.structures)
    records = [r for r in data.records if any(name in r["boxes"] for name in structures)]
    records = records[: max_slices or len(records)]
    variants = []
    for setting in settings:
        variant = copy.copy(bbox2mask)  # shares the network, differs in the crop switch
        variant.crop_to_box = setting.crop_to_box
        variants.append(variant)
    scores: dict[str, dict[str, list[float]]] = {s.label: {n: [] for n in structures} for s in settings}
    iterator = progress(records, len(records), "eval-bbox2mask") if progress else records
    for record in iterator:
        arrays = data.load_arrays(record)
        image_hu = arrays["image_hu"].astype(np.float32)
        present = [name for name in structures if name in record["boxes"]]
        masks = structure_masks(arrays["labels"], present)
        boxes = {name: tuple(record["boxes"][name]) for name in present}
        if detector is not None:
            boxes = {}
            for name in present:
                try:
                    boxes[name] = detector.detect(
                        image_hu, name, candidates=structures, score_threshold=score_threshold
                    ).box_xyxy
                except StructureNotFoundError:
                    boxes[name] = None
        for setting, variant in zip(settings, variants, strict=True):
            for name in present:
                if boxes[name] is None:
                    scores[setting.label][name].append(0.0)
                    continue
                box = enlarge_box(boxes[name], setting.box_enlargement_px, image_hu.shape)
                window = window_for_structure(name) if setting.use_window else None
                prediction = variant.predict(image_hu, box, window=window)
                scores[setting.label][name].append(dice(prediction.mask(threshold), masks[name]))
    labels = [s.label for s in settings]
    per_structure = {name: {label: _mean(scores[label][name]) for label in labels} for name in structures}
    mean = {label: _mean([v for name in structures for v in scores[label][name]]) for label in labels}
    count = {name: len(scores[labels[0]][name]) if labels else 0 for name in structures}
    return {"settings": labels, "per_structure": per_structure, "mean": mean, "count": count}


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


# ---------------------------------------------------------------------------------- tables
def _fmt(value: float) -> str:
    return "   -  " if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.3f}"


def format_lang2bbox_table(result: dict) -> str:
    """A plain-text table: one row per structure and the overall row."""
    width = max([len("overall"), *(len(n) for n in result["per_structure"])])
    lines = [f"{'structure':{width}s}  {'mAP':>6s}  {'mAP@50':>6s}  {'mAP@75':>6s}"]
    for name, metrics in result["per_structure"].items():
        lines.append(f"{name:{width}s}  " + "  ".join(_fmt(metrics[m]) for m in METRIC_NAMES))
    lines.append(f"{'overall':{width}s}  " + "  ".join(_fmt(result["overall"][m]) for m in METRIC_NAMES))
    lines.append(f"({result['n_boxes']} ground-truth boxes on {result['n_images']} slices)")
    return "\n".join(lines)


def format_bbox2mask_table(result: dict) -> str:
    """A plain-text table: one row per ablation setting, one column per structure, and the mean."""
    names = [n for n, c in result["count"].items() if c > 0]
    short = {n: n if len(n) <= 12 else n[:12] for n in names}
    width = max([len("setting"), *(len(label) for label in result["settings"])])
    header = f"{'setting':{width}s}  " + "  ".join(f"{short[n]:>12s}" for n in names) + f"  {'mean':>6s}"
    lines = [header]
    for label in result["settings"]:
        cells = "  ".join(f"{_fmt(result['per_structure'][n][label]):>12s}" for n in names)
        lines.append(f"{label:{width}s}  {cells}  {_fmt(result['mean'][label])}")
    counts = ", ".join(f"{n} {result['count'][n]}" for n in names)
    lines.append(f"(Dice; cases per structure: {counts})")
    return "\n".join(lines)
