"""The label schema as files: CSV/JSON table, Slicer colour table and Slicer terminology."""

from __future__ import annotations

import csv
import io
import json

import pytest

from AnatomyCommonLib.anatomy.label_exports import (
    COLOR_TABLE_FILE,
    TERMINOLOGY_FILE,
    color_table_text,
    label_rows,
    label_table_text,
    terminology_json,
    write_resource_files,
)
from AnatomyCommonLib.anatomy.label_schema import default_colors_rgb, label_by_id
from AnatomyCommonLib.anatomy.label_terminology import DAP_CONTEXT_NAME, terminology_entry


def test_csv_and_json_tables_hold_one_row_per_id_with_codes_and_colours():
    rows = list(csv.DictReader(io.StringIO(label_table_text("csv"))))
    assert [int(r["id"]) for r in rows] == list(range(145))
    kidney = rows[16]
    assert kidney["display_name"] == "Kidney Right" and kidney["system"] == "urinary"
    assert kidney["type_code"] == "64033007" and kidney["modifier_code"] == "24028007"
    assert kidney["partner_id"] == "15"
    assert (int(kidney["color_r"]), int(kidney["color_g"]), int(kidney["color_b"])) == default_colors_rgb()[
        16
    ]
    assert rows[135]["output_by_released_model"] == "False"
    assert json.loads(label_table_text("json"))["labels"] == json.loads(json.dumps(label_rows()))


def test_colour_table_has_every_id_with_underscored_names():
    lines = [line for line in color_table_text().splitlines() if not line.startswith("#")]
    assert len(lines) == 145
    value, name, r, g, b, a = lines[15].split()
    assert (int(value), name, (int(r), int(g), int(b)), int(a)) == (
        15,
        "Kidney_Left",
        default_colors_rgb()[15],
        255,
    )
    assert lines[0].split()[-1] == "0"  # background transparent


def test_terminology_json_follows_the_segment_context_schema():
    data = terminology_json()
    assert data["SegmentationCategoryTypeContextName"] == DAP_CONTEXT_NAME
    categories = {c["CodeValue"]: c for c in data["SegmentationCodes"]["Category"]}
    assert set(categories) == {"123037004", "85756007"}
    entries = 0
    for category in categories.values():
        for type_entry in category["Type"]:
            assert {"CodingSchemeDesignator", "CodeValue", "CodeMeaning"} <= set(type_entry)
            for leaf in type_entry.get("Modifier", [type_entry]):
                assert len(leaf["recommendedDisplayRGBValue"]) == 3 and leaf["3dSlicerLabel"]
                entries += 1
    assert entries == 144
    kidney = next(t for t in categories["123037004"]["Type"] if t["CodeValue"] == "64033007")
    modifiers = {m["CodeMeaning"]: m["3dSlicerLabel"] for m in kidney["Modifier"]}
    assert modifiers == {"Left": "Kidney Left", "Right": "Kidney Right"}


def test_write_resource_files_writes_both_files(tmp_path):
    paths = write_resource_files(tmp_path / "resources")
    assert paths["ctbl"].name == COLOR_TABLE_FILE and paths["term.json"].name == TERMINOLOGY_FILE
    assert paths["ctbl"].read_text(encoding="utf-8") == label_table_text("ctbl")
    assert (
        json.loads(paths["term.json"].read_text())["SegmentationCategoryTypeContextName"] == DAP_CONTEXT_NAME
    )


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match=r"csv, json, ctbl, term\.json"):
        label_table_text("xlsx")


@pytest.mark.mrml
def test_slicer_loads_the_terminology_and_finds_entries_by_name(mrml_scene, tmp_path):
    import slicer

    logic = slicer.vtkSlicerTerminologiesModuleLogic()
    logic.SetMRMLScene(mrml_scene)
    name = logic.LoadTerminologyFromFile(str(write_resource_files(tmp_path)["term.json"]))
    assert name == DAP_CONTEXT_NAME
    assert logic.GetNumberOfCategoriesInTerminology(name) == 2
    found = slicer.vtkSlicerTerminologyEntry()
    assert logic.FindTypeInTerminologyBy3dSlicerLabel(name, "Kidney Left", found)
    assert found.GetTypeObject().GetCodeValue() == "64033007"
    assert found.GetTypeModifierObject().GetCodeValue() == "7771000"
    entry = slicer.vtkSlicerTerminologyEntry()
    assert logic.DeserializeTerminologyEntry(terminology_entry(131).to_slicer_string(), entry)
    assert entry.GetTypeObject().GetCodeMeaning() == "Eyeball"


@pytest.mark.mrml
def test_slicer_reads_the_colour_table_with_names_and_colours(mrml_scene, tmp_path):
    import slicer

    storage = slicer.vtkMRMLColorTableStorageNode()
    node = slicer.vtkMRMLColorTableNode()
    mrml_scene.AddNode(storage)
    mrml_scene.AddNode(node)
    storage.SetFileName(str(write_resource_files(tmp_path)["ctbl"]))
    assert storage.ReadData(node)
    assert node.GetNumberOfColors() == 145
    assert node.GetColorName(131) == label_by_id(131).display_name
    rgba = [0.0] * 4
    node.GetColor(131, rgba)
    assert [round(v * 255) for v in rgba[:3]] == list(default_colors_rgb()[131])
