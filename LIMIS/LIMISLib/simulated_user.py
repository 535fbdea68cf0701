"""A simulated clinician for LIMIS: an oracle that sees the truth and chooses commands, step by step.

The oracle never hands the truth to a model: it only chooses what to type or click (the same
commands a user has), and the session runs them with its BBox2Mask as always. Per case (one
structure on one axial slice):

* **step 0**: ``segment`` with the structure's box on the slice **jittered** (shift and scale, so that
  the first mask is not built from a perfect box), the default adaptation is then accepted or
  rejected, whichever gives the better Dice;
* each further step, from the current errors (false positives FP, false negatives FN on the slice),
  what a clinician would type or click, in this order of preference:

  1. the box moves or grows when the truth reaches outside it ("move the box left by 4 pixels",
     "enlarge the box by 3 pixels");
  2. a **guided strategy** when the problem is clear: "wrong part" when the mask barely touches the
     structure (Dice < 0.2), "you over-segmented" / "you under-segmented" when FP (FN) is at least
     twice FN (FP) and at least 10 % of the structure's area; the oracle then goes through the
     strategy's dialogue like a user: proposals accepted when they help, critical-region questions
     answered from what it sees (is the asked point on the structure?), grid clicks in the cells
     whose centre lies on a missed (positive) or wrongly included (negative) part, then "accept";
  3. the **organ's CT window** ("organ window") when the current step has none or another one,
     else the window adapted to the structure ("low HU values");
  4. a positive click at the innermost pixel of the largest FN region or a negative click at the
     innermost pixel of the largest FP region (mouse points, :meth:`VolumeSession.click`);
  5. a threshold change ("raise/lower the threshold by 0.1").

  Each text command is tried at most once per case when it did not help;
* after each action the oracle **reverts** when the Dice got worse ("undo", or "revert to step N"
  after a multi-step strategy), as the user study's participants could go back to any step;
  proposals are accepted when they help, else rejected.

The truth reaches the session only through these choices (and yes/no answers): the models get the
CT slice, the box, the clicks and their own previous output, as with a real user.

``steps`` Dice values per case are the Dice of the shown mask after each step (step 0 = first mask).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ct_windows import window_for_structure
from .exceptions import InvalidPromptError
from .model_interfaces import BBox2Mask, Box
from .slice_geometry import box_around_mask, clip_box
from .volume_session import VolumeSession

#: |Dice change| below this counts as unchanged.
UNCHANGED_TOLERANCE = 1e-3


@dataclass
class CaseResult:
    """One simulated case: its identity and the Dice after every step (index 0 = first mask)."""

    case: str
    structure: str
    slice_index: int
    dice: list[float] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(np.logical_and(a, b))) / total


def jittered_box(
    truth: np.ndarray, rng: np.random.Generator, *, shift: float = 0.15, scale: float = 0.2
) -> Box:
    """The truth's tight box shifted by up to ``shift`` of its size and scaled by 1 +- ``scale``."""
    x0, y0, x1, y1 = box_around_mask(truth)
    width, height = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2 + rng.uniform(-shift, shift) * width
    cy = (y0 + y1) / 2 + rng.uniform(-shift, shift) * height
    factor_x, factor_y = 1 + rng.uniform(-scale, scale), 1 + rng.uniform(-scale, scale)
    half_w, half_h = max(1.5, width * factor_x / 2), max(1.5, height * factor_y / 2)
    return clip_box((cx - half_w, cy - half_h, cx + half_w, cy + half_h), truth.shape)


