"""The four guided (problem-oriented, multi-step) strategies as confirmable sequences of steps.

The dissertation names the strategies and their ingredients (section 3.3.2.2) but not their
internals. Our design: a strategy is a fixed sequence of **stages**; the session runs them one by
one and every stage produces real, revertible session steps:

* a *proposal* stage computes one candidate step (e.g. "raise the threshold 0.50 -> 0.60") and asks
  the user to keep it (``accept``) or drop it (``reject``); either answer moves to the next stage;
* a *critical regions* stage asks yes/no about the most uncertain regions
  (:mod:`LIMISLib.critical_regions`); the answers become clicks and one step;
* a *grid clicks* stage shows the 16-cell grid and waits for any number of grid clicks (each one a
  step); "done" / ``accept`` ends the stage, ``reject`` skips it.

Any other command stops the strategy (the steps it already made stay in the history).

=================  =====================================================================================
problem            stages
=================  =====================================================================================
wrong_part         center click (the box centre is usually on the target) -> new window (the organ's
                   preset, or, if that is already in use, a window centred on the structure's own HU)
                   -> grid clicks
oversegmented      raise the threshold by 0.1 -> critical regions -> grid clicks
undersegmented     enlarge the box by 10 px per side -> lower the threshold by 0.1 -> critical regions
low_contrast       a window centred on the structure's median HU with a narrow width (default 150 HU)
                   so that a hypodense organ gets the contrast range
=================  =====================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .command_grammar import PROBLEMS

PROPOSAL = "proposal"
CRITICAL_REGIONS = "critical_regions"
GRID_CLICKS = "grid_clicks"


@dataclass(frozen=True)
class Stage:
    """One stage: ``mode`` is "proposal", "critical_regions" or "grid_clicks"."""

    mode: str
    description: str
    kind: str = ""
    args: dict[str, Any] = field(default_factory=dict)


STRATEGIES: dict[str, tuple[Stage, ...]] = {
    "wrong_part": (
        Stage(PROPOSAL, "add a click in the centre of the box", "center_click"),
        Stage(PROPOSAL, "change the CT window", "window", {"preset": "alternative"}),
        Stage(GRID_CLICKS, "add grid clicks on the target (positive) or elsewhere (negative)"),
    ),
    "oversegmented": (
        Stage(PROPOSAL, "raise the threshold", "threshold", {"delta": 0.1}),
        Stage(CRITICAL_REGIONS, "decide the critical regions"),
        Stage(GRID_CLICKS, "add negative grid clicks where the mask is too large"),
    ),
    "undersegmented": (
        Stage(PROPOSAL, "enlarge the box", "resize_box", {"pixels": 10}),
        Stage(PROPOSAL, "lower the threshold", "threshold", {"delta": -0.1}),
        Stage(CRITICAL_REGIONS, "decide the critical regions"),
    ),
    "low_contrast": (
        Stage(
            PROPOSAL, "use a window adapted to the structure's low HU values", "window", {"preset": "adapted"}
        ),
    ),
}

assert set(STRATEGIES) == set(PROBLEMS)

PROBLEM_TITLES: dict[str, str] = {
    "wrong_part": "wrong image part segmented",
    "oversegmented": "target over-segmented",
    "undersegmented": "target under-segmented",
    "low_contrast": "target has low HU values",
}


def strategy(problem: str) -> tuple[Stage, ...]:
    """The stages of a problem's strategy; ``ValueError`` naming the problems otherwise."""
    if problem not in STRATEGIES:
        raise ValueError(f"Unknown problem {problem!r}; the guided strategies are {', '.join(STRATEGIES)}.")
    return STRATEGIES[problem]


def stage_kinds(problem: str) -> list[str]:
    """The stages as short names ("threshold", "critical_regions", "grid_clicks", ...)."""
    return [stage.kind if stage.mode == PROPOSAL else stage.mode for stage in strategy(problem)]


@dataclass
class StrategyRun:
    """A strategy in progress: which problem and which stage comes next."""

    problem: str
    stages: tuple[Stage, ...]
    position: int = 0
    steps_made: list[int] = field(default_factory=list)

    @property
    def current(self) -> Stage | None:
        return self.stages[self.position] if self.position < len(self.stages) else None

    @property
    def finished(self) -> bool:
        return self.position >= len(self.stages)

    def label(self) -> str:
        number = min(self.position + 1, len(self.stages))
        return f"Guided ({PROBLEM_TITLES[self.problem]}) {number}/{len(self.stages)}"
