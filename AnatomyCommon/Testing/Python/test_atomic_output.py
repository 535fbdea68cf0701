"""Outputs get the mode a plain open()/mkdir() would give them: the umask applies, not 0600/0700."""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pytest

from AnatomyCommonLib.atomic_output import atomic_output_file, current_umask, staging_folder
from AnatomyCommonLib.errors import OutputExistsError
from AnatomyCommonLib.image_io import write_volume
from AnatomyCommonLib.rendering import render_orthogonal_views
from AnatomyCommonLib.volume import Volume

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def plain_file_mode(folder) -> int:
    """The oracle: what open() gives a new file under the current umask."""
    probe = folder / "probe-open"
    probe.write_bytes(b"")
    return mode(probe)


def small_volume() -> Volume:
    array = np.zeros((6, 7, 8), dtype=np.uint8)
    array[2:4, 2:5, 3:6] = 1
    return Volume.from_geometry(array, spacing_mm=(1.0, 1.5, 2.0))


def test_current_umask_reads_the_process_umask_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask  # unchanged by reading


def test_write_volume_gives_the_umask_mode(umask, tmp_path):
    out = write_volume(small_volume(), tmp_path / "labels.nii.gz")
    assert mode(out) == 0o666 & ~umask == plain_file_mode(tmp_path)
    if umask == 0o022:
        assert mode(out) == 0o644
    if umask == 0o077:
        assert mode(out) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_overview_png_gives_the_umask_mode(umask, tmp_path):
    volume = small_volume()
    out = render_orthogonal_views(tmp_path / "overview.png", volume, labels=volume)
    assert mode(out) == 0o666 & ~umask


def test_staging_folder_gets_the_mkdir_mode(umask, tmp_path):
    staging = staging_folder(tmp_path / "model")
    assert staging.parent == tmp_path and staging.is_dir() and not any(staging.iterdir())
    assert mode(staging) == 0o777 & ~umask
    if umask == 0o022:
        assert mode(staging) == 0o755


def test_a_failed_write_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(OutputExistsError), atomic_output_file(target, suffix=".png") as temporary:
        assert temporary.endswith(".png")
        with open(temporary, "wb") as handle:
            handle.write(b"half")
        raise OutputExistsError("stop")
    assert list(tmp_path.iterdir()) == []
