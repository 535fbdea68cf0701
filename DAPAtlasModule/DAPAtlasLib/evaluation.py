"""Evaluate DAP Atlas label maps against a labelled dataset: Dice and NSD per structure.

``python -m DAPAtlasLib evaluate PRED_DIR LABEL_DIR --mapping btcv`` pairs every reference case
with its prediction, maps DAP ids onto the dataset's structures (:mod:`.dataset_mappings`:
BTCV, WORD, TotalSegmentator, or a user's JSON/CSV file) and computes per case and structure:

* **Dice** ``2|P & R| / (|P| + |R|)``;
* **NSD** (normalised surface Dice, Nikolov et al.) at a tolerance in mm: the share of the
  surface voxels of P and R lying within the tolerance of the other's surface. Surfaces are the
  voxels of a mask removed by one binary erosion (6-connectivity); distances are Euclidean in
  physical units (the voxel spacing of each axis), as MONAI's ``compute_surface_dice``.

A structure whose reference is empty in a case is not evaluated there (it counts in neither mean);
an empty prediction for a present reference scores 0. The summary gives per structure the mean
and the sample SD over cases, and over structures the mean of the means ("Tot", as in the
dissertation's Table 3) with the SDs pooled by root mean square, ``sqrt(mean_l SD_l^2)`` (the
label-quality study's summary). A case that cannot be evaluated (no prediction, other grid,
unreadable file) is recorded with its reason; the others go on.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from AnatomyCommonLib.anatomy.label_schema import MAX_LABEL_ID, label_by_id, label_by_name
from AnatomyCommonLib.image_io import SUPPORTED_SUFFIXES, image_suffix, read_labelmap
from AnatomyCommonLib.volume import Volume

from .exceptions import (
    AnatomyToolkitError,
    GeometryMismatchError,
    InputNotFoundError,
    InvalidLabelValuesError,
    UnsupportedFormatError,
)

BUILTIN_MAPPINGS: tuple[str, ...] = ("btcv", "totalsegmentator", "word")
DEFAULT_TOLERANCE_MM = 2.0


# ---------------------------------------------------------------------------- mappings
@dataclass(frozen=True)
class MappedStructure:
    """One dataset structure: its label ids (or mask names) and the DAP labels it corresponds to."""

    name: str
    abbreviation: str
    reference: tuple[int | str, ...]
    dap_ids: tuple[int, ...]
    approximate: bool = False


@dataclass(frozen=True)
class DatasetMapping:
    """How a dataset's reference labels correspond to DAP labels."""

    name: str
    title: str
    structures: tuple[MappedStructure, ...]
    published_dice: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def by_mask_names(self) -> bool:
        """True when references are per-structure mask files (TotalSegmentator), not label ids."""
        return any(isinstance(r, str) for s in self.structures for r in s.reference)


def _dap_ids(values: Sequence, where: str) -> tuple[int, ...]:
    ids = []
    for value in values:
        try:
            ids.append(
                label_by_id(int(value)).id if str(value).strip().isdigit() else label_by_name(str(value)).id
            )
        except KeyError as error:
            raise UnsupportedFormatError(f"{where}: {error.args[0] if error.args else error}") from None
    if not ids:
        raise UnsupportedFormatError(f"{where}: no DAP label given.")
    return tuple(ids)


def _reference_values(values: Sequence) -> tuple[int | str, ...]:
    return tuple(int(v) if str(v).strip().isdigit() else str(v).strip() for v in values if str(v).strip())


def _mapping_from_json(data: dict, source: str) -> DatasetMapping:
    try:
        structures = tuple(
            MappedStructure(
                name=item["name"],
                abbreviation=item.get("abbreviation") or item["name"],
                reference=_reference_values(item["reference"]),
                dap_ids=_dap_ids(item["dap"], f"{source}, structure {item['name']!r}"),
                approximate=bool(item.get("approximate", False)),
            )
            for item in data["structures"]
        )
    except (KeyError, TypeError) as error:
        raise UnsupportedFormatError(
            f"{source}: a mapping needs 'structures' with 'name', 'reference' and 'dap' ({error})."
        ) from error
    published = {k: v for k, v in (data.get("published_dice_percent") or {}).items() if isinstance(v, dict)}
    return DatasetMapping(data.get("name", source), data.get("title", source), structures, published)


