"""The DAP Atlas label schema: one table that every part of the toolkit uses.

Ids 0..144 as in the dissertation's Table 4 and the released model, with two documented
differences between them:

* **11 rectum** is predicted by the released model and listed in its label CSV, but Table 4
  omits it. We keep it (the model outputs it).
* **135 sternum manubrium** is listed in Table 4 but never produced or used by the released
  code. We keep the id so that files labelled with Table 4 stay readable; the model never
  outputs it.

``name`` is the canonical lower-case English name used in prompts, CLIs and files
("kidney left", "bronchi"); ``released_name`` is the exact string of the authors' CSV
(with its quirks: "costa", "bronchie", "heart" with trailing spaces); ``table4_name`` is the
dissertation's display name.

Display colours (:func:`default_colors_rgb`) are distinct: every pair of labels is at least
:data:`MIN_COLOR_DISTANCE_LAB` apart in CIELAB. SNOMED-CT codes live in
:mod:`.label_terminology`; :mod:`.label_exports` writes the table as CSV/JSON, a Slicer colour
table and a Slicer terminology.

Anatomical systems follow the groups of the dissertation's Figure 7. The figure counts labels
per source dataset and its row totals do not pin every label to one system unambiguously
(gonads, thymus, heart tissue); we assign each label to the system a clinician would look
for it in and document that choice here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

SYSTEMS: tuple[str, ...] = (
    "background",
    "musculature",
    "tissues",
    "digestive",
    "urinary",
    "endocrine",
    "reproductive",
    "nervous",
    "immune",
    "vertebrae",
    "ribs",
    "bones",
    "cardiovascular",
    "respiratory",
)


@dataclass(frozen=True)
class DAPLabel:
    """One structure of the DAP Atlas schema."""

    id: int
    name: str
    system: str
    side: str | None = None  # "left", "right" or None
    released_name: str | None = None  # None: not in the released CSV (ids >= 132)
    table4_name: str | None = None  # None: not in Table 4 (id 11)

    @property
    def display_name(self) -> str:
        """Title-case name for tables and segment names ("Kidney Left")."""
        return self.table4_name or self.name.title()


# (id, canonical name, system, released CSV name, Table 4 name)
_ROWS: tuple[tuple[int, str, str, str | None, str | None], ...] = (
    (0, "background", "background", "Background", "Background"),
    (1, "unknown tissue", "tissues", "Left to annotate", "Unknown Tissue"),
    (2, "muscles", "musculature", "muscles", "Muscles"),
    (3, "fat", "tissues", "fat", "Fat"),
    (4, "abdominal tissue", "tissues", "abdominal tissue", "Abdominal Tissue"),
    (5, "mediastinal tissue", "tissues", "mediastinal tissue", "Mediastinal Tissue"),
    (6, "esophagus", "digestive", "esophagus", "Esophagus"),
    (7, "stomach", "digestive", "stomach", "Stomach"),
    (8, "small bowel", "digestive", "small bowel", "Small Bowel"),
    (9, "duodenum", "digestive", "duodenum", "Duodenum"),
    (10, "colon", "digestive", "colon", "Colon"),
    (11, "rectum", "digestive", "rectum", None),
    (12, "gallbladder", "digestive", "gallbladder", "Gallbladder"),
    (13, "liver", "digestive", "liver", "Liver"),
    (14, "pancreas", "digestive", "pancreas", "Pancreas"),
    (15, "kidney left", "urinary", "kidney left", "Kidney Left"),
    (16, "kidney right", "urinary", "kidney right", "Kidney Right"),
    (17, "bladder", "urinary", "bladder", "Bladder"),
    (18, "gonads", "reproductive", "gonads", "Gonads"),
    (19, "prostate", "reproductive", "prostate", "Prostate"),
    (20, "uterocervix", "reproductive", "uterocervix", "Uterocervix"),
    (21, "uterus", "reproductive", "uterus", "Uterus"),
    (22, "breast left", "tissues", "breast left", "Breast Left"),
    (23, "breast right", "tissues", "breast right", "Breast Right"),
    (24, "spinal canal", "nervous", "spinal canal", "Spinal Canal"),
    (25, "brain", "nervous", "brain", "Brain"),
    (26, "spleen", "immune", "spleen", "Spleen"),
    (27, "adrenal gland left", "endocrine", "adrenal gland left", "Adrenal Gland Left"),
    (28, "adrenal gland right", "endocrine", "adrenal gland right", "Adrenal Gland Right"),
    (29, "thyroid left", "endocrine", "thyroid left", "Thyroid Left"),
    (30, "thyroid right", "endocrine", "thyroid right", "Thyroid Right"),
    (31, "thymus", "immune", "thymus", "Thymus"),
    (32, "gluteus maximus left", "musculature", "gluteus maximus left", "Gluteus Maximus Left"),
    (33, "gluteus maximus right", "musculature", "gluteus maximus right", "Gluteus Maximus Right"),
    (34, "gluteus medius left", "musculature", "gluteus medius left", "Gluteus Medius Left"),
    (35, "gluteus medius right", "musculature", "gluteus medius right", "Gluteus Medius Right"),
    (36, "gluteus minimus left", "musculature", "gluteus minimus left", "Gluteus Minimus Left"),
    (37, "gluteus minimus right", "musculature", "gluteus minimus right", "Gluteus Minimus Right"),
    (38, "iliopsoas left", "musculature", "iliopsoas left", "Iliopsoas Left"),
    (39, "iliopsoas right", "musculature", "iliopsoas right", "Iliopsoas Right"),
    (40, "autochthon left", "musculature", "autochthon left", "Autochthon Left"),
    (41, "autochthon right", "musculature", "autochthon right", "Autochthon Right"),
    (42, "skin", "tissues", "skin", "Skin"),
    *(
        (43 + n, f"vertebra {v}", "vertebrae", f"vertebrae {v}", f"Vertebra {v}")
        for n, v in enumerate(
            [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
        )
    ),
    *(
        row
        for k in range(1, 13)
        for row in (
            (67 + 2 * (k - 1), f"rib {k} left", "ribs", f"costa {k} left", f"Costa {k} Left"),
            (68 + 2 * (k - 1), f"rib {k} right", "ribs", f"costa {k} right", f"Costa {k} Right"),
        )
    ),
    (91, "rib cartilage", "ribs", "rib_cartilage", "Rib Cartilage"),
    (92, "sternum", "ribs", "sternum", "Sternum Corpus"),
    (93, "clavicle left", "bones", "clavicle left", "Clavicula Left"),
    (94, "clavicle right", "bones", "clavicle right", "Clavicula Right"),
    (95, "scapula left", "bones", "scapula left", "Scapula Left"),
    (96, "scapula right", "bones", "scapula right", "Scapula Right"),
    (97, "humerus left", "bones", "humerus left", "Humerus Left"),
    (98, "humerus right", "bones", "humerus right", "Humerus Right"),
    (99, "skull", "bones", "skull", "Skull"),
    (100, "hip left", "bones", "hip left", "Hip Left"),
    (101, "hip right", "bones", "hip right", "Hip Right"),
    (102, "sacrum", "bones", "sacrum", "Sacrum"),
    (103, "femur left", "bones", "femur left", "Femur Left"),
    (104, "femur right", "bones", "femur right", "Femur Right"),
    (105, "heart", "cardiovascular", "heart   ", "Heart"),
    (106, "heart atrium left", "cardiovascular", "heart atrium left", "Heart Atrium Left"),
    (107, "heart tissue", "cardiovascular", "heart tissue", "Heart Tissue"),
    (108, "heart atrium right", "cardiovascular", "heart atrium right", "Heart Atrium Right"),
    (109, "heart myocardium", "cardiovascular", "heart myocardium", "Heart Myocardium"),
    (110, "heart ventricle left", "cardiovascular", "heart ventricle left", "Heart Ventricle Left"),
    (111, "heart ventricle right", "cardiovascular", "heart ventricle right", "Heart Ventricle Right"),
    (112, "iliac artery left", "cardiovascular", "iliac artery left", "Iliac Artery Left"),
    (113, "iliac artery right", "cardiovascular", "iliac artery right", "Iliac Artery Right"),
    (114, "aorta", "cardiovascular", "aorta", "Aorta"),
    (115, "iliac vein left", "cardiovascular", "iliac vena left", "Iliac Vena Left"),
    (116, "iliac vein right", "cardiovascular", "iliac vena right", "Iliac Vena Right"),
    (117, "inferior vena cava", "cardiovascular", "inferior vena cava", "Inferior Vena Cava"),
    (
        118,
        "portal vein and splenic vein",
        "cardiovascular",
        "portal vein and splenic vein",
        "Portal Vein and Splenic Vein",
    ),
    (119, "celiac trunk", "cardiovascular", "celiac trunk", "Celiac Trunk"),
    (120, "lung lower lobe left", "respiratory", "lung lower lobe left", "Lung Lower Lobe Left"),
    (121, "lung upper lobe left", "respiratory", "lung upper lobe left", "Lung Upper Lobe Left"),
    (122, "lung lower lobe right", "respiratory", "lung lower lobe right", "Lung Lower Lobe Right"),
    (123, "lung middle lobe right", "respiratory", "lung middle lobe right", "Lung Middle Lobe Right"),
    (124, "lung upper lobe right", "respiratory", "lung upper lobe right", "Lung Upper Lobe Right"),
    (125, "bronchi", "respiratory", "bronchie", "Bronchus"),
    (126, "trachea", "respiratory", "trachea", "Trachea"),
    (127, "pulmonary artery", "cardiovascular", "pulmonary artery", "Pulmonary Artery"),
    (128, "cheek left", "musculature", "cheek left", "Cheek Left"),
    (129, "cheek right", "musculature", "cheek right", "Cheek Right"),
    (130, "eyeball left", "nervous", "eyeball left", "Eyeball Left"),
    (131, "eyeball right", "nervous", "eyeball right", "Eyeball Right"),
    (132, "nasal cavity", "respiratory", None, "Nasal Cavity"),
    (133, "common carotid artery right", "cardiovascular", None, "Artery Common Carotid Right"),
    (134, "common carotid artery left", "cardiovascular", None, "Artery Common Carotid Left"),
    (135, "sternum manubrium", "bones", None, "Sternum Manubrium"),
    (136, "internal carotid artery right", "cardiovascular", None, "Artery Internal Carotid Right"),
    (137, "internal carotid artery left", "cardiovascular", None, "Artery Internal Carotid Left"),
    (138, "internal jugular vein right", "cardiovascular", None, "Internal Jugular Vein Right"),
    (139, "internal jugular vein left", "cardiovascular", None, "Internal Jugular Vein Left"),
    (140, "brachiocephalic artery", "cardiovascular", None, "Artery Brachiocephalic"),
    (141, "brachiocephalic vein right", "cardiovascular", None, "Vein Brachiocephalic Right"),
    (142, "brachiocephalic vein left", "cardiovascular", None, "Vein Brachiocephalic Left"),
    (143, "subclavian artery right", "cardiovascular", None, "Artery Subclavian Right"),
    (144, "subclavian artery left", "cardiovascular", None, "Artery Subclavian Left"),
)

#: Highest label id of the schema.
MAX_LABEL_ID = 144
#: Ids the released model never outputs (Table 4 only).
UNUSED_BY_RELEASED_MODEL = frozenset({135})


def _side_of(name: str) -> str | None:
    words = name.split()
    if "left" in words:
        return "left"
    if "right" in words:
        return "right"
    return None


@cache
def all_labels() -> tuple[DAPLabel, ...]:
    """Every label of the schema, ordered by id (0..144)."""
    labels = tuple(
        DAPLabel(id=i, name=n, system=s, side=_side_of(n), released_name=r, table4_name=t)
        for i, n, s, r, t in _ROWS
    )
    assert [label.id for label in labels] == list(range(MAX_LABEL_ID + 1)), "label ids must be 0..144"
    return labels


@cache
def _by_name() -> dict[str, DAPLabel]:
    table: dict[str, DAPLabel] = {}
    for label in all_labels():
        for key in {
            label.name.lower(),
            (label.released_name or "").strip().lower(),
            (label.table4_name or "").lower(),
        }:
            if key:
                table.setdefault(key, label)
    return table


def label_by_id(label_id: int) -> DAPLabel:
    """The label with this id; ``KeyError`` with the valid range otherwise."""
    if not 0 <= int(label_id) <= MAX_LABEL_ID:
        raise KeyError(f"DAP Atlas label ids run from 0 to {MAX_LABEL_ID}; got {label_id}.")
    return all_labels()[int(label_id)]


def label_by_name(name: str) -> DAPLabel:
    """Look a label up by canonical, released or Table 4 name (case-insensitive)."""
    key = " ".join(name.strip().lower().replace("_", " ").split())
    try:
        return _by_name()[key]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(key, list(_by_name()), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"No DAP Atlas structure is called {name!r}.{hint}") from None


def label_id(name: str) -> int:
    """Shorthand for ``label_by_name(name).id``."""
    return label_by_name(name).id


def labels_in_system(system: str) -> tuple[DAPLabel, ...]:
    """All labels of one anatomical system (see :data:`SYSTEMS`)."""
    if system not in SYSTEMS:
        raise KeyError(f"Unknown anatomical system {system!r}; use one of {', '.join(SYSTEMS)}.")
    return tuple(label for label in all_labels() if label.system == system)


@cache
def left_right_pairs() -> tuple[tuple[int, int], ...]:
    """(left id, right id) for every paired structure, ordered by left id."""
    pairs = []
    for label in all_labels():
        if label.side == "left":
            partner_name = " ".join("right" if w == "left" else w for w in label.name.split())
            pairs.append((label.id, label_by_name(partner_name).id))
    return tuple(sorted(pairs))


def vertebra_id(name: str) -> int:
    """Label id of a vertebra given as "C1".."C7", "T1".."T12", "L1".."L5"."""
    return label_by_name(f"vertebra {name.upper()}").id


def rib_id(number: int, side: str) -> int:
    """Label id of rib ``number`` (1 = most superior) on ``side`` ("left"/"right")."""
    if not 1 <= number <= 12 or side not in ("left", "right"):
        raise KeyError(f"Ribs are numbered 1..12 on side 'left' or 'right'; got {number}, {side!r}.")
    return 67 + 2 * (number - 1) + (0 if side == "left" else 1)


#: Display titles of the anatomical systems (Figure 7 of the dissertation; "tissues" holds the
#: body-composition classes, "ribs" the ribs with rib cartilage and sternum body).
SYSTEM_TITLES: dict[str, str] = {
    "background": "Background",
    "musculature": "Musculature",
    "tissues": "Tissues",
    "digestive": "Digestive system",
    "urinary": "Urinary system",
    "endocrine": "Endocrine system",
    "reproductive": "Reproductive system",
    "nervous": "Nervous system and sense organs",
    "immune": "Immune system",
    "vertebrae": "Vertebrae",
    "ribs": "Ribs and sternum",
    "bones": "Bones",
    "cardiovascular": "Cardiovascular system",
    "respiratory": "Respiratory system",
}

#: Labels the released post-processing derives by rule rather than taking from a source model
#: (Figure 7, "Rule" column): eyeballs (from gonads in the head), cheeks (from thyroid pieces in
#: the face), nasal cavity (from bowel in the head), skull (from the CT), trachea (from bronchi
#: above the lungs). The released model predicts them directly.
RULE_DERIVED_LABELS = frozenset({99, 126, 128, 129, 130, 131, 132})


def partner_id(label_id: int) -> int | None:
    """The other side of a paired structure (kidney left <-> kidney right), or None."""
    for left, right in left_right_pairs():
        if label_id == left:
            return right
        if label_id == right:
            return left
    return None


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours given as (N, 3) in 0..255."""

    c = np.asarray(rgb, dtype=float) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array(
        [
            [0.4124564, 0.2126729, 0.0193339],
            [0.3575761, 0.7151522, 0.1191920],
            [0.1804375, 0.0721750, 0.9503041],
        ]
    )
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def color_distance_lab(rgb_a: tuple[int, int, int], rgb_b: tuple[int, int, int]) -> float:
    """Perceptual distance (CIE76 Delta E in CIELAB) between two 0..255 RGB colours."""
    lab = _srgb_to_lab(np.array([rgb_a, rgb_b]))
    return float(np.linalg.norm(lab[0] - lab[1]))


