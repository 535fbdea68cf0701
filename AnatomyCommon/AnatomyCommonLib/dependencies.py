"""Installing Python packages inside 3D Slicer: ask first, never replace Slicer's own packages.

Outside Slicer this module only checks what is installed (``missing_requirements``); the
``pyproject.toml`` extras install everything. Inside Slicer, :func:`ensure_requirements`
uses ``slicer.packaging.pip_ensure`` (Slicer >= 5.10) or falls back to asking with a dialog
and ``slicer.util.pip_install``. torch comes from Slicer's PyTorch extension, which picks
the CUDA build that matches the GPU.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from .errors import MissingDependencyError

#: Packages Slicer ships itself; installing another version would break Slicer.
SLICER_OWNED_PACKAGES = frozenset({"numpy", "simpleitk", "vtk", "pip", "setuptools", "requests"})

#: Packages Slicer's PyTorch extension installs (it picks the CUDA build); pip must not replace them.
PYTORCH_EXTENSION_PACKAGES = frozenset({"torch", "torchvision"})

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


def ensure_requirements(requirements: list[str], requester: str, *, need_torch: bool = False) -> None:
    """Inside Slicer: install what is missing after asking the user; raise if they decline.

    Must run on the main thread (it may show dialogs). Outside Slicer it raises
    :class:`MissingDependencyError` naming the pip command to run.
    """
    unsatisfied = missing_requirements(requirements)
    missing = installable_requirements(unsatisfied)
    try:
        import slicer
    except ImportError:
        slicer = None
    if slicer is None or not hasattr(slicer, "app"):
        if unsatisfied:  # outside Slicer, pip installs torch too
            raise MissingDependencyError(
                f"{requester} needs {', '.join(unsatisfied)}; install with: pip install "
                + " ".join(f'"{m}"' for m in unsatisfied)
            )
        return
    if need_torch:
        _ensure_torch(slicer, requester)
        wrong_torch = [r for r in missing_requirements(requirements) if r not in missing]
        if wrong_torch:
            raise MissingDependencyError(
                f"{requester} needs {', '.join(wrong_torch)}; the installed PyTorch does not match. "
                "Reinstall it from the PyTorch module (Utilities > PyTorch Utils) and restart Slicer."
            )
    if not missing:
        return
    packaging = getattr(slicer, "packaging", None)
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        packaging.pip_ensure(missing, requester=requester, skip_packages=sorted(SLICER_OWNED_PACKAGES))
        return
    if not slicer.util.confirmOkCancelDisplay(
        f"{requester} needs these Python packages, which are not installed yet:\n\n"
        + "\n".join(missing)
        + "\n\nInstall them now? This can take several minutes.",
        windowTitle=f"{requester}: install dependencies",
    ):
        raise MissingDependencyError(f"{requester} cannot run without: {', '.join(missing)}")
    with slicer.util.WaitCursor():
        slicer.util.pip_install(missing)


def _ensure_torch(slicer, requester: str) -> None:
    try:
        import torch  # noqa: F401

        return
    except ImportError:
        pass
    try:
        import PyTorchUtils
    except ImportError as error:
        raise MissingDependencyError(
            f"{requester} needs PyTorch: install the 'PyTorch' extension from the Extensions Manager "
            "and restart Slicer."
        ) from error
    logic = PyTorchUtils.PyTorchUtilsLogic()
    if not logic.torchInstalled():
        if not slicer.util.confirmOkCancelDisplay(
            f"{requester} needs PyTorch. Install it now (about 1-3 GB download)?",
            windowTitle=f"{requester}: install PyTorch",
        ):
            raise MissingDependencyError(f"{requester} cannot run without PyTorch.")
        if logic.installTorch(askConfirmation=False) is None:
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
