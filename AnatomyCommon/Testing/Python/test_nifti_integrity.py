"""Truncated NIfTI files are refused instead of being read with zero-filled voxels."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from AnatomyCommonLib.errors import UnsupportedFormatError
from AnatomyCommonLib.image_io import read_volume, write_volume
from AnatomyCommonLib.volume import Volume


def _volume() -> Volume:
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1500, size=(30, 40, 50), dtype=np.int16)
    return Volume.from_geometry(array, spacing_mm=(0.8, 0.9, 2.5))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_a_truncated_nifti_is_refused_with_the_byte_counts(tmp_path, suffix, keep):
    path = write_volume(_volume(), tmp_path / f"ct{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UnsupportedFormatError, match="truncated"):
        read_volume(path)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_a_complete_nifti_reads_back_unchanged(tmp_path, suffix):
    volume = _volume()
    path = write_volume(volume, tmp_path / f"ct{suffix}")
    assert np.array_equal(read_volume(path).array, volume.array)


def test_a_multi_member_gzip_nifti_is_counted_in_full_and_accepted(tmp_path):
    # bgzip-style files hold several gzip members: the last trailer's ISIZE covers only the last
    # member, so the check must fall back to counting the whole stream.
    volume = _volume()
    raw = write_volume(volume, tmp_path / "ct.nii").read_bytes()
    half = len(raw) // 2
    path = tmp_path / "multi.nii.gz"
    path.write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]))
    assert np.array_equal(read_volume(path).array, volume.array)
    # and the same file cut inside its second member is refused
    damaged = tmp_path / "multi_cut.nii.gz"
    damaged.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(UnsupportedFormatError, match=r"truncated|damaged"):
        read_volume(damaged)


def test_a_truncated_nifti2_file_is_refused(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    array = np.arange(20 * 20 * 20, dtype=np.float32).reshape(20, 20, 20)
    path = tmp_path / "two.nii"
    nibabel.save(nibabel.Nifti2Image(array, np.eye(4)), str(path))
    expected = 544 + array.nbytes  # NIfTI-2 header (540) + extension flag (4) + data, by hand
    assert path.stat().st_size == expected
    path.write_bytes(path.read_bytes()[: expected - 8])
    with pytest.raises(UnsupportedFormatError, match="truncated"):
        read_volume(path)


def test_a_file_without_a_nifti_header_is_refused(tmp_path):
    path = tmp_path / "junk.nii.gz"
    path.write_bytes(gzip.compress(b"not an image" * 10))
    with pytest.raises(UnsupportedFormatError):
        read_volume(path)
