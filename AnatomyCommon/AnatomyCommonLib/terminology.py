"""Coded terminology (SNOMED-CT) for segments, in the form Slicer stores and loads.

A :class:`TerminologyEntry` is category + type (+ optional modifier such as Left/Right) with
codes from a coding scheme ("SCT" = SNOMED-CT). ``to_slicer_string`` gives the segment tag
value Slicer keeps under ``vtkSegment.GetTerminologyEntryTagName()``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """One coded concept: scheme ("SCT"), value ("10200004") and meaning ("Liver")."""

    value: str
    meaning: str
    scheme: str = "SCT"

    def to_slicer(self) -> str:
        return f"{self.scheme}^{self.value}^{self.meaning}"


#: SNOMED-CT laterality modifiers.
LEFT = Code("7771000", "Left")
RIGHT = Code("24028007", "Right")
#: The usual category of anatomical structures.
ANATOMICAL_STRUCTURE = Code("123037004", "Anatomical Structure")


@dataclass(frozen=True)
class TerminologyEntry:
    """A segment's meaning: category, type and optional type modifier, within a context."""

    category: Code
    type: Code
    modifier: Code | None = None
    context_name: str = "Segmentation category and type - 3D Slicer General Anatomy list"
    anatomic_context_name: str = "Anatomic codes - DICOM master list"

    def to_slicer_string(self) -> str:
        """The ``~``-separated string Slicer stores in a segment's terminology tag."""
        modifier = self.modifier.to_slicer() if self.modifier else "^^"
        return "~".join(
            [
                self.context_name,
                self.category.to_slicer(),
                self.type.to_slicer(),
                modifier,
                self.anatomic_context_name,
                "^^",
                "^^",
            ]
        )

    @classmethod
    def from_slicer_string(cls, text: str) -> TerminologyEntry:
        """Parse the string written by :meth:`to_slicer_string` (or by Slicer)."""
        parts = text.split("~")
        if len(parts) < 4:
            raise ValueError(f"Not a Slicer terminology entry: {text!r}")

        def code(part: str) -> Code | None:
            fields = part.split("^")
            if len(fields) != 3 or not fields[1]:
                return None
            return Code(value=fields[1], meaning=fields[2], scheme=fields[0])

        category, type_ = code(parts[1]), code(parts[2])
        if category is None or type_ is None:
            raise ValueError(f"Terminology entry without category or type: {text!r}")
        return cls(
            category=category,
            type=type_,
            modifier=code(parts[3]),
            context_name=parts[0],
            anatomic_context_name=parts[4] if len(parts) > 4 else cls.anatomic_context_name,
        )