def _mapping_from_csv(text: str, source: str) -> DatasetMapping:
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"reference", "dap"} <= set(rows[0]):
        raise UnsupportedFormatError(f"{source}: a CSV mapping needs the columns reference and dap.")
    structures = []
    for number, row in enumerate(rows, start=2):
        reference = _reference_values(re.split(r"[;|]", row["reference"]))
        name = (row.get("name") or "").strip() or str(reference[0])
        structures.append(
            MappedStructure(
                name=name,
                abbreviation=(row.get("abbreviation") or "").strip() or name,
                reference=reference,
                dap_ids=_dap_ids(re.split(r"[;|]", row["dap"]), f"{source} line {number}"),
                approximate=(row.get("approximate") or "").strip().lower() in ("1", "true", "yes"),
            )
        )
    return DatasetMapping(Path(source).stem, Path(source).stem, tuple(structures))


def load_mapping(mapping: str | Path) -> DatasetMapping:
    """A shipped mapping (``btcv``, ``totalsegmentator``, ``word``) or a JSON/CSV mapping file.

    JSON: ``{"name", "title", "structures": [{"name", "abbreviation", "reference": [ids or mask
    names], "dap": [DAP names or ids], "approximate": false}]}``. CSV: columns ``reference`` and
    ``dap`` (several values separated by ``;``), optional ``name``, ``abbreviation``.
    """
    key = str(mapping).strip().lower()
    if key in BUILTIN_MAPPINGS:
        folder = resources.files("DAPAtlasLib") / "dataset_mappings"
        for suffix in (".json", ".csv"):
            item = folder / f"{key}{suffix}"
            if item.is_file():
                text = item.read_text(encoding="utf-8")
                return (
                    _mapping_from_json(json.loads(text), key)
                    if suffix == ".json"
                    else _mapping_from_csv(text, key)
                )
    path = Path(mapping)
    if not path.is_file():
        raise InputNotFoundError(
            f"Unknown mapping {mapping!r}: use {', '.join(BUILTIN_MAPPINGS)} "
            "or the path of a JSON/CSV mapping file."
        )
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            return _mapping_from_json(json.loads(text), str(path))
        except json.JSONDecodeError as error:
            raise UnsupportedFormatError(f"{path} is not valid JSON: {error}") from error
    if path.suffix.lower() == ".csv":
        return _mapping_from_csv(text, str(path))
    raise UnsupportedFormatError(f"{path}: a mapping file must be .json or .csv.")


# ---------------------------------------------------------------------------- metrics
def _bbox_union(boxes: Sequence[tuple[slice, ...] | None]) -> tuple[slice, ...] | None:
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return tuple(
        slice(min(b[d].start for b in boxes), max(b[d].stop for b in boxes)) for d in range(len(boxes[0]))
    )


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def dice_and_nsd(
    prediction: np.ndarray, reference: np.ndarray, spacing_mm: Sequence[float], tolerance_mm: float
) -> tuple[float, float]:
    """Dice and NSD (at ``tolerance_mm``) of two boolean masks with the given per-axis spacing.

    NaN for both when the reference is empty (not evaluable); 0 for both when only the
    prediction is empty.
    """
    from scipy import ndimage

    prediction = np.asarray(prediction, dtype=bool)
    reference = np.asarray(reference, dtype=bool)
    n_ref = int(reference.sum())
    if n_ref == 0:
        return math.nan, math.nan
    n_pred = int(prediction.sum())
    if n_pred == 0:
        return 0.0, 0.0
    dice = 2.0 * int(np.count_nonzero(prediction & reference)) / (n_pred + n_ref)
    # crop to the union with one voxel of background around it (the erosion sees the image border as
    # background either way); every surface voxel lies inside, so the distances are exact
    box = _bbox_union(ndimage.find_objects((prediction | reference).astype(np.uint8)))
    pred = np.pad(prediction[box], 1)
    ref = np.pad(reference[box], 1)
    pred_surface, ref_surface = _surface(pred), _surface(ref)
    to_ref = ndimage.distance_transform_edt(~ref_surface, sampling=spacing_mm)[pred_surface]
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=spacing_mm)[ref_surface]
    correct = int(np.count_nonzero(to_ref <= tolerance_mm)) + int(np.count_nonzero(to_pred <= tolerance_mm))
    nsd = correct / (to_ref.size + to_pred.size)
    return dice, nsd