#: Fixed colours of the body-composition classes (unknown tissue, muscles, fat, abdominal and
#: mediastinal tissue, skin), close to Slicer's own tissue colours.
TISSUE_COLORS_RGB: dict[int, tuple[int, int, int]] = {
    1: (128, 174, 128),
    2: (192, 104, 88),
    3: (230, 220, 70),
    4: (177, 122, 101),
    5: (102, 153, 204),
    42: (255, 218, 185),
}

#: Smallest CIELAB distance between any two label colours (and between a label and black).
MIN_COLOR_DISTANCE_LAB = 12.0


@cache
def default_colors_rgb() -> dict[int, tuple[int, int, int]]:
    """A distinct display colour (0..255 RGB) per label id; background is black.

    Colours are chosen by farthest-point sampling in CIELAB over a 16-level RGB grid, starting
    from black (the background), so every label is at least :data:`MIN_COLOR_DISTANCE_LAB` from
    every other label and from the background, and consecutive ids (rib 1 left, rib 1 right,
    ...) get colours that are far apart. The large body-composition classes keep familiar,
    muted colours (:data:`TISSUE_COLORS_RGB`, Slicer's tissue/muscle/fat conventions) and the
    sampling starts from them. Deterministic: the same table on every machine.
    """
    levels = np.arange(0, 256, 17)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = _srgb_to_lab(grid)
    colors: dict[int, tuple[int, int, int]] = {0: (0, 0, 0), **TISSUE_COLORS_RGB}
    seeds = _srgb_to_lab(np.array(list(colors.values()), dtype=float))
    nearest = np.min(np.linalg.norm(lab[:, None, :] - seeds[None, :, :], axis=2), axis=1)
    for label in all_labels()[1:]:
        if label.id in colors:
            continue
        best = int(np.argmax(nearest))
        colors[label.id] = tuple(int(v) for v in grid[best])
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[best], axis=1))
    return dict(sorted(colors.items()))


def segment_descriptions():
    """One :class:`AnatomyCommonLib.slicer_bridge.LabelDescription` per label (background excluded).

    Each carries the DAP display name, the default colour and the SNOMED-CT terminology entry
    of :mod:`.label_terminology`.
    """
    from AnatomyCommonLib.slicer_bridge import LabelDescription

    from .label_terminology import terminology_entry

    colors = default_colors_rgb()
    return [
        LabelDescription(
            value=label.id,
            name=label.display_name,
            color_rgb=tuple(c / 255.0 for c in colors[label.id]),
            terminology=terminology_entry(label.id),
        )
        for label in all_labels()[1:]
    ]
