"""Fixtures shared by the LIMIS interaction tests (helpers without pytest live in limis_session_fixtures)."""

from __future__ import annotations

import pytest

from AnatomyCommonLib.anatomy.phantom import make_phantom


@pytest.fixture(scope="module")
def tiny_phantom():
    """The 6 mm phantom without lesions (LPS, so a display slice is the array slice), one per module."""
    return make_phantom("tiny", seed=0, orientation="LPS", n_lesions=0)
