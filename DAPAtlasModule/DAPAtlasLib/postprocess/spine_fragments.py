"""Step 2, spine fragment merging: pieces of a vertebra label stuck to the neighbouring vertebra.

Models confuse adjacent vertebrae: part of T5 is labelled T4 (or T6), the lower part of L5 is
labelled sacrum. Such a part is a separate 6-connected component of the wrong label that touches
the main body (largest component) of the vertebra it really belongs to. The chain runs C1..L5
and the sacrum; for each of them, each component other than its main body is given to the
bone whose main body it touches most (26-neighbourhood contact count); if it touches only its
own main body, or no bone of the chain at all, it is left alone (the largest-component rule
decides about floating pieces later).

Differences from the released script: the release looked only at the vertebra directly above
(else the one below) and used a voxel-count threshold (pieces of <= 10 voxels dropped to
background); here contact decides, in any orientation, and nothing is deleted by this step.
C1 and the sacrum take part too (the release skipped both, so the lower part of L5 labelled
sacrum stayed sacrum there and became background at the largest-component rule here).
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

from AnatomyCommonLib.volume import Volume

from .label_editing import component_statistics
from .report import StepReport
from .step_context import PostprocessSettings, StepContext

STEP_NAME = "spine_fragments"
VERTEBRAE: tuple[int, ...] = tuple(range(43, 67))  # C1 .. L5
SACRUM = 102
#: The chain of bones whose fragments are exchanged: C1 .. L5 and the sacrum.
SPINE_CHAIN: tuple[int, ...] = (*VERTEBRAE, SACRUM)

_STRUCTURE_26 = np.ones((3, 3, 3), dtype=bool)


def run(context: StepContext) -> StepReport:
    """Merge vertebra fragments into the vertebra they touch, in place."""
    report = context.new_report(STEP_NAME)
    editor = context.editor
    present = editor.present_labels(SPINE_CHAIN)
    if len(present) < 2:
        return report.skip(f"{len(present)} vertebra(e)/sacrum present; fragments need a neighbouring one")
    region = editor.box(*present, margin=1)
    crop = editor.array[region]
    # the chain's labels, others 0 (C1..L5 are one id range; comparisons beat a lookup table)
    in_chain = np.subtract(crop, VERTEBRAE[0], dtype=np.uint8) < len(VERTEBRAE)
    in_chain |= crop == SACRUM
    spine = np.where(in_chain, crop, np.uint8(0))
    del in_chain
    pieces, n = cc3d.connected_components(spine, connectivity=6, return_N=True)
    if n == 0:
        return report.skip("no vertebra voxels")
    stats = component_statistics(pieces, n)
    sizes = np.asarray(stats["voxel_counts"])
    piece_label = np.zeros(n + 1, dtype=np.uint8)
    piece_label[1:] = spine.ravel()[stats["first_voxel"][1:]]
    pieces_of = np.bincount(piece_label[1:], minlength=256)
    for label in present:  # (the largest-component rule need not label these again)
        if pieces_of[label] == 1:
            context.note_single_piece(label, 6)
    main_piece = {}
    for label in present:
        candidates = np.flatnonzero(piece_label == label)
        candidates = candidates[candidates > 0]
        if candidates.size:
            main_piece[label] = int(candidates[np.argmax(sizes[candidates])])
    # main bodies: piece -> vertebra label if the piece is that vertebra's main body
    is_main = np.zeros(n + 1, dtype=np.uint8)
    for label, piece in main_piece.items():
        is_main[piece] = label
    moved = 0
    boxes = stats["bounding_boxes"]
    for piece in range(1, n + 1):
        label = int(piece_label[piece])
        if label == 0 or main_piece.get(label) == piece:
            continue
        box = tuple(
            slice(max(0, sl.start - 1), min(dim, sl.stop + 1))
            for sl, dim in zip(boxes[piece], pieces.shape, strict=True)
        )
        own = pieces[box] == piece
        ring = ndimage.binary_dilation(own, structure=_STRUCTURE_26) & ~own
        contact = np.bincount(is_main[pieces[box][ring]], minlength=256)
        contact[0] = 0
        if not contact.any():
            continue
        target = int(np.argmax(contact))
        if target == label:
            continue
        global_box = tuple(
            slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
        )
        moved += editor.relabel(global_box, own, target, report)
    report.rules.append("vertebra fragments join the vertebra they touch")
    report.details["fragments_checked"] = int(n - len(main_piece))
    return report


def merge_spine_fragments(
    labels: Volume, *, settings: PostprocessSettings | None = None
) -> tuple[Volume, StepReport]:
    """Spine fragment merging of a DAP label map; returns the new label map and the report."""
    from . import run_single_step

    return run_single_step(run, labels, settings=settings)
