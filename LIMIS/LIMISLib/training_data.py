"""``prepare-data``: CT volumes + label maps -> the 2D axial slices LIMIS trains and evaluates on.

As in the dissertation (3.3.2.3):

* datasets: DAP Atlas, TotalSegmentator and WORD, each in its own layout, with its label names
  mapped to the DAP Atlas names (:data:`WORD_LABELS`, :data:`TOTALSEGMENTATOR_NAMES`); by default
  only the 11 structures present in all three (:data:`LIMISLib.organ_vocabulary.PAPER_STRUCTURES`);
* split: each dataset is split by case (patient) into 80 % training, 10 % validation and 10 %
  test, and the splits are pooled across datasets; cases listed as seen by ScribblePrompt's
  authors can be forced into training (``train_only``) so that validation and test never hold them;
* slices: axial, in display orientation, at a common pixel spacing and size
  (:mod:`LIMISLib.slice_preprocessing`), HU clipped to the 0.5 / 99.5 percentiles and z-scored
  with the foreground mean and std; only slices where at least one structure is present;
* boxes: one per present structure (the tight box of all its pixels on the slice, every
  connected piece included: LIMIS asks for one box per structure).

Layouts (``root`` is the dataset folder):

* ``dap``: ``images/<case>.nii.gz`` (or ``imagesTr``) and ``labels/<case>.nii.gz`` (or
  ``labelsTr``), label values = DAP Atlas ids (the DAP Atlas release ships label maps named like
  the AutoPET CTs; put the CTs beside them). A ``_0000`` channel suffix on images is ignored.
* ``totalsegmentator``: ``<case>/ct.nii.gz`` and ``<case>/segmentations/<structure>.nii.gz``.
* ``word``: ``imagesTr|imagesVal|imagesTs/<case>.nii.gz`` with ``labelsTr|labelsVal|labelsTs``.

Output folder: ``index.json`` (settings, structures, one record per slice with its split, file and
boxes) and ``slices/<dataset>/<case>/slice_<k>.npz`` holding ``image`` (normalised float32),
``image_hu`` (int16) and ``labels`` (uint8 DAP ids), plus a ``.png`` preview (abdomen window)
when asked. The folder is written under a temporary name and renamed at the end, so an
interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from AnatomyCommonLib.anatomy.label_schema import label_by_id, label_by_name
from AnatomyCommonLib.errors import InputNotFoundError, OutputExistsError, UnsupportedFormatError
from AnatomyCommonLib.volume import Volume

from .organ_vocabulary import PAPER_STRUCTURES
from .slice_preprocessing import (
    SliceNormalisation,
    bounding_box_xyxy,
    normalise_ct_slice,
    resample_slices,
    to_display_axial,
)

INDEX_FILE = "index.json"
LAYOUTS = ("dap", "totalsegmentator", "word")
SPLITS = ("train", "val", "test")

#: WORD label ids -> DAP names (None: no DAP structure with the same extent).
WORD_LABELS: dict[int, str | None] = {
    1: "liver",
    2: "spleen",
    3: "kidney left",
    4: "kidney right",
    5: "stomach",
    6: "gallbladder",
    7: "esophagus",
    8: "pancreas",
    9: "duodenum",
    10: "colon",
    11: "small bowel",  # WORD "intestine"
    12: None,  # "adrenal": both glands in one label, DAP has left and right
    13: "rectum",
    14: "bladder",
    15: None,  # head of femur left: only part of DAP's "femur left"
    16: None,  # head of femur right
}

#: TotalSegmentator file names whose DAP name is not just the name with "_" -> " ".
TOTALSEGMENTATOR_NAMES: dict[str, str] = {
    "urinary_bladder": "bladder",
}


def totalsegmentator_file_for(structure: str) -> str:
    """The TotalSegmentator mask file stem of a DAP structure name ("bladder" -> "urinary_bladder")."""
    for stem, name in TOTALSEGMENTATOR_NAMES.items():
        if name == structure:
            return stem
    return structure.replace(" ", "_")


# ---------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One CT with its labels in a dataset's own layout."""

    dataset: str
    layout: str
    case_id: str
    image_path: Path
    label_path: Path  # label map (dap, word) or the segmentations folder (totalsegmentator)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name[:-5] if name.endswith("_0000") else name


