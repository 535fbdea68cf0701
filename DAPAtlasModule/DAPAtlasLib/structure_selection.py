"""A subset of structures (``--structures liver spleen ribs``) for outputs and statistics.

Names resolve through the label schema (canonical, released or Table 4 names, any case, ``_``
for spaces); an anatomical system name ("ribs", "vertebrae") stands for all its labels. An
unknown name raises :class:`~DAPAtlasLib.exceptions.UnknownStructureError` naming close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from AnatomyCommonLib.anatomy.label_schema import SYSTEMS, all_labels, label_by_name, labels_in_system
from AnatomyCommonLib.volume import Volume

from .exceptions import UnknownStructureError


def _known_names() -> list[str]:
    """Canonical label names and system names (spaces, lower case)."""
    return sorted(set(SYSTEMS[1:]) | {label.name for label in all_labels()[1:]})


def resolve_structures(names: Sequence[str]) -> list[int]:
    """Label ids (sorted, unique) of structure or system names; comma-separated items allowed."""
    ids: set[int] = set()
    unknown: list[str] = []
    for item in (part.strip() for name in names for part in str(name).split(",")):
        if not item:
            continue
        key = " ".join(item.lower().replace("_", " ").split())
        if key in SYSTEMS and key != "background":
            ids.update(label.id for label in labels_in_system(key))
            continue
        try:
            label = label_by_name(item)
        except KeyError:
            unknown.append(item)
            continue
        if label.id == 0:
            unknown.append(item)
        else:
            ids.add(label.id)
    if unknown:
        hints = []
        for item in unknown:
            key = item.lower().replace("_", " ")
            close = difflib.get_close_matches(key, _known_names(), n=4, cutoff=0.5)
            hints.append(f"{item!r}" + (f" (did you mean: {', '.join(close)}?)" if close else ""))
        raise UnknownStructureError(
            f"Unknown DAP Atlas structure(s): {'; '.join(hints)}. Use names from "
            "`python -m DAPAtlasLib labels` (e.g. liver, 'kidney left' or kidney_left) or a system "
            f"({', '.join(SYSTEMS[1:])})."
        )
    if not ids:
        raise UnknownStructureError("--structures was given without any structure name.")
    return sorted(ids)


def keep_structures(labels: Volume, ids: Sequence[int] | None) -> Volume:
    """``labels`` with every label outside ``ids`` set to background (unchanged when ``ids`` is None)."""
    if ids is None:
        return labels
    keep = np.zeros(max(int(labels.array.max(initial=0)), max(ids)) + 1, dtype=bool)
    keep[list(ids)] = True
    array = np.where(keep[labels.array], labels.array, 0).astype(labels.array.dtype, copy=False)
    return labels.with_array(array)
