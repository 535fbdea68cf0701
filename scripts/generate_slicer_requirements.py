"""Generate the ``Resources/requirements*.txt`` files used inside 3D Slicer from ``pyproject.toml``.

``pyproject.toml`` is the single source of the dependency list; the modules read these generated
files (``AnatomyCommonLib.dependencies.read_requirements``) to install what is missing inside Slicer.
Run ``python scripts/generate_slicer_requirements.py`` after editing the dependencies in
``pyproject.toml``; ``--check`` only reports drift (exit code 1), as the test suite does.

Mapping rule, from ``pyproject.toml`` to a Slicer requirements file:

* Each file lists the packages of the extras named in :data:`TARGETS` (extras that name
  ``slicer-anatomy-toolkit[...]`` are expanded recursively) plus the core dependencies it names
  explicitly (the core list also holds tooling-only packages such as matplotlib and tqdm).
* Packages Slicer ships itself (numpy, SimpleITK, vtk, ...) are dropped: they are never reinstalled.
* torch and torchvision are pinned exactly (``==``) for the tooling environment, whose build lies on
  disk; inside Slicer the PyTorch extension picks the build that matches the GPU, so there they get
  the floor/ceiling range of :data:`SLICER_TORCH_RANGES`, which must contain the pinned version.
  Any other exact pin is an error: a Slicer requirement is always a range.
* Environment markers and the order of first appearance are kept; duplicates are dropped.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "slicer-anatomy-toolkit"

#: Slicer's own packages (mirrors AnatomyCommonLib.dependencies.SLICER_OWNED_PACKAGES).
SLICER_OWNED = frozenset({"numpy", "simpleitk", "vtk", "pip", "setuptools", "requests"})

#: The range Slicer accepts for the packages the PyTorch extension installs.
SLICER_TORCH_RANGES = {"torch": ">=2.4,<3", "torchvision": ">=0.19,<1"}

#: file (relative to the repository root) -> (who installs it, core packages, extras)
TARGETS = {
    "DAPAtlasModule/Resources/requirements-postprocess.txt": (
        "the DAP Atlas post-processing and statistics",
        ["connected-components-3d", "scipy"],
        [],
    ),
    "DAPAtlasModule/Resources/requirements-inference.txt": (
        'the DAP Atlas "Segment" button',
        [],
        ["dap"],
    ),
    "LIMIS/Resources/requirements-limis.txt": (
        "the LIMIS module",
        ["scipy"],
        ["limis"],
    ),
    "CCMetricsModule/Resources/requirements.txt": (
        "CC-Metrics",
        ["connected-components-3d", "scipy"],
        [],
    ),
}

_NAME = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?$")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(requirement: str) -> tuple[str, str, str, str]:
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"pyproject.toml: cannot parse requirement {requirement!r}")
    name, extras, specifier, marker = match.groups()
    return name, extras or "", specifier.strip(), (marker or "").strip()


def _expand_extra(extras: dict[str, list[str]], extra: str, seen: set[str]) -> list[str]:
    if extra not in extras:
        raise KeyError(f"pyproject.toml has no extra {extra!r}")
    out = []
    for requirement in extras[extra]:
        name, inner, _, _ = _split(requirement)
        if _normal(name) == PROJECT:
            for sub in inner.strip("[]").split(","):
                if sub.strip() and sub.strip() not in seen:
                    seen.add(sub.strip())
                    out += _expand_extra(extras, sub.strip(), seen)
        else:
            out.append(requirement)
    return out


def slicer_requirement(requirement: str) -> str | None:
    """The Slicer form of one pyproject requirement (None: Slicer owns the package)."""
    name, extras, specifier, marker = _split(requirement)
    key = _normal(name)
    if key in SLICER_OWNED:
        return None
    if key in SLICER_TORCH_RANGES:
        specifier = SLICER_TORCH_RANGES[key]
    elif "==" in specifier:
        raise ValueError(f"{name} is pinned ({specifier}); Slicer requirements must be ranges")
    return f"{name}{extras}{specifier}" + (f" {marker}" if marker else "")


def generate(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """Relative path -> the content each Slicer requirements file must have."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    core = {_normal(_split(r)[0]): r for r in project["dependencies"]}
    extras = project.get("optional-dependencies", {})
    contents = {}
    for path, (user, core_names, extra_names) in TARGETS.items():
        requirements = []
        for name in core_names:
            if _normal(name) not in core:
                raise KeyError(f"{path}: {name!r} is not a core dependency in pyproject.toml")
            requirements.append(core[_normal(name)])
        for extra in extra_names:
            requirements += _expand_extra(extras, extra, {extra})
        lines, names = [], set()
        for requirement in requirements:
            line = slicer_requirement(requirement)
            if line is not None and _normal(_split(line)[0]) not in names:
                names.add(_normal(_split(line)[0]))
                lines.append(line)
        header = (
            "# GENERATED by scripts/generate_slicer_requirements.py from pyproject.toml: do not edit.\n"
            f"# Python packages for {user}, installed inside Slicer on first use after asking.\n"
            "# numpy, SimpleITK and VTK are Slicer's own and are never reinstalled.\n"
        )
        if names & set(SLICER_TORCH_RANGES):
            header += "# torch and torchvision come from the PyTorch extension; accepted ranges below.\n"
        contents[path] = header + "\n".join(lines) + "\n"
    return contents


def drifted(root: Path = ROOT) -> list[str]:
    """Files whose content differs from what :func:`generate` produces."""
    return [
        path
        for path, text in generate(root / "pyproject.toml").items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ (exit 1)")
    args = parser.parse_args(argv)
    stale = drifted()
    if args.check:
        for path in stale:
            print(f"out of date: {path}")
        return 1 if stale else 0
    for path, text in generate().items():
        if path in stale:
            (ROOT / path).write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