class OracleUser:
    """Chooses the next command from the truth (see the module docstring)."""

    def __init__(self, truth_slice: np.ndarray, *, min_click_area_px: int = 4) -> None:
        self.truth = np.asarray(truth_slice, dtype=bool)
        self.truth_box = box_around_mask(self.truth)
        self.min_click_area_px = int(min_click_area_px)

    def score(self, mask: np.ndarray) -> float:
        return dice(mask, self.truth)

    def next_action(
        self, mask: np.ndarray, box: Box, tried: set, *, window_is_organ: bool = True
    ) -> tuple[str, tuple | str]:
        """("text" or "guided", command text) or ("click", (x, y, positive)).

        ``tried`` = actions already reverted; ``window_is_organ``: whether the current step uses the
        structure's own CT window (what the user sees in the step list).
        """
        tx0, ty0, tx1, ty1 = self.truth_box
        x0, y0, x1, y1 = box
        outside = {"left": x0 - tx0, "right": tx1 - x1, "up": y0 - ty0, "down": ty1 - y1}
        direction, amount = max(outside.items(), key=lambda item: item[1])
        if amount >= 2:
            opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}[direction]
            if outside[opposite] < -2:  # room on the other side: move; else grow
                text = f"move the box {direction} by {round(amount)} pixels"
            else:
                text = f"enlarge the box by {round(min(amount, 10))} pixels"
            if text not in tried:
                return "text", text
        for text in self._guided_choices(mask):
            if text not in tried:
                return "guided", text
        for text in ([] if window_is_organ else ["organ window"]) + ["low HU values"]:
            if text not in tried:
                return "guided" if text == "low HU values" else "text", text
        for kind in self._click_order(mask):
            point = self._innermost_point(kind, mask)
            if point is not None and ("click", point) not in tried:
                return "click", point
        text = (
            "lower the threshold by 0.1"
            if (self.truth & ~mask).sum() > (mask & ~self.truth).sum()
            else ("raise the threshold by 0.1")
        )
        return "text", text

    def _guided_choices(self, mask: np.ndarray) -> list[str]:
        """The guided strategies whose problem the errors show clearly (see the module docstring)."""
        area = max(int(self.truth.sum()), 1)
        fn, fp = int((self.truth & ~mask).sum()), int((mask & ~self.truth).sum())
        choices = []
        if self.score(mask) < 0.2:
            choices.append("wrong part")
        if fp >= 2 * fn and fp >= 0.1 * area:
            choices.append("you over-segmented")
        if fn >= 2 * fp and fn >= 0.1 * area:
            choices.append("you under-segmented")
        return choices

    def answer(self, region) -> str:
        """Yes/no to "is this region part of the structure?": is its point on the structure."""
        x, y = region.point
        row, column = int(np.floor(y)), int(np.floor(x))
        inside = 0 <= row < self.truth.shape[0] and 0 <= column < self.truth.shape[1]
        return "yes" if inside and self.truth[row, column] else "no"

    def grid_click(self, mask: np.ndarray, box: Box, done: set[int]) -> str | None:
        """A grid click in the cell whose centre lies deepest inside a missed / wrongly included part."""
        from scipy import ndimage

        from .click_grid import cell_center

        best = None
        for positive, error in ((True, self.truth & ~mask), (False, mask & ~self.truth)):
            if not error.any():
                continue
            depth = ndimage.distance_transform_edt(error)
            for cell in range(1, 17):
                x, y = cell_center(box, cell)
                row, column = int(np.floor(y)), int(np.floor(x))
                if cell in done or not (0 <= row < mask.shape[0] and 0 <= column < mask.shape[1]):
                    continue
                if depth[row, column] >= 1.5 and (best is None or depth[row, column] > best[0]):
                    best = (float(depth[row, column]), cell, positive)
        if best is None:
            return None
        return f"{'positive' if best[2] else 'negative'} click in cell {best[1]}"

    def _click_order(self, mask: np.ndarray) -> list[bool]:
        fn, fp = int((self.truth & ~mask).sum()), int((mask & ~self.truth).sum())
        return [True, False] if fn >= fp else [False, True]

    def _innermost_point(self, positive: bool, mask: np.ndarray) -> tuple[float, float, bool] | None:
        from scipy import ndimage

        error = (self.truth & ~mask) if positive else (mask & ~self.truth)
        labels, count = ndimage.label(error)
        if count == 0:
            return None
        sizes = np.bincount(labels.ravel())[1:]
        largest = int(np.argmax(sizes)) + 1
        if sizes[largest - 1] < self.min_click_area_px:
            return None
        distance = ndimage.distance_transform_edt(labels == largest)
        row, column = np.unravel_index(int(np.argmax(distance)), distance.shape)
        return (float(column) + 0.5, float(row) + 0.5, positive)


