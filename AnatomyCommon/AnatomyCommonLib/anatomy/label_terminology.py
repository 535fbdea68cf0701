"""SNOMED-CT terminology of every DAP Atlas label (category, type, laterality modifier).

Where the codes come from:

* 127 of the 142 anatomical labels have a TotalSegmentator counterpart. Their category and type
  codes were taken from the mapping table ``dap_to_totalsegmentator_snomed.csv`` of the DAP Atlas
  reference material (itself derived from the TotalSegmentator extension's SNOMED mapping) and
  written out below. Some of those matches are approximate and are marked ``approximate``
  (muscles -> skeletal muscle, spinal canal -> spinal cord, abdominal tissue -> abdominal
  cavity). Two were corrected: the mapping's "Gluteus minius muscle" is spelled "Gluteus minimus
  muscle", and bronchi use "Bronchus" (955009) instead of "Trachea and bronchus" because the
  trachea has its own label.
* The labels without a counterpart got codes chosen by hand: rectum 34402009, gonads 43174007
  (gonadal structure: the label holds testes or ovaries), uterocervix 71252005 (cervix uteri),
  uterus 35039007, breast 76752008, thyroid 69748006 (thyroid gland, the lobe's side as
  modifier), thymus 9875009, skin 39937001, heart tissue 76848001 (pericardium; approximate:
  the label is the heart outside chambers and myocardium), celiac trunk 57850000 (celiac
  artery), cheek 60819002, nasal cavity 279549004, sternum manubrium 182014008 and unknown tissue
  85756007 (tissue).
* Laterality is never part of the type: paired labels carry the SNOMED modifier Left (7771000)
  or Right (24028007), as in Slicer's own terminology lists. The middle lobe of the right lung
  has a code of its own ("Middle lobe of right lung") and no modifier.
"""

from __future__ import annotations

from functools import cache

from AnatomyCommonLib.terminology import ANATOMICAL_STRUCTURE, LEFT, RIGHT, Code, TerminologyEntry

from .label_schema import MAX_LABEL_ID, label_by_id

#: Category of tissue classes (fat, skin, unknown tissue).
TISSUE = Code("85756007", "Tissue")
#: Name of the terminology context written into ``DAPAtlas.term.json`` and every segment tag.
DAP_CONTEXT_NAME = "Segmentation category and type - DAP Atlas"
#: Anatomic context Slicer pairs with it (the DICOM master list ships with Slicer).
DAP_ANATOMIC_CONTEXT_NAME = "Anatomic codes - DICOM master list"

_ORDINAL_RIB = ("First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth",
                "Tenth", "Eleventh", "Twelfth")  # fmt: skip
_RIB_CODES = ("48535007", "78247007", "25888004", "25523003", "15339008", "59558009", "24915002", "5953002",
              "22565002", "77644006", "58830002", "43993008")  # fmt: skip
_VERTEBRA_CODES = {
    "C1": "14806007", "C2": "39976000", "C3": "113205007", "C4": "5329002", "C5": "36978003",
    "C6": "36054005", "C7": "87391001", "T1": "64864005", "T2": "53733008", "T3": "1626008",
    "T4": "73071006", "T5": "56401006", "T6": "45296009", "T7": "62487009", "T8": "11068009",
    "T9": "82687006", "T10": "7610001", "T11": "12989004", "T12": "23215003", "L1": "66794005",
    "L2": "14293000", "L3": "36470004", "L4": "11994002", "L5": "49668003",
}  # fmt: skip

