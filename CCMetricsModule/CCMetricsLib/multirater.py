"""Multi-rater analysis (Peak Ground Truth): how far can a model's score meaningfully rise?

Reference labels are not ground truth: raters disagree. Following the Peak Ground Truth position
paper (notes in ``shared/reference/notes_multirater_label_quality.md``), the attainable similarity
is bracketed by

- **inter-rater agreement** (different raters on the same case, a lower bound) and
- **intra-rater agreement** (one rater annotating the same case twice, an upper bound).

Agreement measures (the paper names none; our choice): Dice ``2|A∩B| / (|A|+|B|)`` and CC-Dice.
CC-Dice is asymmetric (the Voronoi regions come from the reference), so each pair is scored in both
directions and the pair's value is their mean. Inter-rater agreement = mean over all pairs of
different raters; intra-rater = mean over the pairs of one rater's sessions.

A model is scored against every rater (the rater as reference; mean over raters, comparable with
the rater-pair agreement) and against the STAPLE consensus (Warfield et al. 2004, SimpleITK
``STAPLEImageFilter`` over one session per rater, consensus = probability >= 0.5, with each rater's
estimated sensitivity and specificity). A model whose mean score exceeds intra-rater agreement is
flagged: it agrees with the raters better than a rater agrees with itself, i.e. it fits label noise.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .evaluation import compare, require_label_present
from .exceptions import GeometryMismatchError, InvalidParameterError
from .overlap import dice_from_counts
from .voronoi import as_binary_mask

AGREEMENT_METRICS = ("dice", "cc_dice")


def _mask(data: Any, label: int | None, name: str) -> np.ndarray:
    array = np.asarray(data.array if hasattr(data, "array") and hasattr(data, "ijk_to_ras") else data)
    if label is not None:
        array = array == label
    return as_binary_mask(array, name)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two binary masks (1.0 when both are empty)."""
    return float(dice_from_counts(int(np.count_nonzero(a & b)), int(a.sum()), int(b.sum())))


@dataclass
class PairAgreement:
    """Agreement of two annotations; ``cc_dice_a_ref``: CC-Dice with ``a`` as the reference."""

    a: str
    b: str
    kind: str  # "inter" (two raters) or "intra" (two sessions of one rater)
    dice: float
    cc_dice_a_ref: float
    cc_dice_b_ref: float

    @property
    def cc_dice(self) -> float:
        return (self.cc_dice_a_ref + self.cc_dice_b_ref) / 2.0

    def row(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "kind": self.kind,
            "dice": self.dice,
            "cc_dice_a_ref": self.cc_dice_a_ref,
            "cc_dice_b_ref": self.cc_dice_b_ref,
            "cc_dice": self.cc_dice,
        }


@dataclass
class MultiRaterResult:
    """Pairwise agreement, the inter/intra band, the STAPLE consensus and model scores."""

    raters: list[str]
    pairs: list[PairAgreement]
    inter: dict[str, float]
    intra: dict[str, float] | None
    consensus: Any  # boolean array, or a Volume when the raters were Volumes
    staple: dict[str, dict[str, float]]  # rater -> sensitivity, specificity
    models: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def pair_rows(self) -> list[dict[str, Any]]:
        return [pair.row() for pair in self.pairs]

    def model_rows(self) -> list[dict[str, Any]]:
        return [dict(model) for model in self.models]

    def to_dict(self) -> dict[str, Any]:
        return {
            "raters": self.raters,
            "pairs": self.pair_rows(),
            "inter_rater": self.inter,
            "intra_rater": self.intra,
            "staple": self.staple,
            "models": self.model_rows(),
            "warnings": self.warnings,
        }


def staple_consensus(masks: Sequence[np.ndarray], threshold: float = 0.5):
    """STAPLE over binary masks: (consensus mask, probability map, sensitivities, specificities)."""
    import SimpleITK as sitk

    images = [sitk.GetImageFromArray(np.ascontiguousarray(m, dtype=np.uint8)) for m in masks]
    staple = sitk.STAPLEImageFilter()
    staple.SetForegroundValue(1.0)
    probability = sitk.GetArrayFromImage(staple.Execute(images))
    return (
        probability >= threshold,
        probability,
        [float(v) for v in staple.GetSensitivity()],
        [float(v) for v in staple.GetSpecificity()],
    )


def _agreement(
    first: str, second: str, kind: str, masks: Mapping[str, np.ndarray], spacing, connectivity: int
) -> PairAgreement:
    a, b = masks[first], masks[second]
    options = {"metrics": ["dice"], "spacing": spacing, "connectivity": connectivity, "spacing_order": "kji"}
    return PairAgreement(
        first,
        second,
        kind,
        dice(a, b),
        compare(a, {second: b}, **options)[second].mean["dice"],
        compare(b, {first: a}, **options)[first].mean["dice"],
    )


