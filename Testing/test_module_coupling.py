"""Shared code lives in AnatomyCommonLib: LIMIS, CC-Metrics and AnatomyCommon never reach into DAP Atlas."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_top_level_packages(path: Path) -> set[str]:
    """Top-level package of every ``import`` / ``from ... import`` in a file (relative ones skipped)."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            packages |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            packages.add(node.module.split(".")[0])
    return packages


@pytest.mark.parametrize("folder", ["AnatomyCommon", "LIMIS", "CCMetricsModule"])
def test_no_file_outside_the_dap_module_imports_dap_atlas_lib(folder):
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "DAPAtlasLib" in imported_top_level_packages(path)
    ]
    assert offenders == []


@pytest.mark.parametrize("module_file", ["LIMIS/LIMIS.py", "CCMetricsModule/CCMetricsModule.py"])
def test_slicer_modules_depend_only_on_the_common_module(module_file):
    tree = ast.parse((ROOT / module_file).read_text(encoding="utf-8"))
    dependencies = [
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == "dependencies" for t in node.targets)
    ]
    assert dependencies == [["AnatomyCommon"]]


def test_the_import_scan_sees_a_dap_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from DAPAtlasLib.statistics import structure_statistics\n")
    assert "DAPAtlasLib" in imported_top_level_packages(probe)