# id -> (category, type code, type meaning, how the code was chosen)
# "reference": from the reference mapping table; "approximate": reference but a looser concept;
# "chosen": picked by hand (see the module docstring).
_TYPES: dict[int, tuple[Code, str, str, str]] = {
    1: (TISSUE, "85756007", "Tissue", "chosen"),
    2: (ANATOMICAL_STRUCTURE, "127954009", "Skeletal muscle", "approximate"),
    3: (TISSUE, "55603005", "Fat", "reference"),
    4: (ANATOMICAL_STRUCTURE, "52731004", "Abdominal cavity", "approximate"),
    5: (ANATOMICAL_STRUCTURE, "72410000", "Mediastinum", "approximate"),
    6: (ANATOMICAL_STRUCTURE, "32849002", "Esophagus", "reference"),
    7: (ANATOMICAL_STRUCTURE, "69695003", "Stomach", "reference"),
    8: (ANATOMICAL_STRUCTURE, "30315005", "Small Intestine", "reference"),
    9: (ANATOMICAL_STRUCTURE, "38848004", "Duodenum", "reference"),
    10: (ANATOMICAL_STRUCTURE, "71854001", "Colon", "reference"),
    11: (ANATOMICAL_STRUCTURE, "34402009", "Rectum", "chosen"),
    12: (ANATOMICAL_STRUCTURE, "28231008", "Gallbladder", "reference"),
    13: (ANATOMICAL_STRUCTURE, "10200004", "Liver", "reference"),
    14: (ANATOMICAL_STRUCTURE, "15776009", "Pancreas", "reference"),
    15: (ANATOMICAL_STRUCTURE, "64033007", "Kidney", "reference"),
    17: (ANATOMICAL_STRUCTURE, "89837001", "Urinary bladder", "reference"),
    18: (ANATOMICAL_STRUCTURE, "43174007", "Gonad", "chosen"),
    19: (ANATOMICAL_STRUCTURE, "41216001", "Prostate", "reference"),
    20: (ANATOMICAL_STRUCTURE, "71252005", "Cervix uteri", "chosen"),
    21: (ANATOMICAL_STRUCTURE, "35039007", "Uterus", "chosen"),
    22: (ANATOMICAL_STRUCTURE, "76752008", "Breast", "chosen"),
    24: (ANATOMICAL_STRUCTURE, "2748008", "Spinal cord", "approximate"),
    25: (ANATOMICAL_STRUCTURE, "12738006", "Brain", "reference"),
    26: (ANATOMICAL_STRUCTURE, "78961009", "Spleen", "reference"),
    27: (ANATOMICAL_STRUCTURE, "23451007", "Adrenal gland", "reference"),
    29: (ANATOMICAL_STRUCTURE, "69748006", "Thyroid gland", "chosen"),
    31: (ANATOMICAL_STRUCTURE, "9875009", "Thymus", "chosen"),
    32: (ANATOMICAL_STRUCTURE, "181674001", "Gluteus maximus muscle", "reference"),
    34: (ANATOMICAL_STRUCTURE, "78333006", "Gluteus medius muscle", "reference"),
    36: (ANATOMICAL_STRUCTURE, "75297007", "Gluteus minimus muscle", "reference"),
    38: (ANATOMICAL_STRUCTURE, "68455001", "Iliopsoas muscle", "reference"),
    40: (ANATOMICAL_STRUCTURE, "244849004", "Deep muscle of back", "reference"),
    42: (TISSUE, "39937001", "Skin", "chosen"),
    91: (ANATOMICAL_STRUCTURE, "50016007", "Costal cartilage", "reference"),
    92: (ANATOMICAL_STRUCTURE, "56873002", "Sternum", "reference"),
    93: (ANATOMICAL_STRUCTURE, "51299004", "Clavicle", "reference"),
    95: (ANATOMICAL_STRUCTURE, "79601000", "Scapula", "reference"),
    97: (ANATOMICAL_STRUCTURE, "85050009", "Humerus", "reference"),
    99: (ANATOMICAL_STRUCTURE, "89546000", "Skull", "reference"),
    100: (ANATOMICAL_STRUCTURE, "29836001", "Hip", "reference"),
    102: (ANATOMICAL_STRUCTURE, "54735007", "Sacrum", "reference"),
    103: (ANATOMICAL_STRUCTURE, "71341001", "Femur", "reference"),
    105: (ANATOMICAL_STRUCTURE, "80891009", "Heart", "reference"),
    106: (ANATOMICAL_STRUCTURE, "82471001", "Left atrium", "reference"),
    107: (ANATOMICAL_STRUCTURE, "76848001", "Pericardium", "chosen"),
    108: (ANATOMICAL_STRUCTURE, "73829009", "Right atrium", "reference"),
    109: (ANATOMICAL_STRUCTURE, "74281007", "Myocardium", "reference"),
    110: (ANATOMICAL_STRUCTURE, "87878005", "Left ventricle of heart", "reference"),
    111: (ANATOMICAL_STRUCTURE, "53085002", "Right ventricle of heart", "reference"),
    112: (ANATOMICAL_STRUCTURE, "73634005", "Common iliac artery", "reference"),
    114: (ANATOMICAL_STRUCTURE, "15825003", "Aorta", "reference"),
    115: (ANATOMICAL_STRUCTURE, "46027005", "Common iliac vein", "reference"),
    117: (ANATOMICAL_STRUCTURE, "64131007", "Inferior vena cava", "reference"),
    118: (ANATOMICAL_STRUCTURE, "110765007", "Portal vein and splenic vein", "reference"),
    119: (ANATOMICAL_STRUCTURE, "57850000", "Celiac artery", "chosen"),
    120: (ANATOMICAL_STRUCTURE, "90572001", "Lower lobe of lung", "reference"),
    121: (ANATOMICAL_STRUCTURE, "45653009", "Upper lobe of lung", "reference"),
    123: (ANATOMICAL_STRUCTURE, "72481006", "Middle lobe of right lung", "reference"),
    125: (ANATOMICAL_STRUCTURE, "955009", "Bronchus", "chosen"),
    126: (ANATOMICAL_STRUCTURE, "44567001", "Trachea", "reference"),
    127: (ANATOMICAL_STRUCTURE, "81040000", "Pulmonary artery", "reference"),
    128: (ANATOMICAL_STRUCTURE, "60819002", "Cheek", "chosen"),
    130: (ANATOMICAL_STRUCTURE, "79652003", "Eyeball", "reference"),
    132: (ANATOMICAL_STRUCTURE, "279549004", "Nasal cavity", "chosen"),
    133: (ANATOMICAL_STRUCTURE, "32062004", "Common carotid artery", "reference"),
    135: (ANATOMICAL_STRUCTURE, "182014008", "Manubrium of sternum", "chosen"),
    136: (ANATOMICAL_STRUCTURE, "86117002", "Internal carotid artery", "reference"),
    138: (ANATOMICAL_STRUCTURE, "12123001", "Internal jugular vein", "reference"),
    140: (ANATOMICAL_STRUCTURE, "12691009", "Brachiocephalic artery", "reference"),
    141: (ANATOMICAL_STRUCTURE, "8887007", "Brachiocephalic vein", "reference"),
    143: (ANATOMICAL_STRUCTURE, "29700009", "Subclavian artery", "reference"),
}
for _k, (_code, _ordinal) in enumerate(zip(_RIB_CODES, _ORDINAL_RIB, strict=True)):
    _TYPES[67 + 2 * _k] = (ANATOMICAL_STRUCTURE, _code, f"{_ordinal} rib", "reference")
