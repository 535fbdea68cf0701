"""The installer's decisions, with pip replaced at the process boundary only.

What is real: the requirement parsing, the installed-version lookups of this environment, the plan
(what is installed, what is protected, the constraints file), the choice of Slicer's installer
(5.12+ ``slicer.packaging.pip_ensure`` vs 5.10 ``slicer.util.pip_install``). What is fake: the
Slicer call that would start pip, which records what it was asked. Nothing is ever installed.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import types
from pathlib import Path

import pytest

from AnatomyCommonLib import dependencies
from AnatomyCommonLib.dependencies import InstallDeclined, install, plan_install
from AnatomyCommonLib.errors import MissingDependencyError

MISSING = "surely-not-installed-pkg-xyz>=1.0,<2"
ROOT = Path(__file__).resolve().parents[3]


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class FakeSlicer510:
    """``slicer`` of 5.10: only ``slicer.util.pip_install``; records each call and the constraints."""

    def __init__(self):
        self.calls = []
        self.util = types.SimpleNamespace(pip_install=self._pip_install)

    def _pip_install(self, arguments):
        constraints = arguments.split(' -c "', 1)[1].rstrip('"')
        self.calls.append((arguments, Path(constraints).read_text()))


def test_the_plan_installs_only_what_is_missing_and_never_a_protected_package():
    numpy = _version("numpy")
    plan = plan_install(
        [f"numpy>={numpy}", "numpy>=999", "SimpleITK>=999", "requests>=999", "vtk>=999", MISSING], "Tester"
    )
    assert plan.install == (MISSING,)
    assert plan.blocked == ()
    # every protected package that is installed here is pinned, at exactly its installed version
    for name in ("numpy", "simpleitk", "vtk", "requests", "torch", "torchvision"):
        assert plan.protected.get(name) == _version(name)
    pinned = dict(line.split("==") for line in plan.constraints_text.splitlines())
    assert pinned["numpy"] == numpy
    assert set(pinned) == {
        n for n in ("numpy", "simpleitk", "vtk", "requests", "torch", "torchvision") if _version(n)
    }


def test_a_wrong_torch_is_blocked_not_installed():
    plan = plan_install(["torch>=999", MISSING], "Tester")
    assert plan.install == (MISSING,) and plan.blocked == ("torch>=999",)
    slicer = FakeSlicer510()
    with pytest.raises(MissingDependencyError, match="PyTorch"):
        install(plan, slicer, confirm=lambda question: True)
    assert slicer.calls == []


def test_an_installed_package_that_is_already_imported_needs_a_restart():
    assert "pytest" in sys.modules
    plan = plan_install(["pytest>=999", MISSING], "Tester")
    assert plan.restart_needed == ("pytest",)
    assert "restart" in plan.question


def test_slicer_510_path_calls_pip_install_once_with_the_constraints_file(monkeypatch):
    monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)
    monkeypatch.delitem(sys.modules, "slicer.pydeps", raising=False)
    slicer = FakeSlicer510()
    questions = []
    outcome = install(
        plan_install(["numpy", MISSING], "Tester"), slicer, confirm=lambda q: questions.append(q) or True
    )
    assert outcome.via == "slicer.util.pip_install" and outcome.installed == (MISSING,)
    assert len(questions) == 1 and MISSING in questions[0]
    ((arguments, constraints),) = slicer.calls
    assert arguments.startswith(f'"{MISSING}" -c "') and "numpy" not in arguments.split(" -c ")[0]
    assert f"numpy=={_version('numpy')}" in constraints.splitlines()


def _fake_packaging(monkeypatch, pip_ensure):
    module = types.ModuleType("slicer.packaging")
    module.pip_ensure = pip_ensure
    monkeypatch.setitem(sys.modules, "slicer.packaging", module)
    return module


def test_slicer_512_path_uses_pip_ensure_with_skip_list_and_constraints(monkeypatch):
    calls = []

    def pip_ensure(
        requirements,
        constraints=None,
        skip_packages=None,
        prompt_install=True,
        prompt_restart=True,
        requester=None,
        skip_in_testing=True,
        show_progress=True,
    ):
        calls.append(
            dict(
                requirements=[str(r) for r in requirements],
                constraints=Path(constraints).read_text(),
                skip_packages=skip_packages,
                prompt_install=prompt_install,
                prompt_restart=prompt_restart,
                requester=requester,
                show_progress=show_progress,
            )
        )

    _fake_packaging(monkeypatch, pip_ensure)
    slicer = FakeSlicer510()
    outcome = install(plan_install([MISSING], "Tester"), slicer, confirm=lambda q: True)
    assert outcome.via == "slicer.packaging" and slicer.calls == []  # 5.10 fallback not used
    (call,) = calls
    assert call["requirements"] == ["surely-not-installed-pkg-xyz<2,>=1.0"]
    assert {"torch", "torchvision", "simpleitk", "numpy", "vtk", "requests"} <= set(call["skip_packages"])
    assert f"numpy=={_version('numpy')}" in call["constraints"].splitlines()
    assert call["prompt_install"] is False and call["prompt_restart"] is True  # we asked already
    assert call["requester"] == "Tester" and call["show_progress"] is True


def test_an_older_pip_ensure_signature_gets_only_what_it_accepts(monkeypatch):
    calls = []
    _fake_packaging(monkeypatch, lambda requirements, requester=None: calls.append(requester))
    install(plan_install([MISSING], "Tester"), FakeSlicer510(), confirm=lambda q: True)
    assert calls == ["Tester"]


def test_declining_is_a_typed_calm_outcome_and_installs_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)
    slicer = FakeSlicer510()
    with pytest.raises(InstallDeclined) as declined:
        install(plan_install([MISSING], "Tester"), slicer, confirm=lambda q: False)
    assert slicer.calls == []
    assert declined.value.packages == [MISSING]
    assert "not installed" in declined.value.message and "error" not in declined.value.message.lower()


def test_nothing_missing_asks_nothing():
    asked = []
    outcome = install(plan_install(["numpy"], "Tester"), FakeSlicer510(), confirm=asked.append)
    assert asked == [] and outcome.installed == ()


def test_the_dependency_check_never_imports_torch():
    """The GUI process checks torch by metadata: importing it costs seconds and GPU memory there."""
    if _version("torch") is None:
        pytest.skip("torch is not installed here, so there is nothing that could be imported")
    requirements = ROOT / "DAPAtlasModule/Resources/requirements-inference.txt"
    code = (
        "import sys\n"
        "from AnatomyCommonLib import dependencies as d\n"
        f"r = d.read_requirements({str(requirements)!r})\n"
        "d.plan_install(r, 'x')\n"
        "d._ensure_torch(None, 'x', lambda question: True)\n"
        "try:\n"
        "    d.check_requirements(r, 'x', need_torch=True)\n"
        "except d.MissingDependencyError:\n"
        "    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_slicer_installer_is_none_where_slicer_has_no_packaging_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)
    monkeypatch.delitem(sys.modules, "slicer.pydeps", raising=False)
    monkeypatch.setattr(dependencies.importlib, "import_module", _no_module)
    assert dependencies.slicer_installer(FakeSlicer510()) is None


def _no_module(name):
    raise ImportError(name)


def test_self_tests_get_a_skip_reason_instead_of_an_install():
    assert dependencies.skip_reason(["numpy"], "Tester") is None
    reason = dependencies.skip_reason(["numpy", MISSING], "Tester")
    assert reason.startswith("skipped, a dependency is missing") and MISSING in reason
