"""DAPAtlasLib keeps exposing the schema lookups it had before the schema moved to AnatomyCommonLib."""

from __future__ import annotations

import DAPAtlasLib
from AnatomyCommonLib.anatomy import label_schema


def test_package_level_lookups_are_the_shared_schema():
    for name in ("DAPLabel", "all_labels", "label_by_id", "label_by_name", "label_id", "left_right_pairs"):
        assert getattr(DAPAtlasLib, name) is getattr(label_schema, name)
    # ids of the dissertation's Table 4: kidney right 16 / left 15, liver 13
    assert DAPAtlasLib.label_by_name("kidney left").id == 15
    assert DAPAtlasLib.label_id("kidney right") == 16 and DAPAtlasLib.label_id("liver") == 13
