"""Fixtures shared by every test suite of the toolkit (they run outside Slicer)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download in tests
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def mrml_scene():
    """A fresh MRML scene from the PyPI slicer-core package, set as ``slicer.mrmlScene``.

    The application, colour and markups logics are attached as in Slicer, so node
    conversions behave as they do in the application.
    """
    import slicer

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
