"""The Slicer requirements files are generated from pyproject.toml and never drift from it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

from AnatomyCommonLib.dependencies import installable_requirements, read_requirements  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FILES = {
    "DAPAtlasModule/Resources/requirements-postprocess.txt",
    "DAPAtlasModule/Resources/requirements-inference.txt",
    "LIMIS/Resources/requirements-limis.txt",
    "CCMetricsModule/Resources/requirements.txt",
}
REGENERATE = "regenerate with: python scripts/generate_slicer_requirements.py"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_slicer_requirements", ROOT / "scripts/generate_slicer_requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _names(lines):
    return {re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower() for line in lines}


def _version(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_every_slicer_requirements_file_matches_the_generator():
    generated = _generator().generate()
    assert set(generated) == FILES
    for path, text in generated.items():
        on_disk = (ROOT / path).read_text(encoding="utf-8")
        assert on_disk == text, f"{path} drifted from pyproject.toml; {REGENERATE}"


def test_drift_is_detected(tmp_path):
    """A hand edit of a generated file (or a new extra entry) is reported, not silently accepted."""
    generator = _generator()
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for path, text in generator.generate().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert generator.drifted(tmp_path) == []
    limis = tmp_path / "LIMIS/Resources/requirements-limis.txt"
    limis.write_text(limis.read_text().replace("segment-anything>=1.0,<2\n", ""))
    assert generator.drifted(tmp_path) == ["LIMIS/Resources/requirements-limis.txt"]


def test_slicer_lists_cover_the_pyproject_extras_with_ranges_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    limis = read_requirements(ROOT / "LIMIS/Resources/requirements-limis.txt")
    dap = read_requirements(ROOT / "DAPAtlasModule/Resources/requirements-inference.txt")
    own = lambda extra: {n for n in _names(extras[extra]) if n != "slicer-anatomy-toolkit"}  # noqa: E731
    assert own("limis") | own("torch") <= _names(limis)
    assert {"segment-anything", "faster-coco-eval"} <= _names(limis)
    assert own("dap") | own("torch") <= _names(dap)
    for path in FILES:
        lines = read_requirements(ROOT / path)
        assert lines, path
        assert not any("==" in line for line in lines), f"{path}: Slicer requirements must be ranges"
        assert not _names(lines) & {"numpy", "simpleitk", "vtk"}, f"{path} reinstalls a Slicer package"


def test_torch_range_for_slicer_contains_the_pinned_tooling_build():
    pins = dict(
        line.split("==")
        for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][
            "torch"
        ]
    )
    lines = read_requirements(ROOT / "LIMIS/Resources/requirements-limis.txt")
    for package in ("torch", "torchvision"):
        line = next(line for line in lines if re.match(rf"{package}[<>=]", line))
        floor, ceiling = re.fullmatch(rf"{package}>=([\d.]+),<([\d.]+)", line).groups()
        assert _version(floor) <= _version(pins[package]) < _version(ceiling), line


def test_pip_never_replaces_torch_from_the_pytorch_extension():
    wanted = ["scipy>=1.11,<2", "torch>=2.4,<3", "torchvision>=0.19,<1", "numpy>=1.26", "peft>=0.17"]
    assert installable_requirements(wanted) == ["scipy>=1.11,<2", "peft>=0.17"]
