"""The data of the LIMIS loop: clicks, the state a step was made from, steps, replies.

Split from :mod:`LIMISLib.session` (which holds the loop itself); see its docstring for the
semantics these types carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from .command_grammar import Command
from .critical_regions import CriticalRegion
from .ct_windows import Window
from .model_interfaces import Box, MaskPrediction, Point

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


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
    scribbles: np.ndarray | None = None  # bool (2, H, W): positive, negative scribbled pixels

    @property
    def positive_clicks(self) -> list[Point]:
        return [(c.x, c.y) for c in self.clicks if c.positive]

    @property
    def negative_clicks(self) -> list[Point]:
        return [(c.x, c.y) for c in self.clicks if not c.positive]

    def with_(self, **changes) -> SessionState:
        return replace(self, **changes)


def derive_mask(probabilities: np.ndarray, state: SessionState) -> np.ndarray:
    """The step's mask: threshold, minus erased components, then every scribbled pixel and every
    click enforced (positive in, negative out; clicks after scribbles)."""
    mask = np.asarray(probabilities) >= state.threshold
    if state.erased is not None:
        mask &= ~state.erased
    if state.scribbles is not None:
        mask |= state.scribbles[0]
        mask &= ~state.scribbles[1]
    rows, columns = mask.shape
    for click in state.clicks:
        r, c = int(np.floor(click.y)), int(np.floor(click.x))
        if 0 <= r < rows and 0 <= c < columns:
            mask[r, c] = click.positive
    return mask


def components_by_size(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected components of a 2D mask, largest first (ties: first in raster order)."""
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=EIGHT_CONNECTED)
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
class PendingDialogue:
    mode: str  # "proposal" | "question" | "examples" | "grid"
    message: str
    candidate: Step | None = None
    options: list[Step] = field(default_factory=list)
    regions: list[CriticalRegion] = field(default_factory=list)
    answers: list[bool] = field(default_factory=list)
    base: Step | None = None
    command: Command | None = None


# ---------------------------------------------------------------------------- small helpers
def unknown_reply(command: Command) -> Reply:
    """The answer to a command that was not understood (or that fits several): numbered candidates.

    The reply's ``choices`` are remembered by the session, so that a bare number picks one.
    """
    suggestions = list(command.args.get("suggestions") or [])
    numbered = " / ".join(f"{n} {s!r}" for n, s in enumerate(suggestions, start=1))
    if command.args.get("too_long"):
        message = (
            f"That is {command.args['too_long']} characters; a command is one short sentence (at most 400 "
            "characters), so nothing was done. Say 'help' for examples."
        )
    elif command.args.get("reason"):
        # a value the parser refused: say what is possible, change nothing
        message = f"{command.args['reason']} Nothing was changed."
        if suggestions:
            message += f" For example: {numbered} (say the number)."
    elif command.args.get("ambiguous") and suggestions:
        message = f"{command.text!r} can mean: {numbered}. Which one? (say the number)"
    elif suggestions:
        message = f"I did not understand {command.text!r}. Did you mean: {numbered}? (say the number)"
    else:
        message = f"I did not understand {command.text!r}. Say 'help' for examples."
    return Reply(command, message, ok=False, choices=tuple(suggestions))


def on_mask(mask: np.ndarray, click: Click) -> bool:
    r, c = int(np.floor(click.y)), int(np.floor(click.x))
    return 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and bool(mask[r, c])


def same_window(a: Window, b: Window) -> bool:
    return abs(a.width_hu - b.width_hu) < 1e-6 and abs(a.level_hu - b.level_hu) < 1e-6


def window_text(window: Window | None) -> str:
    if window is None:
        return "min-max normalisation"
    name = f"{window.name} window " if window.name else "window "
    return f"{name}(W {window.width_hu:g} / L {window.level_hu:g} HU)"


def box_text(box: Sequence[float]) -> str:
    x0, y0, x1, y1 = box
    return f"box x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f}"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total