for _n, (_name, _code) in enumerate(_VERTEBRA_CODES.items()):
    _TYPES[43 + _n] = (ANATOMICAL_STRUCTURE, _code, f"{_name} vertebra", "reference")


#: Labels whose type code already names the side (heart chambers, right middle lobe): no modifier.
_INHERENTLY_LATERAL = frozenset({106, 108, 110, 111, 123})


def _type_of(label_id: int) -> tuple[Code, str, str, str]:
    """Category, type code, meaning and source; the right member of a pair shares the left's type."""
    if label_id in _TYPES:
        return _TYPES[label_id]
    label = label_by_id(label_id)
    if label.side is not None:
        from .label_schema import left_right_pairs

        for left, right in left_right_pairs():
            if label_id == right and left in _TYPES:
                return _TYPES[left]
            if label_id == left and right in _TYPES:
                return _TYPES[right]
    raise KeyError(f"No terminology for DAP Atlas label {label_id} ({label.name}).")


@cache
def terminology_entry(label_id: int) -> TerminologyEntry | None:
    """The SNOMED-CT entry of a label (None for background)."""
    if label_id == 0:
        return None
    label = label_by_id(label_id)
    category, value, meaning, _ = _type_of(label_id)
    modifier = None
    if label.side is not None and label_id not in _INHERENTLY_LATERAL:
        modifier = LEFT if label.side == "left" else RIGHT
    return TerminologyEntry(
        category=category,
        type=Code(value, meaning),
        modifier=modifier,
        context_name=DAP_CONTEXT_NAME,
        anatomic_context_name=DAP_ANATOMIC_CONTEXT_NAME,
    )


def code_source(label_id: int) -> str:
    """How the label's type code was chosen: "reference", "approximate" or "chosen"."""
    return _type_of(label_id)[3]


def all_terminology_entries() -> dict[int, TerminologyEntry]:
    """Label id -> terminology entry for ids 1..144."""
    return {label_id: terminology_entry(label_id) for label_id in range(1, MAX_LABEL_ID + 1)}
