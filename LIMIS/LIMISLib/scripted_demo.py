"""A scripted LIMIS session scored against a reference: PNG per step, contact sheet, Dice per step.

The main job runs it on the phantom so that a newcomer sees the loop without any weights: the box
comes from a whole-body label map (:class:`~LIMISLib.atlas_lang2bbox.AtlasLang2BBox`) and the
mask from the model given -- the weight-free baseline
(:class:`~LIMISLib.reference_models.IntensityBBox2Mask`) unless neural models are passed. The
reference labels are used **only to score** each step, never by the models or the script.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from AnatomyCommonLib.atomic_output import atomic_output_file
from AnatomyCommonLib.volume import Volume

from .model_interfaces import BBox2Mask, Lang2BBox
from .session_replay import DEMO_SCRIPT, ReplayRecord, replay
from .volume_session import VolumeSession


@dataclass
class ScoredSession:
    """The session after the script and its lines with Dice."""

    session: VolumeSession
    steps: list


@dataclass
class ScoredStep:
    """One script line with its Dice against the reference (None before anything is segmented)."""

    record: ReplayRecord
    slice_dice: float | None
    volume_dice: float | None


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean arrays (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


def run_scored_session(
    ct: Volume,
    atlas_labels: Volume,
    reference: Volume,
    out_dir: str | Path,
    *,
    bbox2mask: BBox2Mask,
    lang2bbox: Lang2BBox | None = None,
    script: Sequence[str] = DEMO_SCRIPT,
    echo: Callable[[ScoredStep], None] | None = None,
) -> ScoredSession:
    """Replay ``script`` on ``ct`` (boxes from ``atlas_labels`` when ``lang2bbox`` is None), write a
    PNG per line, ``contact_sheet.png`` and ``replay.json`` (with Dice) into ``out_dir``.

    ``reference`` (DAP ids on the CT grid) scores the target after each line: ``slice_dice`` on the
    active slice, ``volume_dice`` over the whole volume.
    """
    session = VolumeSession(ct, bbox2mask, lang2bbox=lang2bbox, labels=atlas_labels)
    out = Path(out_dir)
    scored: list[ScoredStep] = []

    def score(record: ReplayRecord) -> None:
        from AnatomyCommonLib.anatomy.label_schema import label_id

        if session.target is None or not session.sessions:
            step = ScoredStep(record, None, None)
        else:
            truth = reference.array == label_id(session.target)
            truth_slice = session.geometry.extract(truth, session.active_slice)
            predicted = session.mask_volume(displayed=True).array > 0
            step = ScoredStep(
                record, dice(session.slice_mask(session.active_slice), truth_slice), dice(predicted, truth)
            )
        scored.append(step)
        if echo is not None:
            echo(step)

    # the atlas map also answers '@slice middle <structure>': the script never sees the reference
    replay(session, list(script), out, labels=atlas_labels, overwrite=True, echo=score, semantic=False)
    records = json.loads((out / "replay.json").read_text(encoding="utf-8"))
    for entry, step in zip(records, scored, strict=True):
        entry["slice_dice"], entry["volume_dice"] = step.slice_dice, step.volume_dice
        entry["box_source"] = entry.get("box_source") or session.box_source
        entry["model"] = getattr(bbox2mask, "name", type(bbox2mask).__name__)
    with atomic_output_file(out / "replay.json", suffix=".json") as temporary:
        Path(temporary).write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    pngs = [out / step.record.png for step in scored if step.record.png]
    write_contact_sheet(pngs, out / "contact_sheet.png")
    return ScoredSession(session, scored)


def write_contact_sheet(pngs: Sequence[Path], path: str | Path, *, columns: int = 3) -> Path:
    """All ``pngs`` in a grid (file names as captions), written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    if not pngs:
        raise ValueError("No step images to put on the contact sheet.")
    rows = -(-len(pngs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 5.4 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, png in zip(axes.ravel(), pngs, strict=False):
        axis.imshow(mpimg.imread(png))
        axis.set_title(Path(png).name, fontsize=9)
    figure.tight_layout()
    try:
        with atomic_output_file(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=80)
    finally:
        plt.close(figure)
    return Path(path)