def run_case(
    session: VolumeSession,
    structure: str,
    slice_index: int,
    truth_slice: np.ndarray,
    *,
    steps: int,
    rng: np.random.Generator,
    case: str = "",
) -> CaseResult:
    """Simulate ``steps`` oracle actions on one slice (see the module docstring)."""
    oracle = OracleUser(truth_slice)
    result = CaseResult(case, structure, slice_index)
    session.set_active_slice(slice_index)
    session.segment(structure, box_xyxy=jittered_box(oracle.truth, rng))
    active = session.active
    if active.pending == "proposal":  # the default adaptation: keep it when it helps
        better = oracle.score(active.displayed.mask) > oracle.score(active.current.mask)
        session.handle("accept" if better else "reject", semantic=False)
    result.dice.append(oracle.score(session.slice_mask(slice_index)))
    result.actions.append("segment (jittered box) + default adaptation decision")
    tried: set = set()
    organ_window = window_for_structure(structure)
    for _ in range(steps):
        before = result.dice[-1]
        start_index = session.active.current_index
        window = session.active.current.window
        kind, action = oracle.next_action(
            session.slice_mask(slice_index),
            session.active.current.box_xyxy,
            tried,
            window_is_organ=window is not None
            and (window.width_hu, window.level_hu) == (organ_window.width_hu, organ_window.level_hu),
        )
        if kind == "click":
            reply = session.click(action[0], action[1], positive=action[2])
            label = f"{'positive' if action[2] else 'negative'} click at ({action[0]:.0f}, {action[1]:.0f})"
        elif kind == "guided":
            reply = _guided_episode(session, oracle, action, slice_index)
            label = f"{action} (guided: {reply.message[:60]})" if not reply.ok else action
        else:
            reply = session.handle(action, semantic=False)
            label = action
        pending = session.active.pending
        if reply.ok and pending == "proposal":
            better = oracle.score(session.active.displayed.mask) > before
            session.handle("accept" if better else "reject", semantic=False)
        elif pending is not None:
            session.handle("cancel", semantic=False)
        after = oracle.score(session.slice_mask(slice_index))
        if not reply.ok or after < before:
            tried.add((kind, action) if kind == "click" else action)
            if reply.ok:
                back = "undo" if kind != "guided" else f"revert to step {start_index}"
                session.handle(back, semantic=False)
                label += f" -> worse, {back}"
            else:
                label += " -> not possible"
            after = oracle.score(session.slice_mask(slice_index))
        elif kind != "click" and after <= before + UNCHANGED_TOLERANCE:
            tried.add(action)  # no gain: a clinician would not say it again
        result.dice.append(after)
        result.actions.append(label)
    return result


def _guided_episode(session: VolumeSession, oracle: OracleUser, text: str, slice_index: int, limit: int = 12):
    """Type a guided strategy and go through its dialogue as a user would (see the module docstring)."""
    reply = session.handle(text, semantic=False)
    if not reply.ok:
        return reply
    clicked: set[int] = set()
    for _ in range(limit):
        active = session.active
        mode = active.pending
        if mode == "proposal":
            better = oracle.score(active.displayed.mask) > oracle.score(active.current.mask)
            answer = "accept" if better else "reject"
        elif mode == "question":
            answer = oracle.answer(active.asked_region)
        elif mode == "grid":
            answer = oracle.grid_click(active.current.mask, active.current.box_xyxy, clicked)
            if answer is None or len(clicked) >= 2:
                answer = "accept"
            else:
                clicked.add(int(answer.rsplit(" ", 1)[1]))
        elif mode is None:
            break
        else:  # examples: not part of a strategy
            answer = "reject"
        session.handle(answer, semantic=False)
    return reply


def phantom_cases(seeds, structures, *, slices_per_case: int = 3, size: str = "tiny"):
    """(case name, CT, labels, structure, slice index) over phantom seeds, structures and slices."""
    from AnatomyCommonLib.anatomy.label_schema import label_id
    from AnatomyCommonLib.anatomy.phantom import make_phantom

    for seed in seeds:
        phantom = make_phantom(size, seed=int(seed), orientation="LPS", n_lesions=0)
        yield from labelled_volume_cases(
            f"phantom{seed}", phantom.ct, phantom.labels, structures, slices_per_case, label_id
        )


def labelled_volume_cases(name, ct, labels, structures, slices_per_case, label_id):
    from .slice_geometry import AxialSliceGeometry

    geometry = AxialSliceGeometry.from_volume(ct)
    for structure in structures:
        truth = labels.array == label_id(structure)
        present = [k for k in range(geometry.n_slices) if geometry.extract(truth, k).sum() >= 16]
        if not present:
            continue
        picks = np.linspace(0, len(present) - 1, slices_per_case + 2)[1:-1]
        for index in sorted({present[round(p)] for p in picks}):
            yield name, ct, labels, structure, index


