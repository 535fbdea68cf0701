"""Structure names LIMIS understands: the DAP Atlas schema plus the words clinicians use.

Canonical names are the DAP Atlas names ("kidney left"); prompts to Grounding DINO use them in
lower case. :func:`resolve_structure` maps free text ("left kidney", "gall bladder", "the
liver please", "kidny left") to a canonical name, or raises ``KeyError`` with suggestions.
"""

from __future__ import annotations

import difflib
import re
from functools import cache

from AnatomyCommonLib.anatomy.label_schema import DAPLabel, all_labels

#: The 11 structures present in all three LIMIS training datasets (DAP Atlas, TotalSegmentator, WORD).
PAPER_STRUCTURES: tuple[str, ...] = (
    "esophagus",
    "stomach",
    "duodenum",
    "colon",
    "gallbladder",
    "liver",
    "pancreas",
    "kidney left",
    "kidney right",
    "bladder",
    "spleen",
)

#: Extra words per canonical name (the side-swapped form "left kidney" is generated for all).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "esophagus": ("oesophagus", "gullet", "food pipe"),
    "stomach": ("gaster", "ventricle of the stomach"),
    "duodenum": ("duodenal", "first part of the small bowel"),
    "colon": ("large bowel", "large intestine", "colonic"),
    "gallbladder": ("gall bladder", "gb", "cholecyst"),
    "liver": ("hepar", "hepatic", "liver parenchyma"),
    "pancreas": ("pancreatic", "pancreatic gland"),
    "kidney left": ("left renal", "renal left", "lt kidney", "kidney lt"),
    "kidney right": ("right renal", "renal right", "rt kidney", "kidney rt"),
    "bladder": ("urinary bladder", "vesica", "urinary"),
    "spleen": ("splenic", "lien"),
    "small bowel": ("small intestine", "ileum", "jejunum"),
    "rectum": ("rectal",),
    "heart": ("cardiac", "cor"),
    "aorta": ("aortic",),
    "inferior vena cava": ("ivc", "vena cava", "caval vein"),
    "trachea": ("windpipe", "airway"),
    "bronchi": ("bronchus", "bronchial tree"),
    "brain": ("cerebrum",),
    "spinal canal": ("spinal cord", "cord"),
    "prostate": ("prostate gland",),
    "uterus": ("womb",),
    "thyroid left": ("left thyroid lobe",),
    "thyroid right": ("right thyroid lobe",),
    "adrenal gland left": ("left adrenal", "adrenal left", "left suprarenal gland"),
    "adrenal gland right": ("right adrenal", "adrenal right", "right suprarenal gland"),
    "portal vein and splenic vein": ("portal vein", "splenic vein"),
    "pulmonary artery": ("pulmonary trunk",),
    "sternum": ("breastbone",),
    "skull": ("cranium",),
}

_FILLER = re.compile(r"\b(the|a|an|please|segment|of|organ|structure|now|show|me|find)\b")


def _normalise(text: str) -> str:
    text = text.lower().replace("_", " ").replace("-", " ")
    text = re.sub(r"[^a-z0-9 ]", " ", text)
    return " ".join(_FILLER.sub(" ", text).split())


def _side_swapped(name: str) -> str | None:
    words = name.split()
    for side in ("left", "right"):
        if side in words:
            rest = [w for w in words if w != side]
            return " ".join([side, *rest])
    return None


@cache
def vocabulary() -> dict[str, str]:
    """Every accepted phrase (normalised) -> canonical DAP name."""
    phrases: dict[str, str] = {}
    for label in all_labels()[1:]:
        forms = {label.name, (label.released_name or "").strip(), (label.table4_name or "")}
        forms |= set(SYNONYMS.get(label.name, ()))
        swapped = _side_swapped(label.name)
        if swapped:
            forms.add(swapped)
        for form in forms:
            key = _normalise(form)
            if key:
                phrases.setdefault(key, label.name)
    return phrases


def resolve_structure(text: str, *, cutoff: float = 0.8) -> str:
    """Canonical DAP name for free text; tolerates word order, filler words and small typos."""
    key = _normalise(text)
    table = vocabulary()
    if key in table:
        return table[key]
    sorted_key = " ".join(sorted(key.split()))
    for phrase, name in table.items():
        if " ".join(sorted(phrase.split())) == sorted_key:
            return name
    close = difflib.get_close_matches(key, list(table), n=3, cutoff=cutoff)
    if close and (len(close) == 1 or table[close[0]] == table[close[1]] or _margin(key, close) > 0.05):
        return table[close[0]]
    suggestions = difflib.get_close_matches(key, list(table), n=3, cutoff=0.5)
    names = list(dict.fromkeys(table[s] for s in suggestions))
    hint = f" Did you mean: {', '.join(names)}?" if names else ""
    raise KeyError(f"Unknown structure {text!r}.{hint}")


def _margin(key: str, close: list[str]) -> float:
    scores = [difflib.SequenceMatcher(None, key, c).ratio() for c in close[:2]]
    return scores[0] - scores[1]


def structure_label(name: str) -> DAPLabel:
    """The DAP label of a canonical (or resolvable) structure name."""
    from AnatomyCommonLib.anatomy.label_schema import label_by_name

    return label_by_name(resolve_structure(name))


def prompt_text(names: list[str]) -> str:
    """Grounding DINO prompt: lower-case names separated by " . " and ending with " ."."""
    return " . ".join(n.lower() for n in names) + " ."
