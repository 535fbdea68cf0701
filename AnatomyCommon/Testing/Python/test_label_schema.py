"""The DAP Atlas label schema: ids, names, systems, pairs, colours and SNOMED terminology."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import (
    MAX_LABEL_ID,
    MIN_COLOR_DISTANCE_LAB,
    SYSTEM_TITLES,
    SYSTEMS,
    UNUSED_BY_RELEASED_MODEL,
    all_labels,
    color_distance_lab,
    default_colors_rgb,
    label_by_id,
    label_by_name,
    label_id,
    labels_in_system,
    left_right_pairs,
    partner_id,
    rib_id,
    segment_descriptions,
    vertebra_id,
)
from AnatomyCommonLib.anatomy.label_terminology import all_terminology_entries, code_source, terminology_entry
from AnatomyCommonLib.terminology import LEFT, RIGHT, TerminologyEntry


def test_ids_run_from_0_to_144_without_gaps():
    assert [label.id for label in all_labels()] == list(range(MAX_LABEL_ID + 1))
    assert MAX_LABEL_ID == 144


def test_rectum_is_kept_from_the_released_model_and_manubrium_from_table_4():
    rectum, manubrium = label_by_id(11), label_by_id(135)
    assert rectum.name == "rectum" and rectum.table4_name is None and rectum.released_name == "rectum"
    assert manubrium.name == "sternum manubrium" and manubrium.released_name is None
    assert frozenset({135}) == UNUSED_BY_RELEASED_MODEL


def test_names_resolve_from_canonical_released_and_table_4_spellings():
    assert label_id("kidney left") == 15
    assert label_id("bronchie") == label_id("Bronchus") == 125
    assert label_id("heart   ") == 105  # the released CSV's trailing spaces
    assert label_id("costa 1 right") == rib_id(1, "right") == 68
    assert vertebra_id("T1") == 50 and vertebra_id("l5") == 66
    with pytest.raises(KeyError, match="Did you mean"):
        label_by_name("kidny left")


def test_every_label_belongs_to_one_of_the_figure_7_systems():
    figure_7 = set(SYSTEMS) - {"background"}
    assert len(figure_7) == 13
    assert all(label.system in figure_7 for label in all_labels()[1:])
    assert set(SYSTEM_TITLES) == set(SYSTEMS)
    counts = Counter(label.system for label in all_labels())
    # rows of Figure 7 that the schema reproduces exactly
    assert counts["vertebrae"] == 24 and counts["ribs"] == 26 and counts["musculature"] == 13
    assert counts["urinary"] == 3 and counts["immune"] == 2
    assert [label.id for label in labels_in_system("urinary")] == [15, 16, 17]


def test_left_right_pairs_are_symmetric_and_name_the_same_structure():
    pairs = left_right_pairs()
    assert (15, 16) in pairs and (67, 68) in pairs and (134, 133) in pairs
    for left, right in pairs:
        assert label_by_id(left).side == "left" and label_by_id(right).side == "right"
        assert label_by_id(left).name.replace("left", "right") == label_by_id(right).name
        assert partner_id(left) == right and partner_id(right) == left
    assert partner_id(13) is None


def test_every_label_has_its_own_colour_far_from_every_other_and_from_black():
    colors = default_colors_rgb()
    assert set(colors) == set(range(MAX_LABEL_ID + 1))
    assert colors[0] == (0, 0, 0)
    assert len(set(colors.values())) == len(colors)
    smallest = min(color_distance_lab(a, b) for a, b in itertools.combinations(colors.values(), 2))
    assert smallest >= MIN_COLOR_DISTANCE_LAB


def test_colour_distance_is_zero_for_equal_and_large_for_black_and_white():
    assert color_distance_lab((10, 20, 30), (10, 20, 30)) == 0.0
    assert color_distance_lab((0, 0, 0), (255, 255, 255)) == pytest.approx(100.0, abs=0.1)


def test_every_label_has_a_unique_snomed_entry_with_laterality_as_modifier():
    entries = all_terminology_entries()
    assert set(entries) == set(range(1, MAX_LABEL_ID + 1))
    keys = [
        (e.category.value, e.type.value, e.modifier.value if e.modifier else "") for e in entries.values()
    ]
    assert len(set(keys)) == len(keys)
    assert terminology_entry(0) is None
    for left, right in left_right_pairs():
        a, b = entries[left], entries[right]
        if left in (106, 110):  # heart chambers: "Left atrium" / "Right atrium" are different concepts
            assert a.modifier is None and b.modifier is None and a.type != b.type
            continue
        assert a.type == b.type and a.category == b.category
        assert (a.modifier, b.modifier) == (LEFT, RIGHT)
    # heart chambers and the right middle lobe name their side in the type itself
    assert entries[106].modifier is None and entries[106].type.meaning == "Left atrium"
    assert entries[123].modifier is None
    assert entries[15].type.value == "64033007" and entries[15].modifier == LEFT
    assert code_source(11) == "chosen" and code_source(13) == "reference"


def test_terminology_entries_round_trip_through_slicers_string_form():
    for entry in all_terminology_entries().values():
        assert TerminologyEntry.from_slicer_string(entry.to_slicer_string()) == entry


def test_segment_descriptions_carry_names_colours_and_terminology():
    descriptions = segment_descriptions()
    assert [d.value for d in descriptions] == list(range(1, MAX_LABEL_ID + 1))
    kidney = descriptions[14]
    assert kidney.name == "Kidney Left"
    assert np.allclose(np.array(kidney.color_rgb) * 255, default_colors_rgb()[15])
    assert kidney.terminology == terminology_entry(15)