def evaluate_interaction(cases, bbox2mask: BBox2Mask, *, steps: int, seed: int = 0) -> list[CaseResult]:
    """Run the oracle on every case with ``bbox2mask``; the first box of each case is jittered."""
    from AnatomyCommonLib.anatomy.label_schema import label_id

    rng = np.random.default_rng(seed)
    results = []
    for name, ct, labels, structure, slice_index in cases:
        session = VolumeSession(ct, bbox2mask)
        truth = session.geometry.extract(labels.array == label_id(structure), slice_index)
        # the jittered box always overlaps the structure, so every case starts from a box on it
        results.append(run_case(session, structure, slice_index, truth, steps=steps, rng=rng, case=name))
    return results


def summarise(results: list[CaseResult]) -> dict:
    """Fractions improved / worse / unchanged (last step vs step 0), mean and SD of the change, per organ."""

    def block(rows: list[CaseResult]) -> dict:
        change = np.array([r.dice[-1] - r.dice[0] for r in rows]) if rows else np.zeros(0)
        n = len(rows)
        return {
            "cases": n,
            "improved": float(np.mean(change > UNCHANGED_TOLERANCE)) if n else 0.0,
            "worse": float(np.mean(change < -UNCHANGED_TOLERANCE)) if n else 0.0,
            "unchanged": float(np.mean(np.abs(change) <= UNCHANGED_TOLERANCE)) if n else 0.0,
            "mean_dice_change": float(change.mean()) if n else 0.0,
            "sd_dice_change": float(change.std()) if n else 0.0,
            "mean_dice_first": float(np.mean([r.dice[0] for r in rows])) if n else 0.0,
            "mean_dice_last": float(np.mean([r.dice[-1] for r in rows])) if n else 0.0,
        }

    summary = block(results)
    summary["per_structure"] = {
        structure: block([r for r in results if r.structure == structure])
        for structure in sorted({r.structure for r in results})
    }
    return summary


def write_outputs(results: list[CaseResult], out_dir, *, model_name: str, overwrite: bool = False) -> dict:
    """``steps.csv`` (Dice per step per case), ``summary.json`` and ``dice_vs_step.png`` into ``out_dir``.

    Everything is computed first; an existing non-empty folder needs ``overwrite``.
    """
    import csv
    import io
    import json
    from pathlib import Path

    from AnatomyCommonLib.atomic_output import atomic_output_file
    from AnatomyCommonLib.errors import OutputExistsError

    if not results:
        raise InvalidPromptError("No case could be simulated (no structure with >= 16 pixels on a slice).")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} is not empty; choose another folder or pass --overwrite.")
    summary = {"model": model_name, **summarise(results)}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["case", "structure", "slice", "step", "dice", "action"])
    for r in results:
        for step, (value, action) in enumerate(zip(r.dice, r.actions, strict=True)):
            writer.writerow([r.case, r.structure, r.slice_index, step, f"{value:.6f}", action])
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output_file(out / "steps.csv", suffix=".csv") as temporary:
        Path(temporary).write_text(buffer.getvalue(), encoding="utf-8")
    with atomic_output_file(out / "summary.json", suffix=".json") as temporary:
        Path(temporary).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _plot(results, out / "dice_vs_step.png", model_name)
    return summary


def _plot(results: list[CaseResult], path, model_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from AnatomyCommonLib.atomic_output import atomic_output_file

    table = np.array([r.dice for r in results])
    mean, sd = table.mean(axis=0), table.std(axis=0)
    steps = np.arange(table.shape[1])
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(steps, mean, marker="o", label="mean")
    axes.fill_between(steps, mean - sd, mean + sd, alpha=0.25, label="+/- SD")
    axes.set_xlabel("interaction step (0 = first mask)")
    axes.set_ylabel("Dice on the slice")
    axes.set_ylim(0, 1)
    axes.set_title(f"simulated user, {len(results)} cases, model: {model_name}", fontsize=9)
    axes.legend()
    figure.tight_layout()
    try:
        with atomic_output_file(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=90)
    finally:
        plt.close(figure)
