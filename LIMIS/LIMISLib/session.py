"""The LIMIS interaction loop on one 2D slice: every step kept, any step revertible.

A :class:`InteractionSession` holds one axial slice (display orientation, HU), a BBox2Mask (any
object implementing :class:`~LIMISLib.model_interfaces.BBox2Mask`) and optionally a Lang2BBox. Each
**step** records its CT window, box, positive/negative clicks, threshold, the previous prediction it
was given, the probability map, the mask and the command that produced it. Steps form a tree:
reverting to an older step and acting again starts a new branch and keeps the old one; any step can
be chosen as the final mask.

Semantics the tests check (and users can rely on):

* **Threshold**: the mask is ``probability >= threshold``. A threshold change reuses the parent's
  probability map (no model run), so a higher threshold never grows the mask.
* **Clicks are the user's word on their pixel**: whatever the network does elsewhere, the pixel
  under a positive click is always in the mask and the pixel under a negative click never is (the
  later click wins on the same pixel). Clicks stay in the state and are re-applied after every
  later model run, until reverted.
* **Removed components stay removed**: ``remove_component`` erases that 8-connected component
  (components are numbered by size, 1 = largest) from this and all later steps of the branch; a
  later positive click on an erased pixel brings back only that pixel.
* **Previous prediction**: every model run gets the parent step's prediction as its "previous
  logits" input (as ScribblePrompt iterates), except the first segmentation.
* **Default adaptation** (dissertation 3.3.2.2): after the first segmentation the session proposes
  the structure's CT window (:func:`~LIMISLib.ct_windows.window_for_structure`) together with the box
  enlarged by 10 px per side; the user keeps it (accept) or not (reject).
* **Dialogue**: proposals (default adaptation, guided-strategy stages), critical-region questions,
  example previews and the grid stage of a guided strategy are *pending* until answered; any other
  command drops what is pending, except a reply that was not understood: that keeps it and asks
  again. A proposal becomes a step only when accepted.
* **Atomic commands**: a command that fails (``Reply.ok`` False) leaves the steps, the current and
  final step and the pending dialogue exactly as they were.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from AnatomyCommonLib.errors import AnatomyToolkitError, NonFiniteValuesError

from . import guided_strategies
from .click_grid import cell_center, require_cell
from .command_grammar import Command, ParseContext, api_command, help_text, parse_command
from .critical_regions import CriticalRegion, find_critical_regions
from .ct_windows import Window, preset, window_for_structure
from .exceptions import ImageDimensionError, InvalidPromptError
from .model_interfaces import BBox2Mask, Box, Lang2BBox, MaskPrediction, Point
from .slice_geometry import box_center, box_pixel_slices, clip_box, move_box, resize_box

__all__ = [
    "Click",
    "InteractionSession",
    "Reply",
    "SessionConfig",
    "SessionState",
    "Step",
    "components_by_size",
    "derive_mask",
]

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class Click(NamedTuple):
    """A click in continuous pixel coordinates; ``positive`` = foreground."""

    x: float
    y: float
    positive: bool


@dataclass(frozen=True, eq=False)
class SessionState:
    """What the user controls in a step (the model's inputs plus the mask edits)."""

    box_xyxy: Box
    window: Window | None
    threshold: float
    clicks: tuple[Click, ...] = ()
    erased: np.ndarray | None = None  # bool (H, W): pixels removed with remove_component

    @property
    def positive_clicks(self) -> list[Point]:
        return [(c.x, c.y) for c in self.clicks if c.positive]

    @property
    def negative_clicks(self) -> list[Point]:
        return [(c.x, c.y) for c in self.clicks if not c.positive]

    def with_(self, **changes) -> SessionState:
        return replace(self, **changes)


def derive_mask(probabilities: np.ndarray, state: SessionState) -> np.ndarray:
    """The step's mask: threshold, minus erased components, then every click enforced on its pixel."""
    mask = np.asarray(probabilities) >= state.threshold
    if state.erased is not None:
        mask &= ~state.erased
    rows, columns = mask.shape
    for click in state.clicks:
        r, c = int(np.floor(click.y)), int(np.floor(click.x))
        if 0 <= r < rows and 0 <= c < columns:
            mask[r, c] = click.positive
    return mask


def components_by_size(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected components of a 2D mask, largest first (ties: first in raster order)."""
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=_EIGHT_CONNECTED)
    if count == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    order = sorted(range(count), key=lambda index: (-sizes[index], index))
    return [labels == index + 1 for index in order]


@dataclass(eq=False)
class Step:
    """One step of the session (see the module docstring). ``index`` -1 = not committed (a proposal)."""

    index: int
    parent: int | None
    command: Command
    action: str
    state: SessionState
    prediction: MaskPrediction
    mask: np.ndarray
    previous: MaskPrediction | None = None
    origin: str = "manual"
    model_seconds: float = 0.0

    @property
    def area_px(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def window(self) -> Window | None:
        return self.state.window

    @property
    def box_xyxy(self) -> Box:
        return self.state.box_xyxy

    @property
    def threshold(self) -> float:
        return self.state.threshold

    def summary(self) -> str:
        """One line for step lists: "3 (from 2) raised the threshold 0.50 -> 0.60 | 1234 px"."""
        parent = "" if self.parent is None else f" (from {self.parent})"
        return f"{self.index}{parent} {self.action} | {self.area_px} px"


@dataclass(frozen=True)
class SessionConfig:
    """Tunable defaults of the loop (all documented in the module and README)."""

    initial_threshold: float = 0.5
    default_box_enlargement_px: float = 10.0
    point_box_margin_px: float = 5.0
    propose_default_adaptation: bool = True
    feed_previous_prediction: bool = True
    min_threshold: float = 0.01
    max_threshold: float = 0.99
    critical_band: float = 0.15
    max_critical_regions: int = 3
    adapted_window_width_hu: float = 150.0
    ensemble_box_px: float = 10.0
    example_box_px: float = 10.0
    example_threshold_step: float = 0.1


@dataclass
class Reply:
    """What a command did: a message for the conversation log and what to show next.

    ``step`` is the step that became current (new or reverted to); ``preview`` an uncommitted
    candidate to display while a proposal is pending; ``options`` the example candidates;
    ``question`` the open yes/no question; ``changed_slices`` (volume sessions) the slices whose
    displayed mask changed.
    """

    command: Command
    message: str
    ok: bool = True
    step: Step | None = None
    pending: str | None = None
    preview: Step | None = None
    options: tuple[Step, ...] = ()
    question: str | None = None
    changed_slices: tuple[int, ...] = ()
    writes_final: bool = False  # the chosen final step (not the displayed one) is what to write
    choices: tuple[str, ...] = ()  # numbered candidates offered ("did you mean 1 ... 2 ..."); a number picks


@dataclass
class _Pending:
    mode: str  # "proposal" | "question" | "examples" | "grid"
    message: str
    candidate: Step | None = None
    options: list[Step] = field(default_factory=list)
    regions: list[CriticalRegion] = field(default_factory=list)
    answers: list[bool] = field(default_factory=list)
    base: Step | None = None
    command: Command | None = None


class InteractionSession:
    """The interaction loop on one 2D slice (see the module docstring)."""

    def __init__(
        self,
        image_hu: np.ndarray,
        bbox2mask: BBox2Mask,
        *,
        target: str,
        lang2bbox: Lang2BBox | None = None,
        config: SessionConfig | None = None,
        pixel_spacing_mm: tuple[float, float] = (1.0, 1.0),
        slice_index: int | None = None,
    ) -> None:
        image = np.asarray(image_hu, dtype=np.float32)
        if image.ndim != 2:
            raise ImageDimensionError(
                f"A LIMIS session works on one 2D slice; got an array of shape {image.shape}."
            )
        if not np.isfinite(image).all():
            raise NonFiniteValuesError("The slice contains NaN or infinite values; fix the CT volume first.")
        self.image_hu = image
        self.bbox2mask = bbox2mask
        self.lang2bbox = lang2bbox
        self.target = target
        self.config = config or SessionConfig()
        self.pixel_spacing_mm = (float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1]))
        self.slice_index = slice_index
        self.steps: list[Step] = []
        self.box_margin_applied_px = 0.0  # margin the detector already added to the box (atlas boxes)
        self.current_index: int | None = None
        self.final_index: int | None = None
        self.log: list[tuple[str, str]] = []
        self.choices: tuple[str, ...] = ()  # candidates of the last ask-back (a bare number picks one)
        self._pending: _Pending | None = None
        self._strategy: guided_strategies.StrategyRun | None = None

    # ------------------------------------------------------------------ queries
    @property
    def image_shape(self) -> tuple[int, int]:
        return self.image_hu.shape

    @property
    def current(self) -> Step:
        if self.current_index is None:
            raise InvalidPromptError(f"Nothing is segmented yet; say 'segment the {self.target}' first.")
        return self.steps[self.current_index]

    @property
    def final(self) -> Step | None:
        return None if self.final_index is None else self.steps[self.final_index]

    @property
    def chosen(self) -> Step | None:
        """The step whose mask is the result: the final one if chosen, else the current one."""
        if self.final_index is not None:
            return self.steps[self.final_index]
        return None if self.current_index is None else self.steps[self.current_index]

    @property
    def displayed(self) -> Step | None:
        """What the viewer should show: a pending proposal's candidate, else the current step."""
        if self._pending is not None and self._pending.mode == "proposal":
            return self._pending.candidate
        return None if self.current_index is None else self.steps[self.current_index]

    @property
    def pending(self) -> str | None:
        """What the session waits for: None, "proposal", "question", "examples" or "grid"."""
        return None if self._pending is None else self._pending.mode

    @property
    def pending_message(self) -> str | None:
        return None if self._pending is None else self._pending.message

    @property
    def pending_options(self) -> list[Step]:
        return [] if self._pending is None else list(self._pending.options)

    @property
    def strategy(self) -> guided_strategies.StrategyRun | None:
        return self._strategy

    def parse_context(self) -> ParseContext:
        return ParseContext(
            pending=self.pending,
            target=self.target,
            n_steps=len(self.steps),
            n_examples=len(self.pending_options),
            choices=self.choices,
        )

    def branch(self, index: int | None = None) -> list[Step]:
        """The steps from step 0 to ``index`` (default: current) along the parent links."""
        index = self.current_index if index is None else index
        path = []
        while index is not None:
            step = self.steps[index]
            path.append(step)
            index = step.parent
        return path[::-1]

    # ------------------------------------------------------------------ entry points
    def handle(self, text: str, *, semantic: bool | None = None) -> Reply:
        """Parse ``text`` in the current dialogue context and apply it."""
        return self.apply(parse_command(text, self.parse_context(), semantic=semantic))

    def apply(self, command: Command) -> Reply:
        """Apply a parsed (or API-built) command; user errors become a Reply with ``ok=False``."""
        if command.kind == "unknown" and self._pending is not None:
            # a reply that was not understood never discards a proposal or the answers given so far
            reply = unknown_reply(command)
            reply.message += f" Still waiting: {self._pending.message}"
            reply.pending = self.pending
            if self.pending == "question":
                reply.question = self._pending.message
            if self.pending == "proposal":
                reply.preview = self._pending.candidate
            self.log.append((command.text or command.kind, reply.message))
            self.choices = reply.choices
            return reply
        snapshot = self._snapshot()
        notes = []
        if self._strategy is not None and not self._continues_strategy(command):
            notes.append(
                f"Stopped the guided strategy ({guided_strategies.PROBLEM_TITLES[self._strategy.problem]})."
            )
            self._strategy = None
        if self._pending is not None and not self._resolves_pending(command):
            notes.append(self._drop_pending_note())
            self._pending = None
        handler = getattr(self, f"_do_{command.kind}", None)
        if handler is None:
            reply = Reply(command, f"The command {command.kind!r} does not apply to a 2D session.", ok=False)
        else:
            try:
                reply = handler(command)
            except AnatomyToolkitError as error:
                reply = Reply(command, str(error), ok=False)
        if not reply.ok:  # a failed command changes nothing: the pending dialogue and history stay
            self._restore(snapshot)
            notes = []
        if notes:
            reply.message = " ".join([*notes, reply.message])
        reply.pending = self.pending
        if reply.question is None and self.pending == "question":
            reply.question = self._pending.message
        if reply.preview is None and self.pending == "proposal":
            reply.preview = self._pending.candidate
        self.log.append((command.text or command.kind, reply.message))
        self.choices = reply.choices
        return reply

    def _snapshot(self) -> tuple:
        pending, strategy = self._pending, self._strategy
        return (
            pending,
            None if pending is None else (list(pending.answers), pending.message),
            strategy,
            None if strategy is None else (strategy.position, list(strategy.steps_made)),
            self.current_index,
            self.final_index,
            len(self.steps),
        )

    def _restore(self, snapshot: tuple) -> None:
        pending, pending_state, strategy, strategy_state, current, final, n_steps = snapshot
        self._pending, self._strategy = pending, strategy
        if pending is not None:
            pending.answers[:], pending.message = pending_state[0], pending_state[1]
        if strategy is not None:
            strategy.position, strategy.steps_made[:] = strategy_state[0], strategy_state[1]
        self.current_index, self.final_index = current, final
        del self.steps[n_steps:]

    def start(
        self,
        box_xyxy: Box | None = None,
        *,
        window: Window | None = None,
        previous: MaskPrediction | None = None,
        command: Command | None = None,
        origin: str = "initial",
        propose_default: bool | None = None,
        threshold: float | None = None,
    ) -> Reply:
        """The initial segmentation (step 0, or a new branch if steps exist).

        Without ``box_xyxy`` the Lang2BBox detects the target's box. ``window`` None = min-max of
        the crop (ScribblePrompt's default); the default adaptation then proposes the organ window.
        """
        reply = self._start(
            box_xyxy,
            window=window,
            previous=previous,
            command=command,
            origin=origin,
            propose_default=propose_default,
            threshold=threshold,
        )
        self.log.append((reply.command.text or "segment", reply.message))
        return reply

    def _start(
        self,
        box_xyxy: Box | None = None,
        *,
        window: Window | None = None,
        previous: MaskPrediction | None = None,
        command: Command | None = None,
        origin: str = "initial",
        propose_default: bool | None = None,
        threshold: float | None = None,
    ) -> Reply:
        command = command or api_command("segment", f"segment the {self.target}", target=self.target)
        detail = "the given box"
        if box_xyxy is None:
            if self.lang2bbox is None:
                raise InvalidPromptError(
                    f"No Lang2BBox model is loaded to find the {self.target}; draw a box over it "
                    "(or install the "
                    "LIMIS weights, see 'python -m LIMISLib models list')."
                )
            detection = self.lang2bbox.detect(self.image_hu, self.target)
            box_xyxy = detection.box_xyxy
            detail = f"the box from {self.lang2bbox.name} (score {detection.score:.2f})"
            self.box_margin_applied_px = float(getattr(self.lang2bbox, "margin_px", 0.0))
        else:
            self.box_margin_applied_px = 0.0
        box = clip_box(box_xyxy, self.image_shape)
        self._pending = None
        self._strategy = None
        parent = None if self.current_index is None else self.steps[self.current_index]
        threshold = self.config.initial_threshold if threshold is None else float(threshold)
        state = SessionState(box_xyxy=box, window=window, threshold=threshold)
        step = self._make_step(
            parent,
            state,
            command,
            f"segmented the {self.target} in {detail}",
            origin=origin,
            previous=previous,
            use_parent_prediction=False,
        )
        self._commit(step)
        message = f"Step {step.index}: segmented the {self.target} ({step.area_px} px) in {_box_text(box)}."
        if detail != "the given box":
            message += f" Box source: {detail}."
        reply = Reply(command, message, step=step)
        propose = self.config.propose_default_adaptation if propose_default is None else propose_default
        if propose:
            candidate = self._candidate(api_command("default_adaptation", "default adaptation"), step)
            self._pending = _Pending(
                "proposal",
                f"Default adaptation: {_window_text(candidate.window)} and the box enlarged by "
                f"{self._default_enlargement_px():g} px per side -> {candidate.area_px} px "
                f"(now {step.area_px} px). Keep it? (accept / reject)",
                candidate=candidate,
            )
            reply.message += " " + self._pending.message
            reply.preview = candidate
        reply.pending = self.pending
        return reply

    def _point_click(self, base: Step, state: SessionState, command: Command) -> Step:
        """A click placed with the mouse anywhere on the slice (``x``, ``y`` in display pixels).

        A positive click outside the box grows the box to include it (plus
        ``point_box_margin_px``), since the model sees only what is in the box; a negative click
        outside the box changes nothing there but is kept (and enforced) like any click.
        """
        args = command.args
        rows, columns = self.image_shape
        x, y, positive = float(args["x"]), float(args["y"]), bool(args.get("positive", True))
        if not (0.0 <= x < columns and 0.0 <= y < rows):
            raise InvalidPromptError(
                f"The point ({x:.1f}, {y:.1f}) is outside the {columns} x {rows} pixel slice; "
                "place it on the image."
            )
        box = state.box_xyxy
        x0, y0, x1, y1 = box
        grown = positive and not (x0 <= x < x1 and y0 <= y < y1)
        if grown:
            margin = self.config.point_box_margin_px
            box = clip_box(
                (min(x0, x - margin), min(y0, y - margin), max(x1, x + margin), max(y1, y + margin)),
                self.image_shape,
            )
        sign = "positive" if positive else "negative"
        note = f", box grown to {_box_text(box)} to include it" if grown else ""
        return self._make_step(
            base,
            state.with_(box_xyxy=box, clicks=(*state.clicks, Click(x, y, positive))),
            command,
            f"{sign} click at ({x:.0f}, {y:.0f}){note}",
        )

    def _default_enlargement_px(self) -> float:
        """The default adaptation's box growth: the LIMIS margin less what the detector already added."""
        return max(0.0, self.config.default_box_enlargement_px - self.box_margin_applied_px)

    def set_box(self, box_xyxy: Box, *, text: str = "box drawn") -> Reply:
        """The user dragged/drew the box: a new step with that box (or the first segmentation)."""
        command = api_command("set_box", text, box=tuple(float(v) for v in box_xyxy))
        if self.current_index is None:
            return self.start(box_xyxy, command=command, origin="box drawn")
        return self.apply(command)

    # ------------------------------------------------------------------ step making
    def _run_model(
        self, state: SessionState, previous: MaskPrediction | None
    ) -> tuple[MaskPrediction, float]:
        start = time.perf_counter()
        prediction = self.bbox2mask.predict(
            self.image_hu,
            state.box_xyxy,
            positive_clicks=state.positive_clicks,
            negative_clicks=state.negative_clicks,
            previous=previous,
            window=state.window,
        )
        seconds = time.perf_counter() - start
        if np.shape(prediction.probabilities) != self.image_shape:
            raise InvalidPromptError(
                f"{getattr(self.bbox2mask, 'name', 'The BBox2Mask model')} returned probabilities of shape "
                f"{np.shape(prediction.probabilities)} for a {self.image_shape} slice."
            )
        return prediction, seconds

    def _make_step(
        self,
        parent: Step | None,
        state: SessionState,
        command: Command,
        action: str,
        *,
        origin: str = "manual",
        prediction: MaskPrediction | None = None,
        previous: MaskPrediction | None = None,
        use_parent_prediction: bool = True,
    ) -> Step:
        seconds = 0.0
        if prediction is None:
            if (
                previous is None
                and use_parent_prediction
                and parent is not None
                and self.config.feed_previous_prediction
            ):
                previous = parent.prediction
            prediction, seconds = self._run_model(state, previous)
        return Step(
            index=-1,
            parent=None if parent is None else parent.index,
            command=command,
            action=action,
            state=state,
            prediction=prediction,
            mask=derive_mask(prediction.probabilities, state),
            previous=previous,
            origin=origin,
            model_seconds=seconds,
        )

    def _commit(self, step: Step) -> Step:
        step.index = len(self.steps)
        self.steps.append(step)
        self.current_index = step.index
        if self._strategy is not None:
            self._strategy.steps_made.append(step.index)
        return step

    def _pixels(self, args: dict, default: float) -> float:
        if args.get("pixels") is not None:
            return float(args["pixels"])
        if args.get("mm") is not None:
            spacing = float(np.mean(self.pixel_spacing_mm))
            return float(np.sign(args["mm"]) * max(1, round(abs(float(args["mm"])) / spacing)))
        return float(default)

    def _window(self, args: dict, base: Step) -> Window:
        if "width" in args and "level" in args:
            width = float(args["width"])
            if width <= 0:
                raise InvalidPromptError(f"A CT window needs a positive width; got {args['width']} HU.")
            return Window(width, float(args["level"]), "custom")
        name = str(args.get("preset", "organ")).lower()
        organ_window = window_for_structure(self.target)
        if name == "organ":
            return organ_window
        if name == "adapted":
            return self._adapted_window(base)
        if name == "alternative":
            if base.window is None or not _same_window(base.window, organ_window):
                return organ_window
            return self._adapted_window(base)
        try:
            return preset(name)
        except KeyError as error:
            raise InvalidPromptError(
                f"{error.args[0]} Or say 'organ window' (the {self.target}'s) "
                "or 'window 400 40' (width, level)."
            ) from None

    def _adapted_window(self, base: Step) -> Window:
        """A window centred on the structure's median HU (mask, else the box centre), configurable width."""
        pixels = base.mask
        if not pixels.any():
            pixels = np.zeros(self.image_shape, dtype=bool)
            rows, columns = box_pixel_slices(base.box_xyxy, self.image_shape)
            height, width = rows.stop - rows.start, columns.stop - columns.start
            pixels[
                rows.start + height // 3 : rows.start + max(height // 3 + 1, 2 * height // 3),
                columns.start + width // 3 : columns.start + max(width // 3 + 1, 2 * width // 3),
            ] = True
        level = float(np.median(self.image_hu[pixels]))
        return Window(self.config.adapted_window_width_hu, round(level), "adapted")

    def _candidate(self, command: Command, base: Step) -> Step:
        """The uncommitted step a manual action would produce from ``base``."""
        kind, args, state = command.kind, command.args, base.state
        shape = self.image_shape
        if kind == "move_box":
            pixels = self._pixels(args, 5)
            direction = args.get("direction")
            offsets = {
                "left": (-pixels, 0.0),
                "right": (pixels, 0.0),
                "up": (0.0, -pixels),
                "down": (0.0, pixels),
            }
            if direction not in offsets:
                raise InvalidPromptError(f"Move the box left, right, up or down; got {direction!r}.")
            box = move_box(state.box_xyxy, *offsets[direction], shape)
            if np.allclose(box, state.box_xyxy):
                raise InvalidPromptError(f"The box is already at the {direction} edge of the image.")
            return self._make_step(
                base, state.with_(box_xyxy=box), command, f"moved the box {direction} by {pixels:g} px"
            )
        if kind == "resize_box":
            pixels = self._pixels(args, 10)
            box = resize_box(state.box_xyxy, pixels, shape)
            verb = "enlarged" if pixels > 0 else "shrank"
            return self._make_step(
                base, state.with_(box_xyxy=box), command, f"{verb} the box by {abs(pixels):g} px per side"
            )
        if kind == "set_box":
            box = clip_box(args["box"], shape)
            return self._make_step(
                base, state.with_(box_xyxy=box), command, f"box set to {_box_text(box)}", origin="box drawn"
            )
        if kind == "default_adaptation":
            from .bbox2mask import enlarge_box

            box = clip_box(enlarge_box(state.box_xyxy, self._default_enlargement_px(), shape), shape)
            window = window_for_structure(self.target)
            return self._make_step(
                base,
                state.with_(box_xyxy=box, window=window),
                command,
                f"default adaptation: {_window_text(window)}, box +{self._default_enlargement_px():g} px",
                origin="default",
            )
        if kind == "threshold":
            if args.get("value") is not None:
                new = float(args["value"])
            else:
                new = state.threshold + float(args.get("delta", 0.1))
            new = float(np.clip(round(new, 4), self.config.min_threshold, self.config.max_threshold))
            if abs(new - state.threshold) < 1e-9:
                raise InvalidPromptError(f"The threshold is already {state.threshold:.2f}.")
            verb = "raised" if new > state.threshold else "lowered"
            return self._make_step(
                base,
                state.with_(threshold=new),
                command,
                f"{verb} the threshold {state.threshold:.2f} -> {new:.2f}",
                prediction=base.prediction,
            )
        if kind == "grid_click":
            try:
                cell = require_cell(args.get("cell"))
            except ValueError as error:
                raise InvalidPromptError(str(error)) from None
            positive = bool(args.get("positive", True))
            x, y = cell_center(state.box_xyxy, cell)
            clicks = (*state.clicks, Click(x, y, positive))
            sign = "positive" if positive else "negative"
            return self._make_step(
                base, state.with_(clicks=clicks), command, f"{sign} click in grid cell {cell}"
            )
        if kind == "point_click":
            return self._point_click(base, state, command)
        if kind == "center_click":
            x, y = box_center(state.box_xyxy)
            return self._make_step(
                base,
                state.with_(clicks=(*state.clicks, Click(x, y, True))),
                command,
                "positive click in the box centre",
            )
        if kind == "window":
            window = self._window(args, base)
            return self._make_step(
                base, state.with_(window=window), command, f"CT window {_window_text(window)}"
            )
        if kind == "remove_component":
            return self._remove_component_candidate(command, base)
        if kind == "ensemble":
            return self._ensemble_candidate(command, base)
        raise InvalidPromptError(f"{kind} is not a manual action.")

    def _remove_component_candidate(self, command: Command, base: Step) -> Step:
        components = components_by_size(base.mask)
        if not components:
            raise InvalidPromptError("The mask is empty; there is no component to remove.")
        erased = (
            np.zeros(self.image_shape, dtype=bool) if base.state.erased is None else base.state.erased.copy()
        )
        if command.args.get("keep_largest"):
            if len(components) == 1:
                raise InvalidPromptError("The mask has a single component already.")
            for component in components[1:]:
                erased |= component
            action = f"kept the largest component (removed {len(components) - 1})"
        else:
            index = int(command.args.get("index", 0))
            if not 1 <= index <= len(components):
                raise InvalidPromptError(
                    f"The mask has {len(components)} component(s), numbered 1 (largest) to "
                    f"{len(components)}; got {index}."
                )
            erased |= components[index - 1]
            action = f"removed component {index} ({int(components[index - 1].sum())} px)"
        # clicks on erased pixels no longer force them back (the removal is the later decision)
        clicks = tuple(c for c in base.state.clicks if not (c.positive and _on(erased, c)))
        state = base.state.with_(erased=erased, clicks=clicks)
        return self._make_step(base, state, command, action, prediction=base.prediction)

    def _ensemble_candidate(self, command: Command, base: Step) -> Step:
        members = [
            self._candidate(
                api_command("resize_box", "ensemble: bigger box", pixels=self.config.ensemble_box_px), base
            ),
            self._candidate(api_command("center_click", "ensemble: center click"), base),
            self._candidate(api_command("window", "ensemble: window", preset="alternative"), base),
        ]
        probabilities = np.mean([m.prediction.probabilities for m in members], axis=0).astype(np.float32)
        clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
        prediction = MaskPrediction(
            logits=np.log(clipped / (1 - clipped)).astype(np.float32),
            probabilities=probabilities,
            extras={"ensemble_of": [m.action for m in members]},
        )
        step = self._make_step(
            base,
            base.state,
            command,
            "ensemble (mean probability) of: " + "; ".join(m.action for m in members),
            origin="ensemble",
            prediction=prediction,
        )
        step.model_seconds = sum(m.model_seconds for m in members)
        return step

    # ------------------------------------------------------------------ pending dialogue
    def _resolves_pending(self, command: Command) -> bool:
        mode = self._pending.mode
        if command.kind in {"accept", "reject", "answer", "help", "undo"}:
            return True
        return mode == "grid" and command.kind == "grid_click"

    def _continues_strategy(self, command: Command) -> bool:
        if command.kind in {"accept", "reject", "answer", "help"}:
            return True
        return self.pending == "grid" and command.kind == "grid_click"

    def _drop_pending_note(self) -> str:
        mode = self._pending.mode
        if mode == "proposal":
            return "Did not keep the proposal."
        if mode == "question":
            return "Stopped the questions."
        if mode == "examples":
            return "Closed the examples."
        return "Ended the grid clicks."

    def _commit_manual(self, command: Command) -> Reply:
        step = self._commit(self._candidate(command, self.current))
        return Reply(command, f"Step {step.index}: {step.action} -> {step.area_px} px.", step=step)

    # ------------------------------------------------------------------ command handlers
    def _do_segment(self, command: Command) -> Reply:
        target = command.args.get("target", self.target)
        if target != self.target:
            raise InvalidPromptError(
                f"This session segments the {self.target}; start a new one for the {target} "
                "(the volume session does)."
            )
        return self._start(command=command, origin="segment", propose_default=self.current_index is None)

    _do_move_box = _commit_manual
    _do_resize_box = _commit_manual
    _do_set_box = _commit_manual
    _do_threshold = _commit_manual
    _do_center_click = _commit_manual
    _do_point_click = _commit_manual
    _do_window = _commit_manual
    _do_remove_component = _commit_manual
    _do_ensemble = _commit_manual

    def _do_grid_click(self, command: Command) -> Reply:
        reply = self._commit_manual(command)
        if self._pending is not None and self._pending.mode == "grid":
            reply.message += " More grid clicks, or 'done'."
        return reply

    def _do_accept(self, command: Command) -> Reply:
        pending = self._pending
        if pending is None:
            current = "" if self.current_index is None else f"; step {self.current_index} stays current"
            return Reply(command, f"Nothing to accept{current}.")
        if pending.mode == "proposal":
            self._pending = None
            step = self._commit(pending.candidate)
            reply = Reply(command, f"Kept: step {step.index}: {step.action} -> {step.area_px} px.", step=step)
            return self._continue_strategy(reply, advance=True)
        if pending.mode == "examples":
            choice = command.args.get("choice")
            n = len(pending.options)
            if choice is None:
                return Reply(command, f"Which example do you want? Say 'take option 2' (1-{n}) or 'reject'.")
            if not 1 <= int(choice) <= n:
                return Reply(command, f"There are {n} examples; choose 1 to {n}.", ok=False)
            self._pending = None
            step = self._commit(pending.options[int(choice) - 1])
            return Reply(
                command,
                f"Took example {choice}: step {step.index}: {step.action} -> {step.area_px} px.",
                step=step,
            )
        if pending.mode == "question":
            if not pending.answers:
                self._pending = None
                return self._continue_strategy(
                    Reply(command, "No answers given; nothing changed."), advance=True
                )
            return self._finish_questions(command)
        # grid stage of a guided strategy
        self._pending = None
        return self._continue_strategy(Reply(command, "Done with the grid clicks."), advance=True)

    def _do_reject(self, command: Command) -> Reply:
        pending = self._pending
        if pending is None:
            return Reply(command, "Nothing is pending; nothing changed (to go back one step say 'undo').")
        self._pending = None
        messages = {
            "proposal": "Did not keep it.",
            "examples": "Closed the examples; nothing changed.",
            "question": "Stopped the questions; nothing changed.",
            "grid": "Skipped the grid clicks.",
        }
        return self._continue_strategy(Reply(command, messages[pending.mode]), advance=True)

    def _do_answer(self, command: Command) -> Reply:
        pending = self._pending
        value = bool(command.args.get("value"))
        if pending is None:
            if value:
                return Reply(command, "Nothing is waiting for a yes/no answer; nothing changed.", ok=False)
            choices = ("undo", "show examples")
            return Reply(
                command,
                "Nothing is waiting for a yes/no answer. Did you mean: 1 'undo' (the last step) / "
                "2 'show examples' (other corrections)? (say the number)",
                ok=False,
                choices=choices,
            )
        if pending.mode in {"proposal", "grid"} or (pending.mode == "examples" and not value):
            return self._do_accept(command) if value else self._do_reject(command)
        if pending.mode == "examples":
            return self._do_accept(command)
        pending.answers.append(value)
        if len(pending.answers) < len(pending.regions):
            number = len(pending.answers) + 1
            pending.message = pending.regions[number - 1].question(self.target, number, len(pending.regions))
            return Reply(command, pending.message, question=pending.message)
        return self._finish_questions(command)

    def _finish_questions(self, command: Command) -> Reply:
        pending = self._pending
        self._pending = None
        base = pending.base
        answered = pending.regions[: len(pending.answers)]
        clicks = tuple(
            Click(r.point[0], r.point[1], a) for r, a in zip(answered, pending.answers, strict=True)
        )
        yes = sum(pending.answers)
        step_command = Command(
            "critical_regions", {"answers": list(pending.answers)}, text=pending.command.text, source="api"
        )
        step = self._make_step(
            base,
            base.state.with_(clicks=(*base.state.clicks, *clicks)),
            step_command,
            f"critical regions: {yes} x yes, {len(pending.answers) - yes} x no",
        )
        self._commit(step)
        reply = Reply(command, f"Step {step.index}: {step.action} -> {step.area_px} px.", step=step)
        return self._continue_strategy(reply, advance=True)

    def _do_critical_regions(self, command: Command) -> Reply:
        message = self._ask_critical_regions(command)
        if message is None:
            return Reply(command, "No uncertain regions: every pixel in the box is confidently in or out.")
        return Reply(command, message, question=message)

    def _ask_critical_regions(self, command: Command) -> str | None:
        base = self.current
        regions = find_critical_regions(
            base.prediction.probabilities,
            base.threshold,
            base.box_xyxy,
            mask=base.mask,
            band=self.config.critical_band,
            max_regions=self.config.max_critical_regions,
        )
        if not regions:
            return None
        message = regions[0].question(self.target, 1, len(regions))
        self._pending = _Pending("question", message, regions=regions, base=base, command=command)
        return message

    def _do_examples(self, command: Command) -> Reply:
        base = self.current
        step_px, step_t = self.config.example_box_px, self.config.example_threshold_step
        proposals = [
            api_command("resize_box", f"enlarge the box by {step_px:g} pixels", pixels=step_px),
            api_command("resize_box", f"shrink the box by {step_px:g} pixels", pixels=-step_px),
            api_command("threshold", f"raise the threshold by {step_t:g}", delta=step_t),
            api_command("threshold", f"lower the threshold by {step_t:g}", delta=-step_t),
            api_command("center_click", "center click"),
            api_command("window", "change the window", preset="alternative"),
        ]
        if len(components_by_size(base.mask)) > 1:
            proposals.append(api_command("remove_component", "keep the largest component", keep_largest=True))
        options = []
        for proposal in proposals:
            try:
                options.append(self._candidate(proposal, base))
            except AnatomyToolkitError:
                continue
        lines = [
            f"{n}: {option.action} -> {option.area_px} px "
            f"(Dice to step {base.index}: {_dice(option.mask, base.mask):.2f})"
            for n, option in enumerate(options, start=1)
        ]
        message = "Examples: " + " | ".join(lines) + f". Say 'take option N' (1-{len(options)}) or 'reject'."
        self._pending = _Pending("examples", message, options=options, base=base, command=command)
        return Reply(command, message, options=tuple(options))

    def _do_guided(self, command: Command) -> Reply:
        problem = command.args.get("problem")
        try:
            stages = guided_strategies.strategy(problem)
        except ValueError as error:
            raise InvalidPromptError(str(error)) from None
        self.current  # noqa: B018 - raises the "segment first" message
        self._strategy = guided_strategies.StrategyRun(problem, stages)
        names = ", ".join(stage.description for stage in stages)
        reply = Reply(command, f"Guided strategy for '{guided_strategies.PROBLEM_TITLES[problem]}': {names}.")
        return self._continue_strategy(reply, advance=False)

    def _continue_strategy(self, reply: Reply, *, advance: bool) -> Reply:
        run = self._strategy
        if run is None:
            return reply
        if advance:
            run.position += 1
        messages = [reply.message]
        while not run.finished:
            stage = run.current
            label = run.label()
            if stage.mode == guided_strategies.PROPOSAL:
                try:
                    candidate = self._candidate(
                        Command(stage.kind, dict(stage.args), text=stage.description, source="api"),
                        self.current,
                    )
                except AnatomyToolkitError as error:
                    messages.append(f"{label}: skipped ({error})")
                    run.position += 1
                    continue
                text = (
                    f"{label}: {candidate.action} -> {candidate.area_px} px (now {self.current.area_px} px). "
                    "Keep it? (accept / reject)"
                )
                self._pending = _Pending("proposal", text, candidate=candidate)
                messages.append(text)
                reply.preview = candidate
                break
            if stage.mode == guided_strategies.CRITICAL_REGIONS:
                question = self._ask_critical_regions(
                    Command("critical_regions", text=stage.description, source="api")
                )
                if question is None:
                    messages.append(f"{label}: no uncertain regions, skipped.")
                    run.position += 1
                    continue
                messages.append(f"{label}: {question}")
                reply.question = question
                break
            text = (
                f"{label}: {stage.description}: say 'positive click in cell 6' or 'negative click in 11' "
                "(cells 1-16 row by row over the box), then 'done'."
            )
            self._pending = _Pending("grid", text)
            messages.append(text)
            break
        if run.finished:
            made = ", ".join(str(i) for i in run.steps_made) or "none"
            messages.append(f"Guided strategy finished (steps made: {made}).")
            self._strategy = None
        reply.message = " ".join(messages)
        return reply

    def _do_undo(self, command: Command) -> Reply:
        """Undo ``count`` actions (default 1); a pending proposal/question counts as the first."""
        count = command.args.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidPromptError(
                f"Undo needs a positive number of steps ('undo', 'undo 3 times'); got {count!r}."
            )
        steps_back = count - (self._pending is not None)
        path = self.branch() if self.current_index is not None else []
        available = max(len(path) - 1, 0)
        if steps_back > available:
            if available == 0 and self._pending is None:
                return Reply(
                    command,
                    f"Nothing to undo: step {self.current.index} is the first segmentation.",
                    ok=False,
                )
            raise InvalidPromptError(
                f"Only {available + (self._pending is not None)} action(s) can be undone from step "
                f"{self.current.index} (back to step {path[0].index}); say 'undo' with at most that "
                "many times, or 'revert to step N'."
            )
        notes = []
        if self._pending is not None:
            notes.append(self._drop_pending_note())
            self._pending = None
            self._strategy = None
            if steps_back == 0:
                return Reply(command, f"{notes[0]} Nothing else changed.")
        self.current_index = path[-1 - steps_back].index
        step = self.current
        return Reply(
            command, " ".join([*notes, f"Back to step {step.index} ({step.area_px} px)."]), step=step
        )

    def _do_revert(self, command: Command) -> Reply:
        index = command.args.get("step")
        if index is None or not 0 <= int(index) < len(self.steps):
            raise InvalidPromptError(f"There is no step {index}; the steps are 0 to {len(self.steps) - 1}.")
        self.current_index = int(index)
        step = self.current
        later = len(self.steps) - 1 - step.index
        kept = f" Steps after it stay in the history ({later})." if later else ""
        return Reply(
            command,
            f"Back to step {step.index} ({step.area_px} px); new steps branch from here.{kept}",
            step=step,
        )

    def _do_finish(self, command: Command) -> Reply:
        index = command.args.get("step")
        if index is None:
            index = self.current.index
        if not 0 <= int(index) < len(self.steps):
            raise InvalidPromptError(f"There is no step {index}; the steps are 0 to {len(self.steps) - 1}.")
        self.final_index = int(index)
        step = self.steps[self.final_index]
        return Reply(
            command, f"Final mask: step {step.index} ({step.area_px} px).", step=step, writes_final=True
        )

    def _do_help(self, command: Command) -> Reply:
        return Reply(command, help_text())

    def _do_unknown(self, command: Command) -> Reply:
        return unknown_reply(command)

    def _do_propagate(self, command: Command) -> Reply:
        raise InvalidPromptError(
            "Propagation to other slices needs a volume session (LIMISLib.VolumeSession)."
        )


# ---------------------------------------------------------------------------- small helpers
def unknown_reply(command: Command) -> Reply:
    """The answer to a command that was not understood (or that fits several): numbered candidates.

    The reply's ``choices`` are remembered by the session, so that a bare number picks one.
    """
    suggestions = list(command.args.get("suggestions") or [])
    numbered = " / ".join(f"{n} {s!r}" for n, s in enumerate(suggestions, start=1))
    if command.args.get("ambiguous") and suggestions:
        message = f"{command.text!r} can mean: {numbered}. Which one? (say the number)"
    elif suggestions:
        message = f"I did not understand {command.text!r}. Did you mean: {numbered}? (say the number)"
    else:
        message = f"I did not understand {command.text!r}. Say 'help' for examples."
    return Reply(command, message, ok=False, choices=tuple(suggestions))


def _on(mask: np.ndarray, click: Click) -> bool:
    r, c = int(np.floor(click.y)), int(np.floor(click.x))
    return 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and bool(mask[r, c])


def _same_window(a: Window, b: Window) -> bool:
    return abs(a.width_hu - b.width_hu) < 1e-6 and abs(a.level_hu - b.level_hu) < 1e-6


def _window_text(window: Window | None) -> str:
    if window is None:
        return "min-max normalisation"
    name = f"{window.name} window " if window.name else "window "
    return f"{name}(W {window.width_hu:g} / L {window.level_hu:g} HU)"


def _box_text(box: Sequence[float]) -> str:
    x0, y0, x1, y1 = box
    return f"box x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f}"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total
