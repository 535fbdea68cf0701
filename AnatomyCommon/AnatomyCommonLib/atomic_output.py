"""Atomic output files and folders that get the permissions a plain ``open()`` would give them.

Outputs are written to a temporary file (or folder) next to the target and renamed into place
only when complete, so a target is either whole or untouched. ``tempfile.mkstemp`` creates files
with mode 0600 and ``mkdtemp`` folders with 0700 (private by design); renamed as they are, the
user's label maps, PNGs and model folders would be unreadable for their group and for other
tools. Here the temporary gets ``0o666 & ~umask`` (files) or ``0o777 & ~umask`` (folders) before
it is renamed, exactly what ``open()`` / ``mkdir()`` would have created.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output_file", "current_umask", "output_mode", "staging_folder"]


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    # os.umask can only be read by setting it; between the two calls another thread (Slicer runs
    # jobs in threads) would create files with the temporary umask. Linux reports it in /proc.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_mode(*, folder: bool = False) -> int:
    """The mode ``open()`` (file) or ``mkdir()`` (folder) would give a new output now."""
    return (0o777 if folder else 0o666) & ~current_umask()


@contextmanager
def atomic_output_file(target: str | os.PathLike, *, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path next to ``target``; on success rename it to ``target``.

    ``suffix`` keeps the extension writers look at (``.nii.gz``, ``.png``). The temporary gets
    the umask's mode before the rename; on any error it is removed and ``target`` is untouched.
    The caller checks whether ``target`` may be replaced (before writing and, if it matters,
    again inside the block).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".partial{suffix}", dir=target.parent
    )
    os.close(handle)
    try:
        yield temporary
        # set on what the writer left: some writers (SimpleITK) replace the file we created
        os.chmod(temporary, output_mode())
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def staging_folder(target: str | os.PathLike, *, label: str = "staging") -> Path:
    """A new empty folder next to ``target`` with the umask's folder mode, to fill and rename.

    The caller renames it with ``os.replace(staging, target)`` when complete and removes it
    (``shutil.rmtree``) on failure.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{label}-", dir=target.parent))
    os.chmod(staging, output_mode(folder=True))
    return staging