def _band_position(score: float, inter: float, intra: float | None) -> str:
    if intra is not None and score > intra:
        return "above intra-rater agreement"
    if score >= inter:
        return "within the band" if intra is not None else "above inter-rater agreement"
    return "below inter-rater agreement"


def multirater_agreement(
    raters: Mapping[str, Any],
    repeats: Mapping[str, Sequence[Any]] | None = None,
    predictions: Mapping[str, Any] | None = None,
    *,
    label: int | None = None,
    spacing: float | Sequence[float] | None = None,
    connectivity: int = 26,
    progress: Callable[[int, int, str], None] | None = None,
) -> MultiRaterResult:
    """Agreement of several raters' masks of one case, their STAPLE consensus and model scores.

    Args:
        raters: name -> mask (array or Volume), one session per rater (at least two raters).
        repeats: rater name -> further sessions of that rater (intra-rater agreement).
        predictions: model name -> mask, scored against every rater and the consensus.
        label: compare this value of label maps.
        spacing: mm per array axis (k, j, i) for raw arrays; Volumes bring their own.
        connectivity: 6, 18 or 26 for the CC-Dice components.
        progress: ``progress(index, total, step)`` before each pair, the STAPLE consensus and each
            model (a GUI's progress bar; an exception it raises, e.g. on Cancel, ends the analysis).

    Raises InvalidParameterError for fewer than two raters or a repeat of an unknown rater,
    LabelNotFoundError for a ``label`` no mask holds, GeometryMismatchError for different grids.
    """
    repeats = dict(repeats or {})
    predictions = dict(predictions or {})
    if len(raters) < 2:
        raise InvalidParameterError(f"Multi-rater analysis needs at least two raters, got {len(raters)}.")
    unknown = [name for name in repeats if name not in raters]
    if unknown:
        raise InvalidParameterError(
            f"repeat sessions given for {unknown}, which are not among the raters {list(raters)}."
        )
    first_name, first = next(iter(raters.items()))
    volume = first if hasattr(first, "ijk_to_ras") else None
    if volume is not None:
        spacing = tuple(volume.spacing_kji_mm)
    every = {**raters, **predictions}
    every.update({f"{r} (session {i + 2})": m for r, ms in repeats.items() for i, m in enumerate(ms)})
    for name, data in every.items():
        if volume is not None and hasattr(data, "ijk_to_ras"):
            volume.require_same_grid(data, (first_name, name))
    if label is not None:
        require_label_present(label, every)
    masks = {name: _mask(data, label, name) for name, data in every.items()}
    shape = masks[first_name].shape
    for name, mask in masks.items():
        if mask.shape != shape:
            raise GeometryMismatchError(
                f"{first_name} has {shape} voxels but {name} has {mask.shape}; all masks of one case must "
                "lie on the same grid (resample them first)."
            )
    spacing = (1.0, 1.0, 1.0) if spacing is None else spacing

    names = list(raters)
    planned = [(a, b, "inter") for a, b in itertools.combinations(names, 2)]
    for rater, sessions in repeats.items():
        session_names = [rater] + [f"{rater} (session {i + 2})" for i in range(len(sessions))]
        planned += [(a, b, "intra") for a, b in itertools.combinations(session_names, 2)]
    total = len(planned) + 1 + len(predictions)

    def step(index: int, text: str) -> None:
        if progress is not None:
            progress(index, total, text)

    pairs = []
    for index, (a, b, kind) in enumerate(planned):
        step(index, f"pair {a} vs {b}")
        pairs.append(_agreement(a, b, kind, masks, spacing, connectivity))

    def band(kind: str) -> dict[str, float] | None:
        chosen = [p for p in pairs if p.kind == kind]
        if not chosen:
            return None
        return {metric: float(np.mean([getattr(p, metric) for p in chosen])) for metric in AGREEMENT_METRICS}

    inter, intra = band("inter"), band("intra")
    step(len(planned), f"STAPLE consensus of {len(names)} raters")
    consensus, _, sensitivity, specificity = staple_consensus([masks[n] for n in names])
    staple = {n: {"sensitivity": sensitivity[i], "specificity": specificity[i]} for i, n in enumerate(names)}

    models, warnings = [], []
    options = {"metrics": ["dice"], "spacing": spacing, "connectivity": connectivity, "spacing_order": "kji"}
    for index, model in enumerate(predictions, start=len(planned) + 1):
        step(index, f"model {model}")
        prediction = masks[model]
        per_rater_cc = [compare(masks[r], {model: prediction}, **options)[model].mean["dice"] for r in names]
        row: dict[str, Any] = {
            "model": model,
            "dice": float(np.mean([dice(prediction, masks[r]) for r in names])),
            "cc_dice": float(np.mean(per_rater_cc)),
            "dice_vs_consensus": dice(prediction, consensus),
            "cc_dice_vs_consensus": compare(consensus, {model: prediction}, **options)[model].mean["dice"],
        }
        for metric in AGREEMENT_METRICS:
            row[f"{metric}_band"] = _band_position(
                row[metric], inter[metric], intra[metric] if intra else None
            )
            if intra is not None and row[metric] > intra[metric]:
                warnings.append(
                    f"{model}: mean {metric} against the raters {row[metric]:.3f} exceeds intra-rater "
                    f"agreement {intra[metric]:.3f}; the model may be fitting label noise."
                )
        models.append(row)

    consensus_out = volume.with_array(consensus.astype(np.uint8)) if volume is not None else consensus
    return MultiRaterResult(names, pairs, inter, intra, consensus_out, staple, models, warnings)


