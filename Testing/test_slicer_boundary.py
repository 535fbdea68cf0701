"""One Slicer boundary: MRML/vtk/qt only in slicer_bridge and each Lib's mrml_nodes.py; no imports of
another file's private names (read from the source with ``ast``, nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBS = [
    ROOT / "AnatomyCommon" / "AnatomyCommonLib",
    ROOT / "DAPAtlasModule" / "DAPAtlasLib",
    ROOT / "LIMIS" / "LIMISLib",
    ROOT / "CCMetricsModule" / "CCMetricsLib",
]
#: The Slicer-side files; everything else in a Lib runs in plain Python.
BOUNDARY = {
    "AnatomyCommonLib/slicer_bridge.py",
    "DAPAtlasLib/mrml_nodes.py",
    "LIMISLib/mrml_nodes.py",
    "CCMetricsLib/mrml_nodes.py",
}
#: Uses ``slicer`` to install packages (pip_ensure, PyTorch extension), never MRML.
INSTALLER = "AnatomyCommonLib/dependencies.py"
GUI_MODULES = {"slicer", "vtk", "qt", "ctk", "mrml", "MRMLCorePython", "vtkSlicer"}


def lib_files():
    for lib in LIBS:
        for path in sorted(lib.rglob("*.py")):
            yield path, path.relative_to(lib.parent).as_posix()


def imported_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_every_lib_has_exactly_one_slicer_side_file_named_mrml_nodes():
    names = {path.name for lib in LIBS[1:] for path in lib.glob("*.py")}
    assert "session_mrml.py" not in names and "slicer_logic.py" not in names
    for lib in LIBS[1:]:
        assert (lib / "mrml_nodes.py").is_file(), lib


def test_only_the_boundary_files_touch_mrml_vtk_or_qt():
    offenders = []
    for path, name in lib_files():
        if name in BOUNDARY:
            continue
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        gui = {m for m in imported_modules(tree) if m.split(".")[0] in GUI_MODULES}
        if name == INSTALLER:
            gui.discard("slicer")
        mrml = [
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and (node.attr == "mrmlScene" or node.attr.startswith("vtkMRML"))
        ]
        if gui or mrml:
            offenders.append((name, sorted(gui), mrml))
    assert offenders == []


def test_no_file_imports_another_files_private_names():
    roots = [*(ROOT / folder for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"))]
    roots += [ROOT / "Testing", ROOT / "bench", ROOT / "scripts"]
    offenders = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    private = [
                        a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                    ]
                    if private:
                        offenders.append((path.relative_to(ROOT).as_posix(), node.module, private))
    assert offenders == []
