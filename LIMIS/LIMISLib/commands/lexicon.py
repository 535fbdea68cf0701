"""The shared vocabulary of the command language: normalisation (contractions, number words, typos,
abbreviations, filler) and the modifiers every command reads (numbers, directions, amounts, step
references)."""

from __future__ import annotations

import difflib
import re
from functools import cache, lru_cache

from ..ct_windows import PRESETS

DEFAULT_MOVE_PX = 5


SMALL_MOVE_PX = 3


LARGE_MOVE_PX = 15


DEFAULT_RESIZE_PX = 10


DEFAULT_THRESHOLD_STEP = 0.1
#: Words of an utterance the typo corrector looks at (longer texts are not single commands).
MAX_CORRECTED_WORDS = 40


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
    "dnt": "do not",
    "donot": "do not",
    "do'nt": "do not",
    "nvm": "never mind",
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
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "lemme": "let me",
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
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
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
    "11th": 11,
    "12th": 12,
    "13th": 13,
    "14th": 14,
    "15th": 15,
    "16th": 16,
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
    "can we",
    "could we",
    "shall we",
    "is it possible to",
    "would it be possible to",
    "would you mind",
    "do you mind",
    "i think we should",
    "i think you should",
    "we should",
    "you should",
    "we need to",
    "you need to",
    "i need to",
    "try to",
    "like i said",
    "as i said",
    "i said",
    "for me",
    "if you can",
    "if possible",
    "thank you",
    "thanks",
    # hedged and question wrappers ("what if we shrink the box", "perhaps we should undo")
    "is there a way to",
    "i would suggest that we",
    "i would suggest we",
    "i suggest that we",
    "i suggest we",
    "why not",
    "is not it better to",
    "would not it be better to",
    "would not it be good to",
    "have a go at",
    "i think it would be better if you",
    "it would be better if you",
    "i think it would help to",
    "it would help to",
    "i wonder if we could",
    "i wonder if you could",
    "i guess we could",
    "perhaps we should",
    "maybe we should",
    "maybe you could",
    "what if we",
    "what if you",
    "how about we",
    "why do not we",
    "why do not you",
    "should we",
    "should i",
)


#: Hesitation sounds however they are spelt ("uhh", "ummm", "hmmm", "ehm", "errr").
_HESITATION_SOUND = re.compile(r"u+h+|u+m+|h+m+|e+h+m*|e+r+m*|a+h+")  # not "mm": millimetres

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
    "maybe",
    "perhaps",
    # slang hedges ("kinda wanna undo tbh", "honestly the mask looks fine")
    "kinda",
    "sorta",
    "tbh",
    "honestly",
    "imo",
    "imho",
    "ngl",
}


