"""The before/after PNG of the post-processing: written atomically with the umask's mode."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from AnatomyCommonLib.errors import OutputExistsError
from AnatomyCommonLib.volume import Volume
from DAPAtlasLib.before_after_figure import render_before_after


def volumes():
    ct = Volume.from_geometry(np.full((12, 14, 16), -50.0, dtype=np.float32), spacing_mm=(1.5, 1.0, 2.0))
    before = np.zeros(ct.array.shape, dtype=np.uint8)
    before[3:9, 4:10, 5:11] = 5
    after = before.copy()
    after[3:5] = 0
    return ct, ct.with_array(before), ct.with_array(after)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_before_after_png_gets_the_umask_mode(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        out = render_before_after(tmp_path / "before_after.png", *volumes())
    finally:
        os.umask(old)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(out.stat().st_mode) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["before_after.png"]  # no temporary left


def test_an_existing_png_is_not_replaced(tmp_path):
    target = tmp_path / "before_after.png"
    target.write_bytes(b"mine")
    with pytest.raises(OutputExistsError):
        render_before_after(target, *volumes())
    assert target.read_bytes() == b"mine"
