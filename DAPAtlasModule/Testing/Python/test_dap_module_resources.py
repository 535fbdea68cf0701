"""The DAP module ships the colour table and terminology generated from the shared label schema."""

from __future__ import annotations

import json

from AnatomyCommonLib.anatomy.label_exports import COLOR_TABLE_FILE, TERMINOLOGY_FILE, label_table_text
from AnatomyCommonLib.anatomy.label_terminology import DAP_CONTEXT_NAME
from DAPAtlasLib.module_resources import module_resources_dir, write_module_resources


def test_module_resources_match_the_schema():
    folder = module_resources_dir()
    assert (folder / COLOR_TABLE_FILE).read_text(encoding="utf-8") == label_table_text("ctbl")
    assert (folder / TERMINOLOGY_FILE).read_text(encoding="utf-8") == label_table_text("term.json"), (
        "regenerate with: python -m DAPAtlasLib labels --write-module-resources"
    )


def test_write_module_resources_writes_both_files(tmp_path):
    paths = write_module_resources(tmp_path)
    assert paths["ctbl"].name == COLOR_TABLE_FILE and paths["term.json"].name == TERMINOLOGY_FILE
    assert (
        json.loads(paths["term.json"].read_text())["SegmentationCategoryTypeContextName"] == DAP_CONTEXT_NAME
    )
