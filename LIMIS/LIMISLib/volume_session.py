"""LIMIS on a CT volume: one interaction session per axial slice, propagation between slices.

:class:`VolumeSession` is what the Slicer module, the ``replay`` CLI and the main job drive. It
takes a :class:`~AnatomyCommonLib.volume.Volume` in any orientation, shows slices in display
orientation (:mod:`LIMISLib.slice_geometry`), routes every command to the session of the *active*
slice and adds what only a volume can do:

* ``segment {target}`` on the active slice (a new target starts over: the old structure's masks
  stay in their segment, the new structure gets its own);
* ``propagate {direction, slices}`` (:mod:`LIMISLib.slice_propagation`): every propagated slice
  gets its own session whose step 0 is the propagated mask, so each slice can be refined and
  reverted on its own; ``undo`` right after a propagation removes all slices it added, and
  ``undo`` on a propagated slice's step 0 removes that slice;
* the result as one mask volume on the CT grid (:meth:`mask_volume`).

:meth:`apply` is the single entry point (it dispatches through :data:`LIMISLib.commands.COMMANDS`); a
command that fails changes nothing (target, slices, steps, pending proposals).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from AnatomyCommonLib.errors import AnatomyToolkitError
from AnatomyCommonLib.volume import Volume

from .command_grammar import Command, ParseContext, api_command, help_text, parse_command
from .exceptions import InvalidPromptError
from .model_interfaces import BBox2Mask, Box, Lang2BBox
from .organ_vocabulary import resolve_structure
from .pointer_prompts import PlacedPoint, here_command
from .session import InteractionSession, Reply, SessionConfig
from .session_state import unknown_reply
from .slice_geometry import AxialSliceGeometry
from .slice_propagation import (
    PropagationConfig,
    SliceSummary,
    margin_pixels,
    prior_from_mask,
    propagation_box,
    structure_end_reason,
)


@dataclass
class PropagationRun:
    """What one ``propagate`` command did: the slices it added and why it stopped, per direction."""

    start_slice: int
    slices: list[int] = field(default_factory=list)
    stop_reasons: dict[str, str] = field(default_factory=dict)


class VolumeSession:
    """LIMIS on a volume (see the module docstring)."""

    def __init__(
        self,
        ct: Volume,
        bbox2mask: BBox2Mask,
        *,
        lang2bbox: Lang2BBox | None = None,
        config: SessionConfig | None = None,
        propagation: PropagationConfig | None = None,
        active_slice: int | None = None,
        labels: Volume | None = None,
    ) -> None:
        ct.require_3d("CT volume").require_finite("CT volume")
        self.ct = ct
        self.geometry = AxialSliceGeometry.from_volume(ct)
        self.bbox2mask = bbox2mask
        self.labels = labels
        if labels is not None:
            from .atlas_lang2bbox import require_same_grid

            require_same_grid(labels, ct)
        if lang2bbox is None and labels is not None:
            # no learned detector: the whole-body label map places the box (atlas-prompted Lang2BBox)
            from .atlas_lang2bbox import AtlasLang2BBox

            lang2bbox = AtlasLang2BBox(labels, geometry=self.geometry)
        self.lang2bbox = lang2bbox
        self.config = config or SessionConfig()
        self.propagation = propagation or PropagationConfig()
        self.target: str | None = None
        self.sessions: dict[int, InteractionSession] = {}
        self.active_slice = (
            self.geometry.n_slices // 2 if active_slice is None else self.geometry.require_slice(active_slice)
        )
        self.runs: list[PropagationRun] = []
        self.log: list[tuple[str, str]] = []
        self._last_was_propagation = False
        self.choices: tuple[str, ...] = ()  # candidates of the last ask-back (a bare number picks one)
        self.last_point: PlacedPoint | None = None  # the last point placed with the mouse ("click here")

    # ------------------------------------------------------------------ slices
    def image(self, slice_index: int) -> np.ndarray:
        """The display-oriented HU image (float32) of one axial slice."""
        return self.geometry.extract(self.ct.array, slice_index).astype(np.float32)

    def set_active_slice(self, slice_index: int) -> None:
        self.active_slice = self.geometry.require_slice(slice_index)

    @property
    def active(self) -> InteractionSession | None:
        """The session of the active slice (None before it is segmented)."""
        return self.sessions.get(self.active_slice)

    def parse_context(self) -> ParseContext:
        active = self.active
        context = active.parse_context() if active is not None else ParseContext(target=self.target)
        return replace(context, choices=self.choices)

    def slice_mask(self, slice_index: int, *, displayed: bool = True) -> np.ndarray:
        """The display-oriented mask of a slice: what is shown (``displayed``) or the chosen result."""
        session = self.sessions.get(slice_index)
        step = None if session is None else (session.displayed if displayed else session.chosen)
        if step is None:
            return np.zeros(self.geometry.image_shape, dtype=bool)
        return step.mask

    def mask_volume(self, *, displayed: bool = False) -> Volume:
        """All slices' masks (final step where one was chosen, else current) as uint8 on the CT grid."""
        array = np.zeros(self.ct.shape, dtype=np.uint8)
        for slice_index in self.sessions:
            self.geometry.insert(
                array, slice_index, self.slice_mask(slice_index, displayed=displayed).astype(np.uint8)
            )
        return self.ct.with_array(array, structure=self.target)

    def segmented_slices(self) -> list[int]:
        return sorted(self.sessions)

    @property
    def box_source(self) -> str:
        """Where 'segment X' gets its box: the detector's name, or "drawn box" without one."""
        return "drawn box" if self.lang2bbox is None else self.lang2bbox.name

    def _new_session(self, slice_index: int, *, target: str | None = None) -> InteractionSession:
        lang2bbox = self.lang2bbox
        if lang2bbox is not None and hasattr(lang2bbox, "for_slice"):
            lang2bbox = lang2bbox.for_slice(slice_index)  # slice-bound detectors (the atlas map)
        return InteractionSession(
            self.image(slice_index),
            self.bbox2mask,
            target=target or self.target,
            lang2bbox=lang2bbox,
            config=self.config,
            pixel_spacing_mm=self.geometry.pixel_spacing_mm,
            slice_index=slice_index,
        )

    # ------------------------------------------------------------------ commands
    def handle(self, text: str, *, semantic: bool | None = None) -> Reply:
        """Parse ``text`` in the active slice's dialogue context and apply it."""
        return self.apply(self.parse(text, semantic=semantic))

    def parse(
        self, text: str, context: ParseContext | None = None, *, semantic: bool | None = None
    ) -> Command:
        """``text`` as a command: "positive click here" and the like point at :attr:`last_point`
        (:mod:`LIMISLib.pointer_prompts`), everything else goes to the command grammar."""
        command = here_command(text, self.last_point)
        if command is not None:
            return command
        return parse_command(text, self.parse_context() if context is None else context, semantic=semantic)

    def place_point(self, x: float, y: float, slice_index: int, *, positive: bool) -> PlacedPoint:
        """Record a point the user placed with the mouse (display pixels) for a later "click here"."""
        rows, columns = self.geometry.image_shape
        if not (0.0 <= x < columns and 0.0 <= y < rows):
            raise InvalidPromptError(
                f"The point ({x:.1f}, {y:.1f}) is outside the {columns} x {rows} pixel slice; "
                "place it on the image."
            )
        self.last_point = PlacedPoint(
            float(x), float(y), self.geometry.require_slice(slice_index), bool(positive)
        )
        return self.last_point

    def apply(
        self,
        command: Command,
        *,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> Reply:
        """Apply a command to the volume or to the active slice's session: the single entry point.

        ``progress(done, planned)`` and ``should_cancel()`` reach long commands (propagation). A
        command that fails (``reply.ok`` False) leaves the target, the slices, every step and every
        pending proposal or question as they were.
        """
        from .commands import spec_for

        snapshot = (self.target, dict(self.sessions), list(self.runs), self._last_was_propagation)
        last_was_propagation, self._last_was_propagation = self._last_was_propagation, False
        try:
            reply = spec_for(command.kind).volume_handler(
                self,
                command,
                last_was_propagation=last_was_propagation,
                progress=progress,
                should_cancel=should_cancel,
            )
        except AnatomyToolkitError as error:  # typed user-facing errors become replies
            reply = Reply(command, str(error), ok=False)
        if not reply.ok:
            self.target, self.sessions, self.runs, self._last_was_propagation = snapshot
        self.choices = reply.choices
        if command.kind != "propagate" or not reply.ok:
            self.log.append((command.text or command.kind, reply.message))
        return reply

    def apply_to_active(self, command: Command) -> Reply:
        """Route a command to the active slice's session (the default volume handler)."""
        active = self.active
        if active is None:
            if command.kind == "help":
                return Reply(command, help_text())
            if command.kind == "unknown":
                return unknown_reply(command)
            what = f"the {self.target}" if self.target else "a structure"
            raise InvalidPromptError(
                f"Slice {self.active_slice} is not segmented yet; "
                f"say 'segment {what.removeprefix('the ')}' "
                "or propagate from a segmented slice."
            )
        reply = active.apply(command)
        reply.changed_slices = (self.active_slice,)
        return reply

    def undo(self, command: Command, *, last_was_propagation: bool = False) -> Reply:
        """Undo: the last propagation, a propagated slice's step 0, or steps of the active slice."""
        if command.args.get("count", 1) == 1 and last_was_propagation and self.runs:
            return self._undo_propagation(command)
        if command.args.get("count", 1) == 1 and self._at_propagated_start():
            slice_index = self.active_slice
            self.discard_slice(slice_index)
            return Reply(
                command, f"Removed the propagated mask of slice {slice_index}.", changed_slices=(slice_index,)
            )
        return self.apply_to_active(command)

    def masks_to_write(self, reply: Reply) -> dict[int, np.ndarray]:
        """The display-oriented masks the output segmentation should get after ``reply``.

        The displayed step of each changed slice, except after "finish" (``reply.writes_final``):
        then the chosen final step.
        """
        return {
            index: self.slice_mask(index, displayed=not reply.writes_final)
            for index in reply.changed_slices
            if index in self.sessions or not reply.writes_final
        }

    def with_default_box(self, command: Command) -> Command:
        """Without a detector, 'segment X' of a new structure gets a default box (the middle third of
        the slice) that the user then drags onto the structure; other commands are returned as they are."""
        if self.lang2bbox is not None or command.kind != "segment" or "box" in command.args:
            return command
        if self.active is not None and command.args.get("target") == self.target:
            return command
        rows, columns = self.geometry.image_shape
        box = (columns / 3.0, rows / 3.0, 2 * columns / 3.0, 2 * rows / 3.0)
        return Command("segment", {**command.args, "box": box}, text=command.text, source=command.source)

    @staticmethod
    def with_box(command: Command, box_xyxy: Box | None) -> Command:
        """``command`` with a drawn box when it is a 'segment' (the box is where to segment)."""
        if box_xyxy is None or command.kind != "segment":
            return command
        return Command(
            "segment", {**command.args, "box": tuple(box_xyxy)}, text=command.text, source=command.source
        )

    def segment(self, target: str, *, slice_index: int | None = None, box_xyxy: Box | None = None) -> Reply:
        """Segment ``target`` (free text is resolved to a DAP name) on a slice (default: the active one)."""
        if slice_index is not None:
            self.set_active_slice(slice_index)
        name = resolve_structure(target)
        command = api_command("segment", f"segment the {name}", target=name)
        reply = self._segment(command, box_xyxy=box_xyxy)
        self.log.append((command.text, reply.message))
        return reply

    def set_box(self, box_xyxy: Box) -> Reply:
        """A box drawn or dragged by the user on the active slice (first segmentation or a new step)."""
        if self.target is None:
            raise InvalidPromptError("Say which structure to segment first ('segment the liver').")
        active = self.active
        if active is None:
            active = self.sessions[self.active_slice] = self._new_session(self.active_slice)
        reply = active.set_box(box_xyxy)
        reply.changed_slices = (self.active_slice,)
        return reply

    def click(self, x: float, y: float, *, positive: bool = True) -> Reply:
        """A point placed with the mouse anywhere on the active slice (display pixels): a new step.

        A positive point outside the box grows the box to include it (see
        :meth:`LIMISLib.session.InteractionSession`'s ``point_click``).
        """
        sign = "positive" if positive else "negative"
        command = api_command(
            "point_click", f"{sign} click at ({x:.0f}, {y:.0f})", x=x, y=y, positive=positive
        )
        return self.apply(command)

    def scribble(self, mask: np.ndarray, *, positive: bool = True) -> Reply:
        """A scribble drawn with the mouse on the active slice: bool (H, W) in display pixels.

        A new step (undo and revert work as for any step); the model gets it on its positive or
        negative scribble channel (see :meth:`LIMISLib.session.InteractionSession`'s ``_scribble``).
        """
        drawn = np.asarray(mask, dtype=bool)
        sign = "positive" if positive else "negative"
        command = api_command(
            "scribble", f"{sign} scribble ({int(drawn.sum())} px)", mask=drawn, positive=positive
        )
        return self.apply(command)

    def _segment(self, command: Command, *, box_xyxy: Box | None = None) -> Reply:
        target = command.args.get("target")
        if target != self.target:
            # a new structure: segment it first, switch only when that worked (a failure changes nothing)
            session = self._new_session(self.active_slice, target=target)
            reply = session.start(box_xyxy, command=command)
            notes = (
                f"New structure: {target} (the {self.target} masks are kept where they were written). "
                if self.target is not None
                else ""
            )
            self.target, self.sessions, self.runs = target, {self.active_slice: session}, []
            reply.message = notes + reply.message
        else:
            active = self.active
            if active is None:
                active = self._new_session(self.active_slice)
                reply = active.start(box_xyxy, command=command)  # raises before the slice is registered
                self.sessions[self.active_slice] = active
            elif box_xyxy is not None:  # a new box for the same structure: a new branch of this slice
                reply = active.start(box_xyxy, command=command, origin="segment", propose_default=False)
            else:
                reply = active.apply(command)
        reply.changed_slices = (self.active_slice,)
        return reply

    def _at_propagated_start(self) -> bool:
        active = self.active
        return (
            active is not None
            and active.pending is None
            and active.current_index == 0
            and active.steps[0].origin == "propagated"
        )

    def discard_slice(self, slice_index: int) -> None:
        """Forget one slice's session (its mask disappears from the result)."""
        self.sessions.pop(slice_index, None)
        for run in self.runs:
            if slice_index in run.slices:
                run.slices.remove(slice_index)

    def _undo_propagation(self, command: Command) -> Reply:
        run = self.runs.pop()
        for slice_index in run.slices:
            self.sessions.pop(slice_index, None)
        return Reply(
            command,
            f"Removed the {len(run.slices)} slice(s) the last propagation added.",
            changed_slices=tuple(run.slices),
        )

    # ------------------------------------------------------------------ propagation
    def propagate(
        self,
        direction: str = "both",
        slices: int | None = None,
        *,
        mm: float | None = None,
        command: Command | None = None,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> Reply:
        """Propagate the active slice's mask (see :mod:`LIMISLib.slice_propagation`).

        ``direction``: "up" (superior), "down" (inferior) or "both"; ``slices``: at most this many
        per direction (None: until the structure ends); ``mm``: a distance instead, converted to
        ``ceil(mm / slice spacing)`` slices along the propagation axis. ``progress(done, planned)``
        is called after each slice (planned is None-free: the volume's remaining slices when
        ``slices`` is None);
        ``should_cancel()`` returning True stops after the current slice, keeping what was done.
        """
        extra = {} if mm is None else {"mm": mm}
        command = command or api_command(
            "propagate", "propagate", direction=direction, slices=slices, **extra
        )
        if direction not in {"up", "down", "both"}:
            raise InvalidPromptError(f"Propagate 'up', 'down' or 'both'; got {direction!r}.")
        distance = ""
        if mm is not None:
            spacing = self.geometry.slice_spacing_mm
            if not float(mm) > 0:
                raise InvalidPromptError(
                    f"Propagate a positive distance ('propagate up 20 mm'); got {mm} mm."
                )
            slices = max(1, math.ceil(float(mm) / spacing - 1e-9))  # 1e-9: 20 / 2.5 stays 8
            distance = f"{float(mm):g} mm is {slices} slices at {spacing:g} mm slice spacing. "
        if slices is not None and int(slices) < 1:
            raise InvalidPromptError(
                f"Propagate at least one slice ('propagate up 3 slices'), or say 'propagate' to go on "
                f"until the structure ends; got {slices}."
            )
        start = self.active
        if start is None or start.chosen is None or not start.chosen.mask.any():
            raise InvalidPromptError(f"Slice {self.active_slice} has no mask to propagate; segment it first.")
        run = PropagationRun(self.active_slice)
        directions = ("up", "down") if direction == "both" else (direction,)
        planned = sum(self._remaining(self.active_slice, d, slices) for d in directions)
        done = 0
        for way in directions:
            reason, added = self._propagate_one_way(
                way, slices, command, run, planned, done, progress, should_cancel
            )
            run.stop_reasons[way] = reason
            done += added
        self.runs.append(run)
        self._last_was_propagation = True
        ways = "; ".join(f"{way}: {reason}" for way, reason in run.stop_reasons.items())
        span = f" (slices {min(run.slices)}-{max(run.slices)})" if run.slices else ""
        message = (
            f"{distance}Propagated the {self.target} to {len(run.slices)} slice(s){span}. Stopped {ways}."
        )
        reply = Reply(command, message, changed_slices=tuple(run.slices))
        self.log.append((command.text or "propagate", message))
        return reply

    def _atlas_slice(self, slice_index: int) -> np.ndarray | None:
        """The target on a slice of the whole-body label map (display-oriented), None without a map."""
        if self.labels is None or self.target is None:
            return None
        from AnatomyCommonLib.anatomy.label_schema import label_id

        return self.geometry.extract(self.labels.array, slice_index) == label_id(self.target)

    def _remaining(self, slice_index: int, direction: str, slices: int | None) -> int:
        sign = self.geometry.slice_sign if direction == "up" else -self.geometry.slice_sign
        remaining = self.geometry.n_slices - 1 - slice_index if sign > 0 else slice_index
        return remaining if slices is None else min(int(slices), remaining)

    def _propagate_one_way(
        self, direction, slices, command, run, planned, done, progress, should_cancel
    ) -> tuple[str, int]:
        source = self.sessions[self.active_slice]
        previous_step = source.chosen
        previous_mask, previous_image, previous_slice = previous_step.mask, source.image_hu, self.active_slice
        pixel_area_mm2 = float(np.prod(self.geometry.pixel_spacing_mm))
        margin = margin_pixels(self.propagation, self.geometry.pixel_spacing_mm)
        start = SliceSummary.of(
            previous_mask,
            previous_image,
            atlas_mask=self._atlas_slice(self.active_slice) if self.propagation.use_atlas else None,
            pixel_spacing_mm=self.geometry.pixel_spacing_mm,
            config=self.propagation,
        )
        added = 0
        while slices is None or added < int(slices):
            if should_cancel is not None and should_cancel():
                return "cancelled by the user", added
            slice_index = self.geometry.neighbour(previous_slice, direction)
            if slice_index is None:
                return "at the end of the volume", added
            if slice_index in self.sessions:
                return f"at slice {slice_index}, which is already segmented", added
            box = propagation_box(previous_mask, margin)
            prior = prior_from_mask(previous_mask, previous_step.prediction, self.propagation)
            session = self._new_session(slice_index)
            session.start(
                box,
                window=previous_step.window,
                previous=prior,
                command=Command(
                    command.kind, dict(command.args), text=command.text or "propagate", source=command.source
                ),
                origin="propagated",
                propose_default=False,
                threshold=previous_step.threshold,
            )
            step = session.current
            step.action = f"propagated from slice {previous_slice}"
            reason = structure_end_reason(
                previous_mask,
                step.mask,
                previous_image,
                session.image_hu,
                pixel_area_mm2,
                self.propagation,
                start,
                atlas_mask=self._atlas_slice(slice_index),
                pixel_spacing_mm=self.geometry.pixel_spacing_mm,
            )
            if reason is not None:
                return f"at slice {slice_index}: {reason}", added
            self.sessions[slice_index] = session
            run.slices.append(slice_index)
            added += 1
            if progress is not None:
                progress(done + added, planned)
            previous_step, previous_mask, previous_image, previous_slice = (
                step,
                step.mask,
                session.image_hu,
                slice_index,
            )
        return f"after {added} slice(s) as asked", added
