"""Where the DAP Atlas module keeps the colour table and terminology Slicer loads.

The files are generated from the shared label schema
(:mod:`AnatomyCommonLib.anatomy.label_exports`); this module only knows their folder.
"""

from __future__ import annotations

from pathlib import Path

from AnatomyCommonLib.anatomy.label_exports import write_resource_files


def module_resources_dir() -> Path:
    """``DAPAtlasModule/Resources`` next to this package."""
    return Path(__file__).resolve().parents[1] / "Resources"


def write_module_resources(folder: str | Path | None = None) -> dict[str, Path]:
    """(Re)generate ``DAPAtlas.ctbl`` and ``DAPAtlas.term.json`` (by default in the module's Resources)."""
    return write_resource_files(folder if folder is not None else module_resources_dir())
