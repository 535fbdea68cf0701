"""Refuse truncated NIfTI files before they are read.

ITK reads a ``.nii``/``.nii.gz`` whose data stops early without an error and fills the missing
voxels with zeros (half a CT silently becomes water). The header says how many bytes the
data must hold (``vox_offset + prod(dim) * bitpix / 8``); this module compares that with the
bytes present: the file size for ``.nii``, the decompressed stream length for ``.nii.gz``.

For ``.nii.gz`` the gzip trailer's ISIZE (stream length modulo 2**32) is compared first, which
costs nothing; only when it disagrees (multi-member gzip, or a damaged file) the stream is
decompressed and counted.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

from .errors import UnsupportedFormatError

_CHUNK = 1 << 22


def _expected_nifti_bytes(header: bytes, label: str) -> int:
    """Bytes a NIfTI-1 or NIfTI-2 file needs, from its header (``UnsupportedFormatError`` if none)."""
    for order in ("<", ">"):
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348:
            dims = struct.unpack(order + "8h", header[40:56])
            bitpix = struct.unpack(order + "h", header[72:74])[0]
            vox_offset = int(struct.unpack(order + "f", header[108:112])[0])
            header_size = 348
            break
        if len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540:
            bitpix = struct.unpack(order + "h", header[14:16])[0]
            dims = struct.unpack(order + "8q", header[16:80])
            vox_offset = struct.unpack(order + "q", header[168:176])[0]
            header_size = 540
            break
    else:
        raise UnsupportedFormatError(
            f"{label}: the NIfTI header is missing or damaged (the file is shorter than a header or "
            "does not start with one). Export the image again."
        )
    ndim = dims[0]
    if not 1 <= ndim <= 7 or bitpix <= 0 or any(d < 0 for d in dims[1 : ndim + 1]):
        raise UnsupportedFormatError(
            f"{label}: the NIfTI header has invalid dimensions {dims} or bitpix {bitpix}."
        )
    voxels = 1
    for size in dims[1 : ndim + 1]:
        voxels *= max(int(size), 1)
    return max(vox_offset, header_size) + voxels * bitpix // 8


def _gzip_stream_length(path: Path, label: str) -> int:
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
    except (EOFError, OSError, zlib.error) as error:
        raise UnsupportedFormatError(
            f"{label}: the compressed file is truncated or damaged ({error}); after {total} bytes "
            "the data stops. Copy or export the file again."
        ) from error
    return total


def check_nifti_complete(path: str | os.PathLike, *, name: str | None = None) -> None:
    """Raise :class:`UnsupportedFormatError` when a NIfTI file holds fewer bytes than its header says."""
    path = Path(path)
    label = name or path.name
    compressed = path.name.lower().endswith(".gz")
    try:
        if compressed:
            with gzip.open(path, "rb") as stream:
                header = stream.read(540)
        else:
            with open(path, "rb") as handle:
                header = handle.read(540)
    except (EOFError, OSError, zlib.error) as error:
        raise UnsupportedFormatError(
            f"{label}: could not be read as a NIfTI image ({error}). "
            "Is the file complete and really in that format?"
        ) from error
    expected = _expected_nifti_bytes(header, label)
    if compressed:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            handle.seek(max(0, size - 4))
            trailer = handle.read(4)
        if len(trailer) == 4 and struct.unpack("<I", trailer)[0] == expected % (1 << 32):
            return
        present = _gzip_stream_length(path, label)
    else:
        present = path.stat().st_size
    if present < expected:
        raise UnsupportedFormatError(
            f"{label} is truncated: its header describes {expected} bytes of data but the file holds "
            f"{present} ({100 * present / max(expected, 1):.0f} %). Reading it would fill the missing "
            "voxels with zeros; copy or export the file again."
        )
