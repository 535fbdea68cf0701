"""Write a synthetic phantom case to disk: CT, labels, lesions (NIfTI) and a PNG overview."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from AnatomyCommonLib.cli import json_default
from AnatomyCommonLib.errors import OutputExistsError
from AnatomyCommonLib.image_io import write_volume
from AnatomyCommonLib.rendering import render_orthogonal_views

from ..label_schema import default_colors_rgb
from .generator import Phantom

CASE_FILES = {
    "ct": "ct.nii.gz",
    "labels": "labels.nii.gz",
    "lesions": "lesions.nii.gz",
    "overview": "overview.png",
    "info": "phantom.json",
}
#: error kinds of the sample prediction, in the order ``perturb_prediction`` applies them
PERTURBATION_KINDS = ("missed", "dilated", "eroded", "shifted")
#: lesion outline colour of the overview: magenta is in no label colour and stands out from fat and bone
LESION_OUTLINE_RGB = (1.0, 0.0, 1.0)


def write_phantom_case(phantom: Phantom, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Write the phantom's images, a PNG overview and a JSON description into ``out_dir``.

    Refuses to replace existing files unless ``overwrite`` (checked for every file before
    anything is written). Returns the written paths by role.
    """
    out_dir = Path(out_dir)
    paths = {role: out_dir / name for role, name in CASE_FILES.items()}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{out_dir} already holds {', '.join(Path(p).name for p in existing)}; "
            "choose another folder or pass --overwrite."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_volume(phantom.ct, paths["ct"], overwrite=overwrite)
    write_volume(phantom.labels, paths["labels"], overwrite=overwrite)
    write_volume(phantom.lesions, paths["lesions"], overwrite=overwrite)
    lesion_mask = phantom.lesions.with_array((phantom.lesions.array > 0).astype("uint8"))
    center, where = None, ""
    if phantom.lesion_info:  # the three views pass through the largest lesion, so lesions are seen
        largest = max(phantom.lesion_info, key=lambda info: info["n_voxels"])
        voxels = np.argwhere(phantom.lesions.array == largest["id"])
        if len(voxels):
            center = phantom.lesions.kji_to_ras(voxels.mean(axis=0, keepdims=True))[0]
            where = f", views through lesion {largest['id']}"
    render_orthogonal_views(
        paths["overview"],
        phantom.ct,
        phantom.labels,
        default_colors_rgb(),
        center_ras=center,
        extra_overlays=[(lesion_mask, LESION_OUTLINE_RGB)],
        title=f"Synthetic whole-body CT ({phantom.sex}), DAP Atlas labels, lesions outlined in magenta"
        + where,
        overwrite=overwrite,
    )
    info = {
        "sex": phantom.sex,
        "shape_kji": list(phantom.ct.shape),
        "spacing_mm": list(phantom.ct.spacing_mm),
        "ijk_to_ras": phantom.ct.ijk_to_ras.tolist(),
        "lesions": phantom.lesion_info,
    }
    paths["info"].write_text(json.dumps(info, indent=2, default=json_default) + "\n", encoding="utf-8")
    return paths


def perturbation_counts(n_components: int) -> dict[str, int]:
    """How many reference components get each kind of error: about a sixth each, at least one
    while components are left, never more than there are (3 lesions: missed, dilated, eroded)."""
    per_kind = max(1, n_components // 6)
    counts, left = {}, n_components
    for kind in PERTURBATION_KINDS:
        counts[kind] = min(per_kind, left)
        left -= counts[kind]
    return counts


def sample_perturbation_settings(phantom: Phantom, n_components: int, *, seed: int = 0) -> dict[str, Any]:
    """Keyword arguments of ``CCMetricsLib.synthetic.perturb_prediction`` that make the sample case's
    prediction from the phantom's lesion mask (``n_components`` 26-connected lesion components).

    Shared by the web app's *Load sample* and the main job so both show the same model errors:
    :func:`perturbation_counts` errors, about a sixth as many false positives (at least one) of twice
    the largest voxel edge in radius, placed inside the body (CT > -500 HU).
    """
    return {
        **perturbation_counts(n_components),
        "false_positives": max(1, n_components // 6),
        "erosion_voxels": 1,
        "false_positive_radius_mm": 2 * max(phantom.lesions.spacing_mm),
        "spacing": phantom.lesions.spacing_kji_mm,
        "false_positives_within": phantom.ct.array > -500,
        "seed": seed,
    }
