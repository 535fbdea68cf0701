"""Module logic checks its packages without asking: a typed error names what is missing."""

from __future__ import annotations

import importlib.metadata

import pytest

from AnatomyCommonLib.dependencies import check_requirements
from AnatomyCommonLib.errors import MissingDependencyError


def test_installed_requirements_pass():
    version = importlib.metadata.version("numpy")
    check_requirements([f"numpy>={version}", "numpy"], "tester")


def test_a_missing_package_is_named_with_the_pip_command():
    with pytest.raises(MissingDependencyError) as caught:
        check_requirements(["numpy", "surely-not-installed-pkg-xyz>=1.0"], "Tester")
    message = str(caught.value)
    assert message.startswith("Tester needs surely-not-installed-pkg-xyz>=1.0")
    assert 'pip install "surely-not-installed-pkg-xyz>=1.0"' in message and "numpy" not in message


def test_a_too_old_version_counts_as_missing_but_slicer_owned_packages_are_never_asked_for():
    with pytest.raises(MissingDependencyError, match="pytest>=999"):
        check_requirements(["pytest>=999"], "Tester")
    check_requirements(["numpy>=999"], "Tester")  # Slicer ships numpy: never reinstalled
