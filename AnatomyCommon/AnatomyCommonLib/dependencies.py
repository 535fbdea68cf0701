"""Installing Python packages inside 3D Slicer: ask first, never replace Slicer's own packages.

Outside Slicer this module only checks what is installed (``missing_requirements``); the
``pyproject.toml`` extras install everything. Inside Slicer the decisions are made here, in plain
Python (:func:`plan_install`): which requirements pip installs, which packages are protected
(Slicer's numpy, SimpleITK, VTK, requests; the PyTorch extension's torch and torchvision) and the
constraints file that pins every protected package to its installed version, so that no transitive
requirement (nnunetv2 -> SimpleITK, torch, requests ...) can replace it. :func:`install` then runs
the plan through Slicer's installer: ``slicer.packaging.pip_ensure`` where it exists (5.12+:
progress dialog, restart prompt) and ``slicer.util.pip_install`` on 5.10. Checking never imports
the packages (``importlib.metadata``/``find_spec``): the GUI process never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MissingDependencyError

#: Packages Slicer ships itself; installing another version would break Slicer.
SLICER_OWNED_PACKAGES = frozenset({"numpy", "simpleitk", "vtk", "pip", "setuptools", "requests"})

#: Packages Slicer's PyTorch extension installs (it picks the CUDA build); pip must not replace them.
PYTORCH_EXTENSION_PACKAGES = frozenset({"torch", "torchvision"})

#: Never installed or replaced by this installer; pinned to their installed version while installing.
PROTECTED_PACKAGES = SLICER_OWNED_PACKAGES | PYTORCH_EXTENSION_PACKAGES

# Distribution name -> top-level import names, for the restart check (names that differ only).
_IMPORT_NAMES = {"connected-components-3d": ("cc3d",), "scikit-image": ("skimage",), "pillow": ("PIL",)}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*([^;#]*)")


def read_requirements(path: str | Path) -> list[str]:
    """Requirement lines of a requirements.txt (comments and blanks dropped)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _version_satisfies(version: str, specifier: str) -> bool:
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:  # packaging is present wherever pip is; be lenient otherwise
        return True
    return not specifier.strip() or SpecifierSet(specifier.replace(" ", "")).contains(
        version, prereleases=True
    )


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements that are not installed in a version that satisfies them."""
    missing = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if not match:
            continue
        name, _extras, specifier = match.groups()
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if not _version_satisfies(version, specifier or ""):
            missing.append(requirement)
    return missing


def installable_requirements(requirements: list[str]) -> list[str]:
    """Requirements pip may install: minus Slicer's own packages and those of the PyTorch extension."""
    kept = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match and match.group(1).lower() not in SLICER_OWNED_PACKAGES | PYTORCH_EXTENSION_PACKAGES:
            kept.append(requirement)
    return kept


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str | None:
    match = _REQUIREMENT.match(requirement)
    return _canonical(match.group(1)) if match else None


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (metadata only: nothing is imported)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class InstallDeclined(MissingDependencyError):  # noqa: N818 (an outcome, not a failure)
    """The user chose not to install the packages now: nothing changed; the action is not run.

    Not a failure: the widget shows :attr:`message` calmly (a status line or an information box),
    never as an error.
    """

    def __init__(self, requester: str, packages: list[str]) -> None:
        self.requester = requester
        self.packages = list(packages)
        self.message = (
            f"{requester} was not run: it needs {', '.join(packages)}, which were not installed. "
            "Run it again to install them."
        )
        super().__init__(self.message)


@dataclass(frozen=True)
class InstallPlan:
    """What an install would do, decided without touching pip.

    ``install``: requirement lines pip is asked for. ``protected``: protected package -> installed
    version, pinned in the constraints file. ``blocked``: unsatisfied torch/torchvision requirements,
    which this installer never installs (they come from the PyTorch extension). Slicer's own packages
    (numpy, SimpleITK, vtk, requests) are never asked for: the installed version is kept.
    ``restart_needed``: packages to install that are already imported in this session (the old
    version stays loaded until Slicer restarts).
    """

    requester: str
    install: tuple[str, ...]
    protected: dict[str, str] = field(default_factory=dict)
    blocked: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()

    @property
    def constraints_text(self) -> str:
        """A pip constraints file: every installed protected package pinned to its version."""
        lines = [f"{name}=={version}" for name, version in sorted(self.protected.items())]
        return "".join(line + "\n" for line in lines)

    def write_constraints(self, folder: str | Path) -> Path:
        path = Path(folder) / "anatomy-toolkit-constraints.txt"
        path.write_text(self.constraints_text, encoding="utf-8")
        return path

    @property
    def question(self) -> str:
        """The text of the confirmation dialog."""
        text = (
            f"{self.requester} needs these Python packages, which are not installed yet:\n\n"
            + "\n".join(self.install)
            + "\n\nInstall them now? This can take several minutes."
        )
        if self.protected:
            text += "\nSlicer's own packages are kept as they are: " + ", ".join(sorted(self.protected)) + "."
        if self.restart_needed:
            text += (
                "\nSlicer must be restarted afterwards ("
                + ", ".join(self.restart_needed)
                + " already loaded)."
            )
        return text