def plot_agreement(result: MultiRaterResult, path: str | os.PathLike, *, title: str = "") -> Path:
    """A PNG: per metric, the inter..intra band, every pair's agreement, every model's mean score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        1, len(AGREEMENT_METRICS), figsize=(11, 1.6 + 0.45 * (len(result.models) + 3))
    )
    for axis, metric in zip(np.atleast_1d(axes), AGREEMENT_METRICS, strict=True):
        rows = [("inter-rater pairs", [p for p in result.pairs if p.kind == "inter"], "tab:gray")]
        if result.intra is not None:
            rows.append(("intra-rater pairs", [p for p in result.pairs if p.kind == "intra"], "tab:blue"))
        labels = []
        for y, (text, chosen, colour) in enumerate(rows):
            axis.scatter([getattr(p, metric) for p in chosen], [y] * len(chosen), color=colour, zorder=3)
            labels.append(text)
        inter = result.inter[metric]
        intra = result.intra[metric] if result.intra else None
        if intra is not None:
            axis.axvspan(min(inter, intra), max(inter, intra), color="tab:green", alpha=0.18, label="band")
        axis.axvline(inter, color="tab:gray", ls="--", label=f"inter {inter:.3f}")
        if intra is not None:
            axis.axvline(intra, color="tab:blue", ls="--", label=f"intra {intra:.3f}")
        for offset, model in enumerate(result.models):
            y = len(rows) + offset
            above = intra is not None and model[metric] > intra
            axis.scatter([model[metric]], [y], marker="D", color="tab:red" if above else "black", zorder=3)
            labels.append(f"{model['model']}{' (above intra!)' if above else ''}")
        axis.set_yticks(range(len(labels)), labels)
        axis.set_ylim(-0.7, len(labels) - 0.3)
        axis.invert_yaxis()
        low = min([inter] + [getattr(p, metric) for p in result.pairs] + [m[metric] for m in result.models])
        axis.set_xlim(max(0.0, low - 0.05), 1.0)
        axis.set_xlabel("Dice" if metric == "dice" else "CC-Dice (mean of both directions)")
        axis.grid(axis="x", alpha=0.3)
        axis.legend(loc="lower left", fontsize=8)
    figure.suptitle(title or "Agreement band (Peak Ground Truth): inter- to intra-rater")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)
    return path


def format_agreement_table(result: MultiRaterResult) -> str:
    """Plain-text tables of the pairs, the band and the models for the terminal."""

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) and math.isfinite(value) else str(value)

    lines = [f"{'pair':<40} {'kind':<6} {'Dice':>6} {'CC-Dice a->b':>12} {'b->a':>6} {'mean':>6}"]
    for p in result.pairs:
        lines.append(
            f"{(p.a + ' vs ' + p.b)[:40]:<40} {p.kind:<6} {cell(p.dice):>6} {cell(p.cc_dice_a_ref):>12} "
            f"{cell(p.cc_dice_b_ref):>6} {cell(p.cc_dice):>6}"
        )
    intra = result.intra or {}
    lines.append("")
    lines.append(
        f"band: Dice inter {cell(result.inter['dice'])} .. intra {cell(intra.get('dice', 'n/a'))}; "
        f"CC-Dice inter {cell(result.inter['cc_dice'])} .. intra {cell(intra.get('cc_dice', 'n/a'))}"
    )
    for model in result.models:
        lines.append(
            f"{model['model']}: Dice {cell(model['dice'])} ({model['dice_band']}), CC-Dice "
            f"{cell(model['cc_dice'])} ({model['cc_dice_band']}), vs STAPLE consensus Dice "
            f"{cell(model['dice_vs_consensus'])}, CC-Dice {cell(model['cc_dice_vs_consensus'])}"
        )
    return "\n".join(lines)