def _images_in(folder: Path) -> dict[str, Path]:
    return {
        _stem(p): p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name.endswith((".nii.gz", ".nii", ".nrrd"))
    }


def discover_cases(layout: str, root: str | Path, *, dataset: str | None = None) -> list[Case]:
    """The cases of one dataset folder in the given layout (sorted by case id)."""
    root = Path(root)
    if layout not in LAYOUTS:
        raise UnsupportedFormatError(f"Unknown dataset layout {layout!r}; use one of {', '.join(LAYOUTS)}.")
    if not root.is_dir():
        raise InputNotFoundError(f"Dataset folder {root} does not exist.")
    dataset = dataset or layout
    cases: list[Case] = []
    if layout == "totalsegmentator":
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            image = folder / "ct.nii.gz"
            if image.is_file() and (folder / "segmentations").is_dir():
                cases.append(Case(dataset, layout, folder.name, image, folder / "segmentations"))
    else:
        pairs = (
            [("imagesTr", "labelsTr"), ("imagesVal", "labelsVal"), ("imagesTs", "labelsTs")]
            if layout == "word"
            else [("images", "labels"), ("imagesTr", "labelsTr")]
        )
        for images_name, labels_name in pairs:
            images_dir, labels_dir = root / images_name, root / labels_name
            if not (images_dir.is_dir() and labels_dir.is_dir()):
                continue
            labels = _images_in(labels_dir)
            for case_id, image in _images_in(images_dir).items():
                if case_id in labels:
                    cases.append(Case(dataset, layout, case_id, image, labels[case_id]))
    if not cases:
        hint = {
            "totalsegmentator": "<case>/ct.nii.gz with <case>/segmentations/*.nii.gz",
            "word": "imagesTr/ and labelsTr/ (and Val, Ts)",
            "dap": "images/ and labels/ with matching file names",
        }[layout]
        raise InputNotFoundError(f"No cases found in {root} for the {layout} layout (expected {hint}).")
    return sorted(cases, key=lambda c: c.case_id)


def load_case(case: Case, structures: Sequence[str]) -> tuple[Volume, Volume]:
    """(CT in HU, labels in DAP ids on the CT grid) for one case; only ``structures`` are kept."""
    from AnatomyCommonLib.image_io import read_labelmap, read_volume

    ct = read_volume(case.image_path)
    wanted = {label_by_name(name).id for name in structures}
    labels = np.zeros(ct.shape, dtype=np.uint8)
    if case.layout == "totalsegmentator":
        for name in structures:
            path = case.label_path / f"{totalsegmentator_file_for(name)}.nii.gz"
            if not path.is_file():
                continue
            mask = read_labelmap(path)
            ct.require_same_grid(mask, ("ct.nii.gz", path.name))
            labels[mask.array > 0] = label_by_name(name).id
    else:
        source = read_labelmap(case.label_path)
        ct.require_same_grid(source, (case.image_path.name, case.label_path.name))
        values = source.array
        if case.layout == "word":
            for word_id, name in WORD_LABELS.items():
                if name is not None and label_by_name(name).id in wanted:
                    labels[values == word_id] = label_by_name(name).id
        else:
            keep = np.isin(values, list(wanted))
            labels[keep] = values[keep].astype(np.uint8)
    return ct, ct.with_array(labels)


