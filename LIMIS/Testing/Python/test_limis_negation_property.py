"""Property: a negated action is never the parsed command (issue 11, negation/scope).

Every kind's canonical examples and a few paraphrases per kind are wrapped in many negation forms
(prefixes, infixes, suffixes, speech-to-text and all-caps variants); the parser may decline
(``reject``), ask back (``unknown``) or, where a proposal is pending, keep or drop it, but it must
never return the negated kind.
"""

from __future__ import annotations

import itertools

import pytest

from LIMISLib.command_grammar import ParseContext, parse_command
from LIMISLib.commands import COMMANDS

#: Varied phrasings per action kind (written for this test, not taken from the phrasing sets).
PARAPHRASES = {
    "move_box": ("nudge the box left", "shift the box down 4 px", "slide the rectangle right"),
    "resize_box": ("make the box bigger", "widen the box", "tighten the box by 2"),
    "threshold": ("lower the threshold a bit", "bump the threshold up", "set the threshold to 0.4"),
    "propagate": ("carry it to the next slices", "spread the mask upwards", "propagate down 3 slices"),
    "undo": ("undo that", "go back one step", "roll back 2 steps"),
    "revert": ("revert to step 1", "go back to step 3"),
    "segment": ("segment the spleen", "outline the aorta", "seg the right kidney"),
    "window": ("bone window", "switch to the lung window", "use the liver window"),
    "remove_component": ("remove the small bits", "delete component 2"),
    "examples": ("show me some examples",),
    "ensemble": ("run the ensemble",),
    "finish": ("finish with step 2", "mark as final"),
    "grid_click": ("positive click in cell 6", "negative click in 11"),
    "center_click": ("click in the centre",),
    "critical_regions": ("ask me about the critical regions",),
}

#: Negation forms; {x} is the action phrase.
FORMS = (
    "don't {x}",
    "please don't {x}",
    "do not {x}",
    "DON'T {X}!",
    "no, don't {x}",
    "um dont {x}",
    "let's not {x} yet",
    "I'd rather you didn't {x}",
    "we shouldn't {x}",
    "you must not {x}",
    "never {x}",
    "no need to {x}",
    "I don't want to {x}",
    "I do not want you to {x}",
    "hold off on that, don't {x}",
    "{x}? no thanks",
    "{x}... rather not",
    "{x}, not now",
    "wait, do not {x}",
    "okay so uh don't {x} please",
    "I think you should not {x}",
    "stop, don't {x}",
    "there is no reason to {x}",
    "under no circumstances {x}",
)

#: Kinds whose negation is a verdict or an answer, not a declined action.
#: ("you over-segmented" is a report, not an action one can decline.)
_NOT_ACTIONS = {"accept", "reject", "answer", "help", "unknown", "guided"}


def _cases():
    for kind, spec in COMMANDS.items():
        if kind in _NOT_ACTIONS:
            continue
        phrases = tuple(spec.examples) + PARAPHRASES.get(kind, ())
        for phrase, form in itertools.product(phrases, FORMS):
            yield kind, form.replace("{X}", phrase.upper()).replace("{x}", phrase)


CASES = list(_cases())


def test_the_property_covers_every_action_kind():
    kinds = {kind for kind, _ in CASES}
    assert kinds == set(COMMANDS) - _NOT_ACTIONS
    assert len(CASES) > 700


@pytest.mark.parametrize("pending", [None, "proposal", "question"])
def test_a_negated_action_is_never_the_command(pending):
    context = ParseContext(pending=pending) if pending else None
    wrong = []
    for kind, text in CASES:
        command = parse_command(text, context, semantic=False)
        if command.kind == kind:
            wrong.append((text, command.describe()))
    assert not wrong, f"{len(wrong)} negated phrasings came back as the negated action: {wrong[:15]}"


@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("don't grow it, shrink it by 2", "resize_box", {"pixels": -2}),
        ("instead of raising the threshold, lower it", "threshold", {"delta": -0.1}),
        ("not the spleen, the liver", "segment", {"target": "liver"}),
        ("don't go up, go down 3 slices", "propagate", {"direction": "down", "slices": 3}),
        ("not cell 4, cell 5", "grid_click", {"cell": 5, "positive": True}),
        ("DON'T SHRINK IT. ENLARGE IT BY 6", "resize_box", {"pixels": 6}),
        ("rather than the bone window use the liver window", "window", {"preset": "liver"}),
        ("instead of propagating up go down 3 slices", "propagate", {"direction": "down", "slices": 3}),
        ("not cell 4 cell 5", "grid_click", {"cell": 5, "positive": True}),
    ],
)
def test_a_replacement_clause_is_the_command(text, kind, args):
    command = parse_command(text, semantic=False)
    assert (command.kind, command.args) == (kind, args) or (
        command.kind == kind and all(command.args.get(k) == v for k, v in args.items())
    )


@pytest.mark.parametrize(
    "text",
    [
        "propagate? no thanks",
        "let's not propagate yet",
        "avoid changing the threshold",
        "I not want propagation",
        "I'd rather you didn't propagate",
        "instead of propagating",
    ],
)
def test_a_bare_declined_action_is_rejected(text):
    assert parse_command(text, semantic=False).kind == "reject"


@pytest.mark.parametrize("pending", ["proposal", "question"])
def test_hesitation_decides_nothing(pending):
    """ "hmm not sure" keeps what is pending (an ask-back), it does not discard it."""
    command = parse_command("hmm not sure", ParseContext(pending=pending), semantic=False)
    assert command.kind == "unknown"


@pytest.mark.parametrize(
    "token",
    ["not", "no", "never", "dont", "nope", "nah", "stop", "0", "1", "2", "3", "10", "16", "0.5", "-1"],
)
def test_typo_tolerance_never_changes_a_negation_or_a_number(token):
    """Correction against the vocabulary leaves negations and numbers as they are."""
    from LIMISLib.commands.lexicon import normalise

    words = normalise(f"{token} propagate").split()
    assert words[-1] == "propagate"
    assert " ".join(words[:-1]) in {token, "do not"}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("the box is not big enough, enlarge it by 5", "resize_box"),
        ("the box doesn't reach the top, move it up", "move_box"),
        ("the threshold is not high enough, raise it", "threshold"),
        ("why not propagate", "propagate"),
        ("isn't it better to propagate?", "propagate"),
        ("why don't you lower the threshold", "threshold"),
        ("without changing anything else, lower the threshold", "threshold"),
    ],
)
def test_a_negated_description_or_a_suggestion_does_not_decline(text, kind):
    """ "the box doesn't reach the top, move it up": the negation describes, the other clause acts."""
    assert parse_command(text, semantic=False).kind == kind
