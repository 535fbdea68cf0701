"""Replaying a scripted LIMIS session on a CT volume and writing one PNG per step.

Used by ``python -m LIMISLib replay`` and the main job. A script is plain text, one line per
command, exactly what a user would type in the Slicer module, plus three directives:

.. code-block:: text

    # comments start with '#'
    @slice 80                 # the active axial slice (array index along the slice axis)
    @slice middle liver       # the middle slice of a structure in the reference label map
    @box 10 20 40 50          # the user draws a box x0 y0 x1 y1 (display pixels) on the active slice
    segment the liver
    accept
    you over-segmented
    ...

Without a Lang2BBox (no weights, or the baseline), ``segment X`` needs a box: a drawn one
(``@box``) or, when a reference label map is given, the box around X on the active slice with
the LIMIS margin of :class:`LIMISLib.atlas_lang2bbox.AtlasLang2BBox` (10 px per side, so the
default adaptation adds none) -- a stand-in for the detector that the PNG titles and the JSON
record say openly.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from AnatomyCommonLib.atomic_output import atomic_output_file
from AnatomyCommonLib.errors import AnatomyToolkitError, OutputExistsError
from AnatomyCommonLib.volume import Volume

from .click_grid import cell_label_positions, grid_lines
from .command_grammar import Command, api_command, parse_command
from .ct_windows import PRESETS
from .exceptions import InvalidPromptError, StructureNotFoundError
from .session import Reply
from .volume_session import VolumeSession

#: The scripted session of the main job: prompt, default adaptation, a guided strategy, a manual
#: click, a revert and propagation through the volume.
DEMO_SCRIPT: tuple[str, ...] = (
    "@slice middle liver",
    "segment the liver",
    "accept",
    "the liver is hypodense",
    "accept",
    "positive click in cell 6",
    "revert to step 1",
    "propagate",
    "finish",
)


@dataclass
class ReplayRecord:
    """What one script line did (written to ``replay.json``)."""

    number: int
    text: str
    kind: str
    args: dict
    ok: bool
    message: str
    slice_index: int
    step: int | None
    area_px: int
    changed_slices: list[int] = field(default_factory=list)
    box_source: str = ""
    png: str = ""


def read_script(path: str | Path) -> list[str]:
    """The non-empty, non-comment lines of a script file."""
    lines = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _structure_slice(labels: Volume, session: VolumeSession, structure: str) -> int:
    from AnatomyCommonLib.anatomy.label_schema import label_id

    from .organ_vocabulary import resolve_structure

    mask = labels.array == label_id(resolve_structure(structure))
    present = [k for k in range(session.geometry.n_slices) if session.geometry.extract(mask, k).any()]
    if not present:
        raise InvalidPromptError(
            f"The label map has no {structure}; choose another structure or a slice number."
        )
    return present[len(present) // 2]


def _label_box(labels: Volume, session: VolumeSession, structure: str):
    """The structure's box on the active slice by the LIMIS margin rules of :class:`AtlasLang2BBox`
    (tight box + 10 px per side, clipped; the default adaptation then adds no second margin), or
    None when the slice has none of it."""
    from .atlas_lang2bbox import AtlasLang2BBox

    atlas = AtlasLang2BBox(labels, geometry=session.geometry)
    try:
        return atlas.slice_box(structure, session.active_slice), atlas.margin_px
    except StructureNotFoundError:
        return None, atlas.margin_px


def replay(
    session: VolumeSession,
    lines: list[str],
    out_dir: str | Path | None = None,
    *,
    labels: Volume | None = None,
    semantic: bool | None = None,
    overwrite: bool = False,
    echo=None,
) -> list[ReplayRecord]:
    """Run the script lines on ``session``; with ``out_dir`` write a PNG per line and ``replay.json``.

    ``echo(record)`` is called after each line (the CLI prints it).
    """
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise OutputExistsError(f"{out} is not empty; choose another folder or pass --overwrite.")
        out.mkdir(parents=True, exist_ok=True)
    records: list[ReplayRecord] = []
    for number, line in enumerate(lines, start=1):
        box_source = ""
        if line.startswith("@"):
            try:
                reply = _directive(session, line, labels)
            except AnatomyToolkitError as error:
                reply = Reply(api_command("help", line), str(error), ok=False)
        else:
            command = parse_command(line, session.parse_context(), semantic=semantic)
            box = None
            if command.kind == "segment" and session.lang2bbox is None:
                if labels is None:
                    reply = Reply(
                        command, "No Lang2BBox model: draw the box first ('@box x0 y0 x1 y1').", ok=False
                    )
                    _skip(records, _record(number, line, reply, session, box_source), echo)
                    continue
                box, margin = _label_box(labels, session, command.args["target"])
                box_source = f"box from the reference label map + {margin:g} px (stand-in for the detector)"
                if box is None:
                    reply = Reply(
                        command, f"The label map has no {command.args['target']} on this slice.", ok=False
                    )
                    _skip(records, _record(number, line, reply, session, box_source), echo)
                    continue
                command = Command(
                    "segment",
                    {**command.args, "box": box, "box_margin_px": margin},
                    text=command.text,
                    source=command.source,
                )
            reply = session.apply(command)
        record = _record(number, line, reply, session, box_source)
        if out is not None:
            path = out / f"{number:02d}_{record.kind}.png"
            render_reply(session, reply, record, path)
            record.png = path.name
        records.append(record)
        if echo is not None:
            echo(record)
    if out is not None:
        (out / "replay.json").write_text(
            json.dumps([asdict(r) for r in records], indent=2) + "\n", encoding="utf-8"
        )
    return records


def _skip(records: list[ReplayRecord], record: ReplayRecord, echo) -> None:
    """A line that failed before reaching the session: recorded and echoed like any other."""
    records.append(record)
    if echo is not None:
        echo(record)


def failures(records: list[ReplayRecord]) -> list[ReplayRecord]:
    """The lines that failed (``ok`` False), in script order."""
    return [record for record in records if not record.ok]


def _directive(session: VolumeSession, line: str, labels: Volume | None) -> Reply:
    words = line[1:].split()
    command = api_command("help", line)
    if words[:1] == ["slice"] and len(words) == 2 and words[1].lstrip("-").isdigit():
        session.set_active_slice(int(words[1]))
        return Reply(command, f"Active slice {session.active_slice}.")
    if words[:2] == ["slice", "middle"] and len(words) > 2:
        if labels is None:
            return Reply(
                command, "'@slice middle <structure>' needs a reference label map (--labels).", ok=False
            )
        session.set_active_slice(_structure_slice(labels, session, " ".join(words[2:])))
        return Reply(command, f"Active slice {session.active_slice} (middle of the {' '.join(words[2:])}).")
    if words[:1] == ["box"] and len(words) == 5:
        reply = session.set_box(tuple(float(v) for v in words[1:]))
        return reply
    return Reply(
        command,
        f"Unknown directive {line!r}; use '@slice N', '@slice middle <structure>' or '@box x0 y0 x1 y1'.",
        ok=False,
    )


def _record(number: int, line: str, reply: Reply, session: VolumeSession, box_source: str) -> ReplayRecord:
    active = session.active
    displayed = None if active is None else active.displayed
    return ReplayRecord(
        number=number,
        text=line,
        kind=reply.command.kind if not line.startswith("@") else "directive",
        args={k: v for k, v in reply.command.args.items() if k != "box"},
        ok=reply.ok,
        message=reply.message,
        slice_index=session.active_slice,
        step=None if active is None or active.current_index is None else active.current_index,
        area_px=0 if displayed is None else displayed.area_px,
        changed_slices=list(reply.changed_slices),
        box_source=box_source,
    )


# ---------------------------------------------------------------------------- rendering
def render_reply(session: VolumeSession, reply: Reply, record: ReplayRecord, path: str | Path) -> Path:
    """A PNG of what the user sees after this line: the slice with mask, box, clicks (and grid),
    or, after a propagation, axial/coronal/sagittal views of the structure's mask."""
    if len(reply.changed_slices) > 1:
        return _render_volume(session, record, path)
    return _render_slice(session, reply, record, path)