# ---------------------------------------------------------------------------------- split
def split_cases(
    case_ids: Sequence[str],
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    train_only: Iterable[str] = (),
) -> dict[str, str]:
    """Case id -> "train" | "val" | "test" for one dataset (by patient, reproducible for a seed).

    Validation and test get ``round(fraction * n)`` cases each, at least one each when the
    dataset has 3 or more eligible cases; ``train_only`` cases always go to training.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"Split fractions must be >= 0 and sum to 1, got {fractions}.")
    forced = set(train_only)
    eligible = sorted(c for c in set(case_ids) if c not in forced)
    order = np.random.default_rng(seed).permutation(len(eligible))
    shuffled = [eligible[i] for i in order]
    n = len(shuffled)
    n_val, n_test = (round(f * n) for f in fractions[1:])
    if n >= 3:
        n_val, n_test = max(n_val, 1 if fractions[1] > 0 else 0), max(n_test, 1 if fractions[2] > 0 else 0)
    split = {c: "val" for c in shuffled[:n_val]}
    split.update({c: "test" for c in shuffled[n_val : n_val + n_test]})
    split.update({c: "train" for c in shuffled[n_val + n_test :]})
    split.update({c: "train" for c in set(case_ids) & forced})
    return split


# ---------------------------------------------------------------------------------- slices
@dataclass(frozen=True)
class PrepareSettings:
    """How slices are made (saved in the index so training and inference can repeat it)."""

    spacing_mm: float = 0.8
    size: int = 512
    structures: tuple[str, ...] = PAPER_STRUCTURES
    min_pixels: int = 1
    slice_step: int = 1
    seed: int = 0
    normalisation: SliceNormalisation = field(default_factory=SliceNormalisation)
    write_png: bool = False

    def to_dict(self) -> dict:
        return {
            "spacing_mm": self.spacing_mm,
            "size": self.size,
            "structures": list(self.structures),
            "min_pixels": self.min_pixels,
            "slice_step": self.slice_step,
            "seed": self.seed,
            "normalisation": self.normalisation.to_dict(),
            "orientation": "display (row 0 anterior, column 0 patient right)",
        }


def case_slices(ct: Volume, labels: Volume, settings: PrepareSettings) -> Iterable[dict]:
    """The training slices of one case (dicts: ``slice``, ``image``, ``image_hu``, ``labels``, ``boxes``)."""
    ct_axial = to_display_axial(ct)
    label_axial = to_display_axial(labels)
    ids = {label_by_name(name).id: label_by_name(name).name for name in settings.structures}
    counts = np.stack([(label_axial.array == i).sum(axis=(1, 2)) for i in ids], axis=1)
    present = np.flatnonzero((counts >= settings.min_pixels).any(axis=1))
    present = present[:: max(1, settings.slice_step)]
    if present.size == 0:
        return
    spacing = (ct_axial.row_spacing_mm, ct_axial.column_spacing_mm)
    images = resample_slices(
        np.asarray(ct_axial.array[present]), spacing, settings.spacing_mm, settings.size, labels=False
    )
    maps = resample_slices(
        np.asarray(label_axial.array[present]), spacing, settings.spacing_mm, settings.size, labels=True
    )
    for index, image_hu, label_map in zip(present, images, maps, strict=True):
        boxes = {}
        for value, name in ids.items():
            mask = label_map == value
            if int(mask.sum()) >= settings.min_pixels:
                boxes[name] = bounding_box_xyxy(mask)
        if not boxes:
            continue  # the structure shrank below min_pixels with the resampling
        yield {
            "slice": int(index),
            "image": normalise_ct_slice(image_hu, settings.normalisation),
            "image_hu": np.clip(np.rint(image_hu), -32768, 32767).astype(np.int16),
            "labels": label_map.astype(np.uint8),
            "boxes": boxes,
        }


def _write_png(path: Path, image_hu: np.ndarray) -> None:
    from PIL import Image

    low, high = -160.0, 240.0  # abdomen window W 400 / L 40
    scaled = np.clip((image_hu.astype(np.float32) - low) / (high - low), 0, 1)
    Image.fromarray((scaled * 255).astype(np.uint8)).save(path)


def prepare_data(
    datasets: Sequence[tuple[str, str | Path]],
    out_dir: str | Path,
    settings: PrepareSettings = PrepareSettings(),
    *,
    train_only: Iterable[str] = (),
    overwrite: bool = False,
    progress: Callable[[Iterable, int, str], Iterable] | None = None,
) -> dict:
    """Write the slices of every dataset (``[(layout, root), ...]``) and the index; returns the index."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{out_dir} exists and is not empty; choose a new folder or pass --overwrite."
        )
    for name in settings.structures:
        label_by_name(name)  # unknown names fail before any work
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    records: list[dict] = []
    dataset_summary = []
    train_only = set(train_only)
    try:
        used_names: set[str] = set()
        for layout, root in datasets:
            name = layout if layout not in used_names else f"{layout}{len(used_names)}"
            used_names.add(name)
            cases = discover_cases(layout, root, dataset=name)
            split = split_cases([c.case_id for c in cases], seed=settings.seed, train_only=train_only)
            iterator = progress(cases, len(cases), f"prepare {name}") if progress else cases
            n_slices = 0
            for case in iterator:
                ct, labels = load_case(case, settings.structures)
                for item in case_slices(ct, labels, settings):
                    relative = Path("slices") / name / case.case_id / f"slice_{item['slice']:04d}.npz"
                    (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                    np.savez_compressed(
                        staging / relative,
                        image=item["image"],
                        image_hu=item["image_hu"],
                        labels=item["labels"],
                    )
                    if settings.write_png:
                        _write_png((staging / relative).with_suffix(".png"), item["image_hu"])
                    records.append(
                        {
                            "id": len(records),
                            "file": relative.as_posix(),
                            "dataset": name,
                            "case": case.case_id,
                            "split": split[case.case_id],
                            "slice": item["slice"],
                            "shape": list(item["image"].shape),
                            "boxes": {k: [round(v, 3) for v in box] for k, box in item["boxes"].items()},
                        }
                    )
                    n_slices += 1
            dataset_summary.append(
                {
                    "name": name,
                    "layout": layout,
                    "root": str(root),
                    "cases": {s: sorted(c for c, v in split.items() if v == s) for s in SPLITS},
                    "slices": n_slices,
                }
            )
        index = {
            "version": 1,
            "settings": settings.to_dict(),
            "structures": list(settings.structures),
            "datasets": dataset_summary,
            "counts": {s: sum(r["split"] == s for r in records) for s in SPLITS},
            "records": records,
        }
        (staging / INDEX_FILE).write_text(json.dumps(index, indent=1), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return index


# ---------------------------------------------------------------------------------- reading
@dataclass
class SliceDataset:
    """The slices of a prepared folder, optionally one split only."""

    root: Path
    index: dict
    records: list[dict]

    @classmethod
    def load(cls, root: str | Path, split: str | None = None) -> SliceDataset:
        root = Path(root)
        path = root / INDEX_FILE
        if not path.is_file():
            raise InputNotFoundError(
                f"{root} has no {INDEX_FILE}; run 'python -m LIMISLib prepare-data' first."
            )
        index = json.loads(path.read_text(encoding="utf-8"))
        if split is not None and split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
        records = [r for r in index["records"] if split is None or r["split"] == split]
        return cls(root=root, index=index, records=records)

    @property
    def structures(self) -> list[str]:
        return list(self.index["structures"])

    def __len__(self) -> int:
        return len(self.records)

    def load_arrays(self, record: dict) -> dict[str, np.ndarray]:
        """``image`` (normalised), ``image_hu`` and ``labels`` of one record."""
        with np.load(self.root / record["file"]) as data:
            return {key: data[key] for key in ("image", "image_hu", "labels")}


def structure_masks(labels: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Boolean masks of the named structures in a label slice of DAP ids."""
    return {name: labels == label_by_name(name).id for name in names}


def label_name(value: int) -> str:
    return label_by_id(int(value)).name
