"""The web app's file access: images are read only from inside the data folder, results written only
inside the output folder.

Every name that comes from the browser goes through :meth:`DataFolder.resolve`, which rejects
absolute paths, ``..`` components and symlinks that lead out of the folder, so a page (or anyone who
can reach the port) cannot make the server read other files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from AnatomyCommonLib.errors import AnatomyToolkitError, InputNotFoundError
from AnatomyCommonLib.image_io import SUPPORTED_SUFFIXES, image_suffix, read_volume
from AnatomyCommonLib.volume import Volume

#: Largest image file the app opens (a realistic 512 x 512 x 510 CT is about 250 MB as .nii.gz).
MAX_FILE_BYTES = 1 << 30


class PathOutsideFolderError(AnatomyToolkitError, PermissionError):
    """A requested file lies outside the folder the app may read or write."""


class FileTooLargeError(AnatomyToolkitError, ValueError):
    """A file is larger than the app accepts."""


@dataclass(frozen=True)
class DataFile:
    """One image file of the data folder, as the file chooser lists it."""

    name: str  # path relative to the data folder, with "/" separators
    size_bytes: int


def inside(root: Path, candidate: Path) -> bool:
    """True when ``candidate`` (resolved, symlinks followed) lies in ``root`` (resolved)."""
    root = root.resolve()
    candidate = candidate.resolve()
    return candidate == root or root in candidate.parents


class DataFolder:
    """A folder the app reads images from (``--data``)."""

    def __init__(self, root: str | os.PathLike, *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.root = Path(root).resolve()
        self.max_bytes = int(max_bytes)

    def resolve(self, name: str) -> Path:
        """The path of ``name`` (relative to the folder); PathOutsideFolderError when it leads out of it."""
        if not isinstance(name, str) or not name.strip():
            raise InputNotFoundError("Choose a file of the data folder.")
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts or "\x00" in name:
            raise PathOutsideFolderError(
                f"{name!r} is not a file name inside the data folder; choose one from the list."
            )
        path = self.root / relative
        if not inside(self.root, path):  # a symlink leading out of the folder
            raise PathOutsideFolderError(f"{name!r} leads outside the data folder; it is not opened.")
        if not path.is_file():
            raise InputNotFoundError(f"{name!r} is not a file in the data folder {self.root}.")
        size = path.stat().st_size
        if size > self.max_bytes:
            raise FileTooLargeError(
                f"{name!r} is {size / 1e6:.0f} MB, more than the {self.max_bytes / 1e6:.0f} MB the app opens."
            )
        return path

    def list_images(self, *, max_depth: int = 3) -> list[DataFile]:
        """Image files (by suffix) under the folder, sorted, at most ``max_depth`` folders deep."""
        if not self.root.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            depth = len(Path(dirpath).relative_to(self.root).parts)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and depth < max_depth)
            for filename in filenames:
                path = Path(dirpath) / filename
                if filename.startswith(".") or not _is_image_name(filename) or not inside(self.root, path):
                    continue
                found.append(DataFile(path.relative_to(self.root).as_posix(), path.stat().st_size))
        return sorted(found, key=lambda f: f.name)

    def read(self, name: str, *, label: bool = False) -> Volume:
        """Read an image of the folder (a label map when ``label``); typed errors say what is wrong."""
        path = self.resolve(name)
        if label:
            from AnatomyCommonLib.image_io import read_labelmap

            return read_labelmap(path, name=name)
        return read_volume(path, name=name)


def _is_image_name(filename: str) -> bool:
    try:
        return image_suffix(filename) in SUPPORTED_SUFFIXES
    except AnatomyToolkitError:
        return False


def output_path(output_root: str | os.PathLike, relative: str) -> Path:
    """A path inside the output folder (created); refuses anything that would lead out of it."""
    root = Path(output_root).resolve()
    path = root / relative
    if Path(relative).is_absolute() or ".." in Path(relative).parts or not inside(root, path):
        raise PathOutsideFolderError(f"{relative!r} is outside the output folder {root}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