def _title(record: ReplayRecord) -> str:
    status = "" if record.ok else " (not done)"
    head = f'{record.number}. "{record.text}" -> {record.kind}{status}'
    source = f"\n[{record.box_source}]" if record.box_source else ""
    return head + source + "\n" + "\n".join(textwrap.wrap(record.message, 110)[:4])


def _render_slice(session: VolumeSession, reply: Reply, record: ReplayRecord, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    image = session.image(session.active_slice)
    active = session.active
    step = None if active is None else active.displayed
    window = step.window if step is not None and step.window is not None else PRESETS["abdomen"]
    column_mm, row_mm = session.geometry.pixel_spacing_mm
    height, width = image.shape
    figure, axes = plt.subplots(figsize=(7.5, 7.5 * (height * row_mm) / (width * column_mm) + 1.4))
    axes.imshow(
        image,
        cmap="gray",
        vmin=window.low_hu,
        vmax=window.high_hu,
        extent=(0, width, height, 0),
        interpolation="nearest",
    )
    axes.set_aspect(row_mm / column_mm)
    if step is not None:
        overlay = np.zeros((*image.shape, 4), np.float32)
        overlay[step.mask] = (1.0, 0.35, 0.1, 0.45)
        axes.imshow(overlay, extent=(0, width, height, 0), interpolation="nearest")
        x0, y0, x1, y1 = step.box_xyxy
        axes.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="yellow", linewidth=1.2)
        for click in step.state.clicks:
            marker, color = ("+", "lime") if click.positive else ("x", "red")
            axes.plot(click.x, click.y, marker=marker, color=color, markersize=10, markeredgewidth=2)
        if active.pending == "grid" or record.kind == "grid_click":
            for (ax, ay), (bx, by) in grid_lines(step.box_xyxy):
                axes.plot([ax, bx], [ay, by], color="cyan", linewidth=0.6)
            for cell, (cx, cy) in cell_label_positions(step.box_xyxy).items():
                axes.text(cx, cy, str(cell), color="cyan", fontsize=7, ha="center", va="center")
        label = "proposal (not kept yet)" if active.pending == "proposal" else f"step {active.current_index}"
        axes.text(
            1,
            height - 1,
            f"{label}: {step.area_px} px, threshold {step.threshold:.2f}",
            color="white",
            fontsize=8,
            va="bottom",
        )
    axes.set_title(_title(record), fontsize=8, loc="left")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel(
        f"axial slice {session.active_slice} (patient right on the left, anterior up) - "
        f"model: {getattr(session.bbox2mask, 'name', type(session.bbox2mask).__name__)}",
        fontsize=7,
    )
    figure.tight_layout()
    try:
        with atomic_output_file(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=90)
    finally:
        plt.close(figure)
    return Path(path)


def _render_volume(session: VolumeSession, record: ReplayRecord, path: str | Path) -> Path:
    from AnatomyCommonLib.anatomy.label_schema import default_colors_rgb, label_id
    from AnatomyCommonLib.rendering import render_orthogonal_views

    value = label_id(session.target)
    mask = session.mask_volume(displayed=True)
    labels = mask.with_array((mask.array > 0).astype(np.uint8) * np.uint8(value))
    points = np.argwhere(mask.array > 0)
    center = None if len(points) == 0 else mask.kji_to_ras(points.mean(axis=0))[0]
    render_orthogonal_views(
        path,
        session.ct,
        labels,
        {value: default_colors_rgb()[value]},
        center_ras=center,
        title=f'{record.number}. "{record.text}" -> {record.kind}: '
        + re.sub(r"\s+", " ", record.message)[:150]
        + f" [model: {getattr(session.bbox2mask, 'name', type(session.bbox2mask).__name__)}]",
        overwrite=True,
    )
    return Path(path)