def plan_install(requirements: list[str], requester: str) -> InstallPlan:
    """Decide what to install for ``requirements``: the missing ones except protected packages."""
    unsatisfied = missing_requirements(requirements)
    install = tuple(r for r in unsatisfied if _requirement_name(r) not in PROTECTED_PACKAGES)
    # torch of the wrong version cannot be fixed by pip here; Slicer's own packages are never asked for
    blocked = tuple(r for r in unsatisfied if _requirement_name(r) in PYTORCH_EXTENSION_PACKAGES)
    protected = {}
    for name in sorted(PROTECTED_PACKAGES - {"pip", "setuptools"}):
        version = installed_version(name)
        if version is not None:
            protected[name] = version
    loaded = []
    for requirement in install:
        name = _requirement_name(requirement)
        modules = _IMPORT_NAMES.get(name, (name.replace("-", "_"),))
        if installed_version(name) is not None and any(m in sys.modules for m in modules):
            loaded.append(name)
    return InstallPlan(requester, install, protected, blocked, tuple(loaded))


def slicer_installer(slicer):
    """Slicer's package installer module with ``pip_ensure`` (5.12+), or None (5.10: pip_install).

    Imported explicitly: ``slicer.packaging`` is not loaded at Slicer's startup, so looking for the
    attribute alone would always miss it. Later releases call it ``slicer.pydeps``.
    """
    for module_name in ("slicer.packaging", "slicer.pydeps"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if callable(getattr(module, "pip_ensure", None)):
            return module
    return None


def _accepted_keywords(function, keywords: dict) -> dict:
    """The keywords ``function`` accepts (the installer's signature differs between releases)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return keywords
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return keywords
    return {key: value for key, value in keywords.items() if key in parameters}


@dataclass(frozen=True)
class InstallOutcome:
    """What :func:`install` did: ``installed`` packages and whether Slicer must restart."""

    installed: tuple[str, ...]
    restart_needed: bool
    via: str  # "slicer.packaging", "slicer.pydeps", "slicer.util.pip_install" or "nothing to do"


def install(
    plan: InstallPlan,
    slicer,
    *,
    confirm: Callable[[str], bool],
    progress: Callable[[str], None] = lambda message: None,
) -> InstallOutcome:
    """Run ``plan`` inside Slicer after ``confirm(plan.question)`` says yes; raise InstallDeclined if not.

    5.12+: ``pip_ensure`` of Slicer's installer (it shows its own progress and restart prompt; asked
    not to ask again). 5.10: ``slicer.util.pip_install`` with the constraints file. Both get the
    constraints file; ``pip_ensure`` also gets the protected names as ``skip_packages``.
    """
    if plan.blocked:
        raise MissingDependencyError(
            f"{plan.requester} needs {', '.join(plan.blocked)}, which comes with Slicer or its PyTorch "
            "extension and is never replaced here; update it there (PyTorch Utils for torch) and restart."
        )
    if not plan.install:
        return InstallOutcome((), False, "nothing to do")
    if not confirm(plan.question):
        raise InstallDeclined(plan.requester, list(plan.install))
    with tempfile.TemporaryDirectory(prefix="anatomy-toolkit-pip-") as folder:
        constraints = str(plan.write_constraints(folder))
        installer = slicer_installer(slicer)
        progress(f"Installing {', '.join(plan.install)} ...")
        if installer is not None:
            from packaging.requirements import Requirement

            keywords = _accepted_keywords(
                installer.pip_ensure,
                {
                    "constraints": constraints,
                    "skip_packages": sorted(PROTECTED_PACKAGES),
                    "prompt_install": False,  # we asked already
                    "prompt_restart": True,
                    "requester": plan.requester,
                    "show_progress": True,
                },
            )
            installer.pip_ensure([Requirement(r) for r in plan.install], **keywords)
            via = installer.__name__
        else:
            slicer.util.pip_install(" ".join(f'"{r}"' for r in plan.install) + f' -c "{constraints}"')
            via = "slicer.util.pip_install"
    progress("Installed " + ", ".join(plan.install) + ".")
    return InstallOutcome(plan.install, bool(plan.restart_needed), via)


def ensure_requirements(
    requirements: list[str],
    requester: str,
    *,
    need_torch: bool = False,
    confirm: Callable[[str], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> InstallOutcome:
    """Inside Slicer: install what is missing after asking; InstallDeclined if the user says no.

    Must run on the main thread (dialogs). ``confirm``/``progress`` default to Slicer's dialog and
    status bar; on 5.10, when a restart is needed, this asks to restart. Outside Slicer it raises
    :class:`MissingDependencyError` naming the pip command to run.
    """
    try:
        import slicer
    except ImportError:
        slicer = None
    if slicer is None or not hasattr(slicer, "app"):
        unsatisfied = missing_requirements(requirements)
        if unsatisfied:  # outside Slicer, pip installs torch too
            raise MissingDependencyError(
                f"{requester} needs {', '.join(unsatisfied)}; install with: pip install "
                + " ".join(f'"{m}"' for m in unsatisfied)
            )
        return InstallOutcome((), False, "nothing to do")
    if confirm is None:

        def confirm(question: str) -> bool:
            return slicer.util.confirmOkCancelDisplay(question, windowTitle=f"{requester}: install packages")

    if progress is None:

        def progress(message: str) -> None:
            slicer.util.showStatusMessage(message, 3000)
            slicer.app.processEvents()

    if need_torch:
        _ensure_torch(slicer, requester, confirm)
    outcome = install(plan_install(requirements, requester), slicer, confirm=confirm, progress=progress)
    # pip_ensure (5.12+) prompts for the restart itself; on 5.10 we ask
    if (
        outcome.restart_needed
        and outcome.via == "slicer.util.pip_install"
        and slicer.util.confirmYesNoDisplay(
            f"{requester}: packages that were already loaded were updated. Restart Slicer now?"
        )
    ):
        slicer.util.restart()
    return outcome


def _ensure_torch(slicer, requester: str, confirm: Callable[[str], bool]) -> None:
    """Torch through the PyTorch extension; checked by metadata, never imported here."""
    if importlib.util.find_spec("torch") is not None:
        return
    try:
        import PyTorchUtils
    except ImportError as error:
        raise MissingDependencyError(
            f"{requester} needs PyTorch: install the 'PyTorch' extension from the Extensions Manager "
            "and restart Slicer."
        ) from error
    if not confirm(f"{requester} needs PyTorch. Install it now (about 1-3 GB download)?"):
        raise InstallDeclined(requester, ["torch"])
    if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
        raise MissingDependencyError("PyTorch installation failed; see the Python console for details.")


def check_requirements(requirements: list[str], requester: str, *, need_torch: bool = False) -> None:
    """Raise :class:`MissingDependencyError` naming what is missing; never asks, never installs.

    For module logic (which opens no dialogs): the widget calls :func:`ensure_requirements` first,
    which asks the user and installs.
    """
    import importlib.util

    if need_torch and importlib.util.find_spec("torch") is None:
        raise MissingDependencyError(
            f"{requester} needs PyTorch: install the 'PyTorch' extension from the Extensions Manager "
            "(inside Slicer) or pip install torch."
        )
    missing = installable_requirements(missing_requirements(requirements))
    if missing:
        raise MissingDependencyError(
            f"{requester} needs {', '.join(missing)}; install with: pip install "
            + " ".join(f'"{m}"' for m in missing)
        )


def skip_reason(requirements: list[str], requester: str, *, need_torch: bool = False) -> str | None:
    """Why a self-test cannot run here (what is missing and how to install it), or None.

    Module self-tests call this and skip instead of installing: a test run never changes the
    Python environment.
    """
    try:
        check_requirements(requirements, requester, need_torch=need_torch)
    except MissingDependencyError as error:
        return f"skipped, a dependency is missing: {error}"
    return None
