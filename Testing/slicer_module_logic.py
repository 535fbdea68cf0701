"""Load a Slicer module file's Logic class with the PyPI slicer-core package (tests and benches).

slicer-core has MRML and the module logics but not the application's scripted-module base classes
(``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper``) nor ``slicer.modules``. The
stand-ins below supply only those base classes (no behaviour of their own) and the terminologies
logic, so the module's own Logic methods run unchanged against a real MRML scene.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _base_classes() -> types.ModuleType:
    module = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent) -> None:
            self.parent = parent

    class ScriptedLoadableModuleLogic:
        def __init__(self, parent=None) -> None:
            pass

        def getParameterNode(self):  # the parameter-node wrapper needs the application
            raise NotImplementedError("parameter nodes need the Slicer application")

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None) -> None:
            self.parent = parent

    class ScriptedLoadableModuleTest:
        pass

    for cls in (
        ScriptedLoadableModule,
        ScriptedLoadableModuleLogic,
        ScriptedLoadableModuleWidget,
        ScriptedLoadableModuleTest,
    ):
        setattr(module, cls.__name__, cls)
    return module


def _parameter_node_wrapper() -> types.ModuleType:
    module = types.ModuleType("slicer.parameterNodeWrapper")
    module.parameterNodeWrapper = lambda cls: cls
    module.Choice = lambda *args, **kwargs: ("Choice", args)
    module.WithinRange = lambda *args, **kwargs: ("WithinRange", args)
    return module


def load_module_file(relative_path: str, monkeypatch=None):
    """Import ``<module folder>/<Module>.py`` (e.g. ``"DAPAtlasModule/DAPAtlasModule.py"``) as a module.

    With ``monkeypatch`` (pytest) the stand-ins are removed after the test; without it they stay
    (a bench process).
    """
    import slicer

    def put(target, name, value):
        if monkeypatch is not None:
            monkeypatch.setattr(target, name, value, raising=False)
        else:
            setattr(target, name, value)

    def put_module(name, module):
        if monkeypatch is not None:
            monkeypatch.setitem(sys.modules, name, module)
        else:
            sys.modules[name] = module

    base, wrapper = _base_classes(), _parameter_node_wrapper()
    put_module("slicer.ScriptedLoadableModule", base)
    put_module("slicer.parameterNodeWrapper", wrapper)
    put(slicer, "ScriptedLoadableModule", base)
    put(slicer, "parameterNodeWrapper", wrapper)
    terminologies = slicer.vtkSlicerTerminologiesModuleLogic()
    put(
        slicer,
        "modules",
        types.SimpleNamespace(terminologies=types.SimpleNamespace(logic=lambda: terminologies)),
    )
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(f"_loaded_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