def words_of(text: str) -> frozenset[str]:
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
COMMON_WORDS = words_of("""
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
    "abd": "abdomen",
    "dn": "down",
    "dwn": "down",
    "bg": "background",
    "fg": "foreground",
    "fin": "finish",
    "rm": "remove",
    "del": "delete",
    "opt": "option",
    "rt": "right",
    "lt": "left",
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
    "gd": "good",
    "rev": "revert",
    "abt": "about",
    "inc": "increase",
    "incr": "increase",
    "dec": "decrease",
    "decr": "decrease",
    "lwr": "lower",
    "shr": "shrink",
    "enl": "enlarge",
    "mv": "move",
    "img": "image",
}

#: Real words (names) that in this vocabulary are far likelier a typo of a command word.
_TYPO_NOT_WORD = {"brian": "brain"}

#: Question words the typo corrector may correct towards ("wat can i say", "hw does it work"); only
#: a short typo (one edit, or one letter dropped) of these is corrected, since they are not commands.
_QUESTION_WORDS = ("what", "which", "where", "when", "how", "why")


@cache
def organ_words() -> frozenset[str]:
    from ..organ_vocabulary import vocabulary

    return frozenset(word for phrase in vocabulary() for word in phrase.split())


@cache
def _correction_targets() -> tuple[str, ...]:
    words = set(COMMAND_WORDS.split()) | set(PRESETS) | organ_words()
    return tuple(sorted(w for w in words if len(w) >= 3 and w.isalpha()))


@cache
def _english_words() -> frozenset[str]:
    """Whole English words that typo correction must leave alone (``english_words.txt``).

    Shipped with the package rather than read from the optional sentence model, so that the
    rules parse a sentence the same way whether or not that model is installed.
    """
    from pathlib import Path

    lines = (Path(__file__).with_name("english_words.txt")).read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


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
    if len(token) >= 4:
        # a clipped abbreviation ("thrsh" = thresh-old): the token's letters in order in a word's start
        for word in _abbreviation_targets():
            end = word.find(token[-1], len(token) - 1)
            if word[0] == token[0] and 0 < end <= 2 * len(token) and _is_subsequence(token, word[: end + 1]):
                return word
    return None


def _expand_prefix(token: str) -> str | None:
    """A clipped word ("opt", "propag"): the command word it starts, when all candidates share one stem."""
    if len(token) < 3:
        return None
    candidates = [word for word in _abbreviation_targets() if word.startswith(token) and word != token]
    if candidates and all(word.startswith(candidates[0]) for word in candidates):
        return candidates[0]
    return None


def _organ_prefix(token: str) -> str | None:
    """A clipped organ word ("panc", "duod"): 4+ letters that start one organ word (or one stem)."""
    if len(token) < 4:
        return None
    candidates = sorted(
        (w for w in organ_words() if w.startswith(token) and w != token), key=lambda w: (len(w), w)
    )
    if not candidates:  # one stem: "pancreas" and "pancreatic" differ only in their last letters
        return None
    stem = candidates[0][:-2] if len(candidates[0]) - 2 > len(token) else candidates[0]
    return candidates[0] if all(word.startswith(stem) for word in candidates) else None


def _one_edit(token: str) -> str | None:
    """The one command word a single substituted, missing or extra letter away ("shrimk", "wndow")."""
    found = set()
    for word in _correction_targets():
        if abs(len(word) - len(token)) > 1 or word[0] != token[0]:
            continue
        if len(word) == len(token):
            if sum(a != b for a, b in zip(word, token, strict=True)) == 1:
                found.add(word)
        else:
            short, long_ = sorted((word, token), key=len)
            if any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_))):
                found.add(word)
    return found.pop() if len(found) == 1 else None


def _transposed(token: str) -> str | None:
    """A command word the token is with two neighbouring letters swapped ("udno", "hlep", "moev")."""
    targets = set(_correction_targets())
    for i in range(len(token) - 1):
        swapped = token[:i] + token[i + 1] + token[i] + token[i + 2 :]
        if swapped != token and swapped in targets:
            return swapped
    return None


def _question_typo(token: str) -> str | None:
    """A question word one letter dropped, added or swapped away ("wat", "waht", "wht", "hwo")."""
    if not 2 <= len(token) <= 6 or token in _QUESTION_WORDS or token[0] not in "wh":
        return None
    for word in _QUESTION_WORDS:
        if len(token) == len(word) - 1 and _is_subsequence(token, word) and token[0] == word[0]:
            return word
        swapped = len(token) == len(word) and sorted(token) == sorted(word) and token[0] == word[0]
        if swapped and sum(a != b for a, b in zip(token, word, strict=True)) == 2:
            return word
    return None


@lru_cache(maxsize=4096)
def _correct(token: str) -> str:
    if token in _TYPO_NOT_WORD:
        return _TYPO_NOT_WORD[token]
    question = _question_typo(token)
    if question is not None:
        return question
    known = _known_words()
    if not token.isalpha() or token in known:
        return token
    if len(token) >= 4:
        swapped = _transposed(token)
        if swapped is not None:
            return swapped
    expanded = _expand_abbreviation(token) or _expand_prefix(token) or _organ_prefix(token)
    if expanded is not None:
        return expanded
    if len(token) == 3:
        dropped = [
            w for w in _correction_targets() if len(w) == 4 and w[0] == token[0] and _is_subsequence(token, w)
        ]
        return dropped[0] if len(dropped) == 1 else token
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
    if len(token) >= 5:
        near = _one_edit(token)
        if near is not None:
            return near
    cutoff = 0.8 if len(token) >= 6 else 0.83
    # a similarity ratio 2M/(a+b) >= cutoff needs 2*min(a, b)/(a+b) >= cutoff: skip other lengths
    size = len(token)
    targets = [w for w in _correction_targets() if 2 * min(size, len(w)) >= cutoff * (size + len(w))]
    match = difflib.get_close_matches(token, targets, n=1, cutoff=cutoff)
    return match[0] if match else token


#: Units a dictated number is counted in ("move it up for pixels" = four pixels).
_COUNTED = {"pixels", "pixel", "px", "mm", "millimeters", "millimetres", "slices", "slice", "steps", "times"}
_DIRECTION_CONTEXT = {"move", "box", "shift", "push", "nudge", "drag", "slide", "the", "it", "go", "more"}


#: Punctuation said out loud to a dictation program ("accept it full stop", "yes comma part of it").
_DICTATED_PUNCTUATION = re.compile(
    r"\s*\b(?:full stop|period|comma|question mark|exclamation (?:mark|point)|semicolon|new line"
    r"|new paragraph)\b\s*",
    re.IGNORECASE,
)
# ("colon" is not one: it is an organ)
_SPOKEN_MARK = {"comma": ", ", "semicolon": "; ", "question mark": "? "}


def dictated_punctuation(text: str) -> str:
    """Spoken punctuation as the marks it names (clause boundaries stay boundaries), or nothing."""
    if not _DICTATED_PUNCTUATION.search(text):
        return text
    return _DICTATED_PUNCTUATION.sub(
        lambda m: _SPOKEN_MARK.get(" ".join(m.group(0).lower().split()), ". "), text
    ).strip(" .")


def _homophones(tokens: list[str]) -> list[str]:
    """Speech-to-text homophones, only where the reading is unambiguous: "write" after a move or
    "the box" is the direction (not after I/to/can: "what can I write"); "for"/"to"/"too" right before
    a counted unit are the numbers 4 and 2 ("propagate up for slices")."""
    out = list(tokens)
    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in {"write", "rite", "wright"} and before in _DIRECTION_CONTEXT:
            out[i] = "right"
        elif token == "for" and after in _COUNTED and not before.isdigit():
            out[i] = "4"
        elif token in {"to", "too"} and after in _COUNTED and not before.isdigit():
            out[i] = "2"
    return out


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


_COMPARATIVES = {
    "big": "bigger", "large": "larger", "small": "smaller", "wide": "wider", "tight": "tighter",
    "narrow": "narrower", "high": "higher", "low": "lower", "strict": "stricter",
}  # fmt: skip


def _comparative(match: re.Match) -> str:
    """ "more big" -> "bigger" (analytic comparatives of non-native speakers)."""
    return f" {_COMPARATIVES[match.group(1)]} "


#: Words after a leading "right" that make it a side ("right middle lobe"), not an interjection.
_SIDE_NOUNS = {"middle", "upper", "lower", "side"}


@lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """The text the rules see (see the module docstring)."""
    text = text.lower().replace("’", "'").replace("`", "'").strip()
    if re.fullmatch(r"\?+", text):
        return "help"
    text = re.sub(r"\bx\s*(\d+)\b|\b(\d+)\s*x\b", lambda m: f"{m.group(1) or m.group(2)} times", text)
    text = re.sub(r"\b0,(\d+)", r"0.\1", text)
    text = re.sub(r"(?<![\w.])\.(\d)", r"0.\1", text)  # ".5" -> "0.5"
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = re.sub(r"(\d)\s*(px|mm)\b", r"\1 \2", text)
    # centimetres are ten millimetres ("shift the box 2cm left" = 20 mm)
    text = re.sub(
        r"(\d+(?:\.\d+)?)\s*(?:cm|centimet(?:er|re)s?)\b", lambda m: f"{float(m[1]) * 10:g} mm", text
    )
    text = re.sub(r"(\d+)\s*/\s*(-?\d+)", r"\1 slash \2", text)
    text = re.sub(r"(?<![\w.])\+\s*(\d)", r"plus \1", text)
    text = re.sub(r"(?<![\w.])-\s*(\d)", r"-\1", text)
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)
    text = re.sub(r"\bw/l\b", "window", text)
    # "w400 l40" is a window; "l1" (one digit) is a vertebra
    text = re.sub(r"\b(w|ww|wl)(-?\d)|\b(l)(-?\d\d|-\d)", lambda m: f"{m[1] or m[3]} {m[2] or m[4]}", text)
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
    # typo correction costs a fuzzy search per new word: a command is short, so only its first words
    tokens = [_correct(t) for t in tokens[:MAX_CORRECTED_WORDS]] + tokens[MAX_CORRECTED_WORDS:]
    tokens = _homophones(tokens)
    tokens = _words_to_numbers(tokens)
    joined = " " + " ".join(tokens) + " "
    joined = re.sub(r" no thank(s| you) ", " reject ", joined)
    joined = re.sub(r" like (?=-?\d)", " ", joined)  # a hedge before a number ("right like 6 pixels")
    joined = re.sub(r" more (big|large|small|wide|tight|narrow|high|low|strict) ", _comparative, joined)
    joined = re.sub(r" (back to|return to|start from|start at|go to) square 1 ", r" \1 the start ", joined)
    for phrase in _FILLER_PHRASES:
        joined = joined.replace(f" {phrase} ", " ")
    tokens = [t for t in joined.split() if t not in _FILLER_WORDS and not _HESITATION_SOUND.fullmatch(t)]
    # a leading intention ("wanna undo", "we are gonna shrink the box") is the command itself
    lead = re.match(r"(?:(?:i|we) (?:am |are )?)?(?:want to|going to|got to) (?=\S)", " ".join(tokens))
    if lead:
        tokens = " ".join(tokens)[lead.end() :].split()
    if len(tokens) >= 2 and len(set(tokens)) == 1:  # "undo undo", "yes yes"
        tokens = tokens[:1]
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
        if tokens[0] == "right" and (tokens[1] in organ_words() or tokens[1] in _SIDE_NOUNS):
            break  # "right middle lobe ...", "right kidney please" name a side
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
    if tokens and tokens[0].endswith("ing"):
        tokens[0] = _base_verb(tokens[0])  # "segmenting the spleen" after "have a go at"
    return " ".join(tokens)


def _base_verb(word: str) -> str:
    """The base form of an inflected command verb ("segmenting" -> "segment"); other words unchanged."""
    from .frames import VERBS, lemmas

    verbs = frozenset().union(*VERBS.values()) | {"segment", "outline", "contour"}
    found = sorted(lemmas(word) & verbs - {word})
    return found[0] if found else word


NUMBER_RE = r"-?\d+(?:\.\d+)?"


def numbers_in(text: str) -> list[float]:
    return [float(v) for v in re.findall(rf"(?<![\w.]){NUMBER_RE}(?![\w.])", text)]


def has(text: str, pattern: str) -> bool:
    return re.search(rf"\b(?:{pattern})\b", text) is not None


def int_or_float(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


BOX_RE = r"box|boxes|bbox|bounding box|rectangle|frame|roi|bounding rectangle"


MOVE_VERBS = (
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


def direction_in(text: str) -> str | None:
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


def amount_in(text: str, default: int, small: int, large: int) -> tuple[int | None, float | None]:
    """(pixels, mm) named in the text; defaults for "a bit"/"a lot"; mm when the unit says so."""
    mm = re.search(rf"({NUMBER_RE})\s*(?:mm|millimeters?|millimetres?)\b", text)
    if mm:
        return None, abs(float(mm.group(1)))
    px = re.search(rf"({NUMBER_RE})\s*(?:px|pixels?|pix|points?)?\b", text)
    values = [abs(v) for v in numbers_in(text)]
    if px or values:
        value = abs(float(px.group(1))) if px else values[0]
        return round(value), None
    if has(
        text,
        r"nudge|nudged|a bit|a little|slightly|a touch|a tad|little|bit|tiny bit|marginally|somewhat|a hair"
        r"|a smidge",
    ):
        return small, None
    if has(text, r"a lot|lots|much|far|way|considerably|substantially|significantly|a good amount"):
        return large, None
    return default, None


_STEP_REF = (
    r"(?:step|version|iteration|mask|stage|result|segmentation|state|number|no)\s*(?:number\s*)?(-?\d+)"
)


_STEP_NOUNS = r"step|version|iteration|mask|stage|result|state"


_INITIAL_REF = (
    r"(?:the )?(?:initial|original|first|very first|starting|start|beginning|zeroth)\s*(?:one|mask|step"
    r"|segmentation|result"
    r"|prediction|version|state)?|(?:the )?(?:start|beginning)"
)


def step_reference_in(text: str) -> int | None:
    match = re.search(_STEP_REF, text)
    if match:
        return int(match.group(1))
    ordinal = re.search(rf"\b({'|'.join(ORDINALS)}) (?:{_STEP_NOUNS})\b", text)
    if ordinal and ordinal.group(1) not in {"first", "1st"}:
        return ORDINALS[ordinal.group(1)]
    if re.search(rf"\b(?:{_INITIAL_REF})\b", text):
        return 0
    return None


def mentions_organ(text: str) -> bool:
    words = {w for w in text.split() if len(w) >= 3 and w.isalpha()} - {"left", "right", "and", "the"}
    return bool(words & organ_words())