# ---------------------------------------------------------------------------- cases
def _case_key(name: str) -> str:
    key = name.lower()
    for suffix in ("_dap", "_0000", "_seg", "_labels", "_label", "_pred"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return key


def _digits(name: str) -> str:
    return "".join(re.findall(r"\d+", name))


def _case_name(path: Path) -> str:
    return path.name[: -len(image_suffix(path))] if path.is_file() else path.name


def _entries(folder: Path, *, folders: bool) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file():
            try:
                image_suffix(path)
            except UnsupportedFormatError:
                continue
            found[_case_name(path)] = path
        elif folders and path.is_dir():
            found[path.name] = path
    return found


def pair_cases(predictions: Path, references: Path, *, reference_folders: bool) -> tuple[list, list[str]]:
    """``[(case, prediction or None, reference)]`` and the prediction names no reference matched.

    Names match after dropping ``_dap``/``_0000``-style endings, else by their digits when those
    are unique on both sides (BTCV's ``img0001`` and ``label0001``).
    """
    if references.is_file():
        if not predictions.is_file():
            raise UnsupportedFormatError(f"{references} is a file, so the prediction must be a file too.")
        return [(_case_name(references), predictions, references)], []
    for folder, what in ((predictions, "predictions"), (references, "labels")):
        if not folder.is_dir():
            raise InputNotFoundError(f"No such {what} folder: {folder}")
    preds = _entries(predictions, folders=False)
    refs = _entries(references, folders=reference_folders)
    if not refs:
        raise InputNotFoundError(f"{references} holds no label maps ({', '.join(SUPPORTED_SUFFIXES)}).")
    by_key = {_case_key(n): n for n in preds}
    digits: dict[str, list[str]] = {}
    for name in preds:
        digits.setdefault(_digits(name), []).append(name)
    ref_digits: dict[str, int] = {}
    for name in refs:
        ref_digits[_digits(name)] = ref_digits.get(_digits(name), 0) + 1
    pairs, used = [], set()
    for name, path in refs.items():
        match = by_key.get(_case_key(name))
        d = _digits(name)
        if match is None and d and len(digits.get(d, [])) == 1 and ref_digits[d] == 1:
            match = digits[d][0]
        if match is not None:
            used.add(match)
        pairs.append((name, preds[match] if match else None, path))
    return pairs, sorted(set(preds) - used)


@dataclass
class CaseEvaluation:
    """Dice and NSD of one case per structure abbreviation (NaN: reference empty), or its error."""

    case: str
    prediction: str | None
    reference: str
    dice: dict[str, float] = field(default_factory=dict)
    nsd: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _reference_masks(reference: Path, mapping: DatasetMapping, grid: Volume):
    """Yield (structure, reference mask or None) for a label map file or a folder of masks."""
    from scipy import ndimage

    if not mapping.by_mask_names:
        ref = read_labelmap(reference, name=f"labels {reference.name}")
        ref.require_same_grid(grid, ("the reference", "the prediction"))
        array = ref.array
        boxes = ndimage.find_objects(array)
        for structure in mapping.structures:
            ids = [r for r in structure.reference if isinstance(r, int)]
            box = _bbox_union([boxes[i - 1] for i in ids if 0 < i <= len(boxes)])
            yield structure, (box, np.isin(array[box], ids) if box is not None else None)
        return
    folder = reference / "segmentations" if (reference / "segmentations").is_dir() else reference
    if not folder.is_dir():
        raise UnsupportedFormatError(
            f"{reference}: mapping '{mapping.name}' compares per-structure masks, so each case must be a "
            "folder of <name>.nii.gz masks (or hold them in segmentations/)."
        )
    files = _entries(folder, folders=False)
    for structure in mapping.structures:
        masks = [files[str(r)] for r in structure.reference if str(r) in files]
        if not masks:
            yield structure, None  # mask not part of this dataset version: not evaluated
            continue
        union = None
        for path in masks:
            mask = read_labelmap(path, name=f"{reference.name}/{path.name}")
            mask.require_same_grid(grid, (f"mask {path.name}", "the prediction"))
            union = mask.array > 0 if union is None else union | (mask.array > 0)
        boxes = ndimage.find_objects(union.astype(np.uint8))
        box = boxes[0] if boxes else None
        yield structure, (box, union[box] if box is not None else None)


def evaluate_case(
    prediction: Path, reference: Path, mapping: DatasetMapping, tolerance_mm: float, case: str = ""
) -> CaseEvaluation:
    """Dice and NSD of every mapped structure of one case (raises on unreadable or mismatched input)."""
    from scipy import ndimage

    result = CaseEvaluation(case or reference.name, str(prediction), str(reference))
    pred = read_labelmap(prediction, name=f"prediction {prediction.name}")
    values = np.unique(pred.array)
    if values.max(initial=0) > MAX_LABEL_ID:
        raise InvalidLabelValuesError(
            f"prediction {prediction.name} holds values above {MAX_LABEL_ID} (e.g. {int(values.max())}): "
            "not a DAP Atlas label map."
        )
    pred_boxes = ndimage.find_objects(pred.array, max_label=MAX_LABEL_ID)
    spacing = pred.spacing_kji_mm
    for structure, ref in _reference_masks(reference, mapping, pred):
        key = structure.abbreviation
        if ref is None or ref[0] is None:
            result.dice[key] = result.nsd[key] = math.nan
            continue
        ref_box, ref_crop = ref
        pred_box = _bbox_union([pred_boxes[i - 1] for i in structure.dap_ids])
        box = _bbox_union([ref_box, pred_box])
        ref_mask = np.zeros([s.stop - s.start for s in box], dtype=bool)
        ref_mask[
            tuple(slice(r.start - b.start, r.stop - b.start) for r, b in zip(ref_box, box, strict=True))
        ] = ref_crop
        pred_mask = np.isin(pred.array[box], structure.dap_ids)
        result.dice[key], result.nsd[key] = dice_and_nsd(pred_mask, ref_mask, spacing, tolerance_mm)
    return result


# ---------------------------------------------------------------------------- summary
@dataclass(frozen=True)
class StructureSummary:
    """Mean and sample SD over cases of one structure's Dice and NSD (fractions 0..1)."""

    name: str
    abbreviation: str
    cases: int
    dice_mean: float
    dice_sd: float
    nsd_mean: float
    nsd_sd: float
    approximate: bool = False


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else math.nan


def rms_pooled_sd(sds: Sequence[float]) -> float:
    """``sqrt(mean(SD_l^2))`` over the structures with an SD."""
    values = np.asarray([s for s in sds if not math.isnan(s)], dtype=float)
    return float(np.sqrt(np.mean(values**2))) if values.size else math.nan


@dataclass
class EvaluationResult:
    """Every case, the failures, and the per-structure summary."""

    mapping: DatasetMapping
    tolerance_mm: float
    cases: list[CaseEvaluation]
    unmatched_predictions: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseEvaluation]:
        return [c for c in self.cases if c.error is not None]

    @property
    def evaluated(self) -> list[CaseEvaluation]:
        return [c for c in self.cases if c.error is None]

    def summary(self) -> list[StructureSummary]:
        rows = []
        for structure in self.mapping.structures:
            key = structure.abbreviation
            dice = [c.dice.get(key, math.nan) for c in self.evaluated]
            nsd = [c.nsd.get(key, math.nan) for c in self.evaluated]
            d_mean, d_sd = _mean_sd(dice)
            n_mean, n_sd = _mean_sd(nsd)
            count = sum(1 for v in dice if not math.isnan(v))
            rows.append(
                StructureSummary(
                    structure.name, key, count, d_mean, d_sd, n_mean, n_sd, structure.approximate
                )
            )
        return rows

    def totals(self) -> dict[str, float]:
        """Mean of the per-structure means and RMS-pooled SD, for Dice and NSD."""
        rows = [r for r in self.summary() if r.cases > 0]
        return {
            "dice_mean": float(np.mean([r.dice_mean for r in rows])) if rows else math.nan,
            "dice_sd_rms": rms_pooled_sd([r.dice_sd for r in rows]),
            "nsd_mean": float(np.mean([r.nsd_mean for r in rows])) if rows else math.nan,
            "nsd_sd_rms": rms_pooled_sd([r.nsd_sd for r in rows]),
        }

    def table_text(self) -> str:
        """The dissertation's Table 3 layout: a column per structure plus Tot, rows per metric (%)."""
        rows = self.summary()
        totals = self.totals()
        heads = [r.abbreviation + ("*" if r.approximate else "") for r in rows] + ["Tot"]
        first = max(22, *(len(k) + 2 for k in self.mapping.published_dice))
        width = max(6, *(len(h) + 1 for h in heads))

        def line(title: str, values: Sequence[float | str]) -> str:
            cells = [
                v if isinstance(v, str) else ("-" if math.isnan(v) else f"{100 * v:.1f}") for v in values
            ]
            return title.ljust(first) + "".join(c.rjust(width) for c in cells)

        out = [
            f"{self.mapping.title}: {len(self.evaluated)} case(s) evaluated, {len(self.failed)} failed",
            "".ljust(first) + "".join(h.rjust(width) for h in heads),
            "Dice Scores (%)",
            line("  mean", [r.dice_mean for r in rows] + [totals["dice_mean"]]),
            line("  SD (Tot: RMS-pooled)", [r.dice_sd for r in rows] + [totals["dice_sd_rms"]]),
        ]
        for title, values in self.mapping.published_dice.items():
            if title == "source":
                continue
            published = [values.get(r.abbreviation) for r in rows] + [values.get("Tot")]
            out.append(
                title.ljust(first)
                + "".join(("-" if v is None else f"{float(v):.0f}").rjust(width) for v in published)
            )
        out += [
            f"NSD at {self.tolerance_mm:g} mm (%)",
            line("  mean", [r.nsd_mean for r in rows] + [totals["nsd_mean"]]),
            line("  SD (Tot: RMS-pooled)", [r.nsd_sd for r in rows] + [totals["nsd_sd_rms"]]),
            "cases per structure: " + ", ".join(f"{r.abbreviation} {r.cases}" for r in rows),
        ]
        if any(r.approximate for r in rows):
            out.append("* approximate correspondence between the dataset's and DAP's structure")
        source = self.mapping.published_dice.get("source")
        if source:
            out.append(f"published rows: {source}")
        return "\n".join(out) + "\n"

    def to_json(self) -> dict:
        def clean(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 6)

        return {
            "mapping": self.mapping.name,
            "tolerance_mm": self.tolerance_mm,
            "cases_evaluated": len(self.evaluated),
            "failed": [{"case": c.case, "error": c.error} for c in self.failed],
            "unmatched_predictions": self.unmatched_predictions,
            "structures": [
                {
                    "name": r.name,
                    "abbreviation": r.abbreviation,
                    "cases": r.cases,
                    "dice_mean": clean(r.dice_mean),
                    "dice_sd": clean(r.dice_sd),
                    "nsd_mean": clean(r.nsd_mean),
                    "nsd_sd": clean(r.nsd_sd),
                    "approximate": r.approximate,
                }
                for r in self.summary()
            ],
            "total": {k: clean(v) for k, v in self.totals().items()},
            "per_case": [
                {
                    "case": c.case,
                    "dice": {k: clean(v) for k, v in c.dice.items()},
                    "nsd": {k: clean(v) for k, v in c.nsd.items()},
                }
                for c in self.evaluated
            ],
        }

    def write(self, folder: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
        """Write ``evaluation.json``, ``summary.csv``, ``per_case.csv`` and ``table.txt`` into ``folder``."""
        from .exceptions import OutputExistsError

        folder = Path(folder)
        paths = {
            "json": folder / "evaluation.json",
            "summary": folder / "summary.csv",
            "per_case": folder / "per_case.csv",
            "table": folder / "table.txt",
        }
        existing = [str(p) for p in paths.values() if p.exists()]
        if existing and not overwrite:
            raise OutputExistsError(
                f"{existing[0]} already exists; choose another --out or pass --overwrite."
            )
        folder.mkdir(parents=True, exist_ok=True)
        texts = {"json": json.dumps(self.to_json(), indent=2) + "\n", "table": self.table_text()}
        texts["summary"] = _csv_text(
            ["structure", "abbreviation", "cases", "dice_mean", "dice_sd", "nsd_mean", "nsd_sd"],
            [
                [
                    r.name,
                    r.abbreviation,
                    r.cases,
                    *map(_number, (r.dice_mean, r.dice_sd, r.nsd_mean, r.nsd_sd)),
                ]
                for r in self.summary()
            ],
        )
        texts["per_case"] = _csv_text(
            ["case", "structure", "dice", "nsd"],
            [
                [c.case, key, _number(c.dice[key]), _number(c.nsd[key])]
                for c in self.evaluated
                for key in c.dice
                if not math.isnan(c.dice[key])
            ],
        )
        for key, path in paths.items():
            tmp = path.with_name(f".{path.name}.partial")
            tmp.write_text(texts[key], encoding="utf-8")
            tmp.replace(path)
        return paths


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def _csv_text(header: list[str], rows: list[list]) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def evaluate(
    predictions: str | Path,
    references: str | Path,
    mapping: str | Path | DatasetMapping,
    *,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    progress: Callable[[int, int, str], None] | None = None,
) -> EvaluationResult:
    """Evaluate every reference case (file or folder) against its prediction; failures are recorded."""
    if not tolerance_mm >= 0:
        raise UnsupportedFormatError(f"The NSD tolerance must be >= 0 mm, got {tolerance_mm}.")
    mapping = mapping if isinstance(mapping, DatasetMapping) else load_mapping(mapping)
    pairs, unmatched = pair_cases(
        Path(predictions), Path(references), reference_folders=mapping.by_mask_names
    )
    cases = []
    for number, (case, prediction, reference) in enumerate(pairs):
        if progress is not None:
            progress(number, len(pairs), case)
        if prediction is None:
            cases.append(
                CaseEvaluation(case, None, str(reference), error=f"no prediction found in {predictions}")
            )
            continue
        try:
            cases.append(evaluate_case(prediction, reference, mapping, tolerance_mm, case))
        except (
            AnatomyToolkitError,
            GeometryMismatchError,
            OSError,
            ValueError,
            KeyError,
            MemoryError,
        ) as error:
            cases.append(
                CaseEvaluation(
                    case, str(prediction), str(reference), error=f"{type(error).__name__}: {error}"
                )
            )
    return EvaluationResult(mapping, float(tolerance_mm), cases, unmatched)
