"""Per-structure statistics of a DAP label map: size, volume, CT intensity, position.

For every label present: voxel count, volume in ml (from the voxel spacing), mean / standard
deviation / min / max Hounsfield units of the CT inside it (when a CT is given), and the
centroid both in patient RAS millimetres and in voxel indices (k, j, i). Results convert to
rows for CSV / JSON files and for a Slicer table node, and sum up per anatomical system.

Cost: one pass to find each label's bounding box, then work inside each box only. The
intensity sums use exact integer arithmetic for integer CTs (no float64 copy of the volume);
centroids come from per-axis voxel counts, so no index arrays are built.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from AnatomyCommonLib.anatomy.label_schema import MAX_LABEL_ID, SYSTEMS, label_by_id
from AnatomyCommonLib.volume import Volume

from .exceptions import InvalidLabelValuesError, OutputExistsError

#: Column order of the statistics table (CSV, JSON rows, Slicer table).
COLUMNS: tuple[str, ...] = (
    "label",
    "name",
    "system",
    "side",
    "voxel_count",
    "volume_ml",
    "hu_mean",
    "hu_std",
    "hu_min",
    "hu_max",
    "centroid_r_mm",
    "centroid_a_mm",
    "centroid_s_mm",
    "centroid_k",
    "centroid_j",
    "centroid_i",
)


@dataclass(frozen=True)
class StructureStatistics:
    """Statistics of one labelled structure."""

    label: int
    name: str
    system: str
    side: str
    voxel_count: int
    volume_ml: float
    hu_mean: float | None
    hu_std: float | None
    hu_min: float | None
    hu_max: float | None
    centroid_ras_mm: tuple[float, float, float]
    centroid_kji: tuple[float, float, float]

    def to_row(self) -> dict:
        """A flat dict with the keys of :data:`COLUMNS` (None for missing HU values)."""
        row = asdict(self)
        r, a, s = row.pop("centroid_ras_mm")
        k, j, i = row.pop("centroid_kji")
        row.update(
            centroid_r_mm=r, centroid_a_mm=a, centroid_s_mm=s, centroid_k=k, centroid_j=j, centroid_i=i
        )
        return {column: row[column] for column in COLUMNS}


def _label_array(labels: Volume) -> np.ndarray:
    array = labels.array
    if not np.issubdtype(array.dtype, np.integer):
        raise InvalidLabelValuesError(
            "The label map holds non-integer values; did you pass the CT as the label map?"
        )
    if array.size and (int(array.min()) < 0 or int(array.max()) > MAX_LABEL_ID):
        raise InvalidLabelValuesError(
            f"The label map holds values outside 0..{MAX_LABEL_ID}; it is not a DAP Atlas label map."
        )
    return array if array.dtype == np.uint8 else array.astype(np.uint8)


def _intensity(values: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, std, min, max) with exact integer sums for integer images."""
    n = values.size
    if np.issubdtype(values.dtype, np.integer):
        wide = values.astype(np.int64)
        total = int(wide.sum())
        squares = int(np.dot(wide, wide))
        mean = total / n
        variance = max(0.0, squares / n - mean * mean)
    else:
        wide = values.astype(np.float64)
        mean = float(wide.mean())
        variance = float(wide.var())
    return float(mean), math.sqrt(variance), float(values.min()), float(values.max())


def structure_statistics(
    labels: Volume,
    ct: Volume | None = None,
    *,
    label_ids: Iterable[int] | None = None,
) -> list[StructureStatistics]:
    """Statistics of every label present (or of ``label_ids``), ordered by label id.

    ``ct`` must lie on the label map's grid (GeometryMismatchError otherwise); without it the
    HU columns are None.
    """
    labels.require_3d("the label map")
    if ct is not None:
        labels.require_same_grid(ct, ("the label map", "the CT"))
    array = _label_array(labels)
    wanted = None if label_ids is None else {int(v) for v in label_ids}
    boxes = ndimage.find_objects(array, max_label=MAX_LABEL_ID)
    voxel_ml = labels.voxel_volume_ml
    ijk_to_ras = np.asarray(labels.ijk_to_ras, dtype=float)
    results = []
    for label, box in enumerate(boxes, start=1):
        if box is None or (wanted is not None and label not in wanted):
            continue
        mask = array[box] == label
        count = int(np.count_nonzero(mask))
        if count == 0:
            continue
        centroid = []
        for axis, sl in enumerate(box):
            other = tuple(a for a in range(3) if a != axis)
            per_index = mask.sum(axis=other, dtype=np.int64)
            centroid.append(float(np.dot(per_index, np.arange(sl.start, sl.stop)) / count))
        k, j, i = centroid
        ras = ijk_to_ras[:3, :3] @ np.array([i, j, k]) + ijk_to_ras[:3, 3]
        hu = (None, None, None, None) if ct is None else _intensity(ct.array[box][mask])
        info = label_by_id(label)
        results.append(
            StructureStatistics(
                label=label,
                name=info.display_name,
                system=info.system,
                side=info.side or "",
                voxel_count=count,
                volume_ml=count * voxel_ml,
                hu_mean=hu[0],
                hu_std=hu[1],
                hu_min=hu[2],
                hu_max=hu[3],
                centroid_ras_mm=(float(ras[0]), float(ras[1]), float(ras[2])),
                centroid_kji=(k, j, i),
            )
        )
    return results


def statistics_rows(stats: Sequence[StructureStatistics], *, digits: int | None = 4) -> list[dict]:
    """Rows (dicts with :data:`COLUMNS` keys) for tables, CSV and JSON; floats rounded to ``digits``."""
    rows = []
    for item in stats:
        row = item.to_row()
        if digits is not None:
            row = {k: round(v, digits) if isinstance(v, float) else v for k, v in row.items()}
        rows.append(row)
    return rows


def volumes_by_system(stats: Sequence[StructureStatistics]) -> dict[str, float]:
    """Total volume (ml) per anatomical system, in the order of :data:`SYSTEMS` (empty ones omitted)."""
    totals = dict.fromkeys(SYSTEMS[1:], 0.0)
    for item in stats:
        if item.system in totals:
            totals[item.system] += item.volume_ml
    return {system: volume for system, volume in totals.items() if volume > 0}


def _prepare(path: str | Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; choose another name or pass --overwrite.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_statistics_csv(
    stats: Sequence[StructureStatistics],
    path: str | Path,
    *,
    overwrite: bool = False,
    extra: dict | None = None,
) -> Path:
    """Write the statistics as CSV (one row per structure; ``extra`` columns first, e.g. a case id)."""
    path = _prepare(path, overwrite)
    rows = statistics_rows(stats)
    extra = extra or {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*extra, *COLUMNS])
        writer.writeheader()
        for row in rows:
            writer.writerow({**extra, **{k: "" if v is None else v for k, v in row.items()}})
    return path


def write_statistics_json(
    stats: Sequence[StructureStatistics], path: str | Path, *, overwrite: bool = False
) -> Path:
    """Write the statistics as JSON: {"structures": [rows], "volume_ml_by_system": {...}}."""
    path = _prepare(path, overwrite)
    data = {
        "structures": statistics_rows(stats),
        "volume_ml_by_system": {k: round(v, 4) for k, v in volumes_by_system(stats).items()},
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
