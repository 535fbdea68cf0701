"""The dialogue half of :class:`~LIMISLib.session.InteractionSession`: pending proposals and
questions, accept/reject/answer, guided strategies, examples, undo/revert/finish.

A mixin so that ``session.py`` stays readable; it uses the session's state and its model runs
(``_candidate``, ``_commit``, ``_make_step``) and is not meant to be used on its own.
"""

from __future__ import annotations

from AnatomyCommonLib.errors import AnatomyToolkitError

from . import guided_strategies
from .command_grammar import Command, api_command, help_text
from .critical_regions import find_critical_regions
from .exceptions import InvalidPromptError
from .session_state import (
    Click,
    PendingDialogue,
    Reply,
    components_by_size,
    dice,
    unknown_reply,
)


class DialogueMixin:
    """Handlers of the dialogue commands (``_do_<kind>``) and the pending-dialogue bookkeeping."""

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
    _do_scribble = _commit_manual
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
        self._pending = PendingDialogue("question", message, regions=regions, base=base, command=command)
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
            f"(Dice to step {base.index}: {dice(option.mask, base.mask):.2f})"
            for n, option in enumerate(options, start=1)
        ]
        message = "Examples: " + " | ".join(lines) + f". Say 'take option N' (1-{len(options)}) or 'reject'."
        self._pending = PendingDialogue("examples", message, options=options, base=base, command=command)
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
                self._pending = PendingDialogue("proposal", text, candidate=candidate)
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
            self._pending = PendingDialogue("grid", text)
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
