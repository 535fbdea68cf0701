"""Outputs that appear only when everything succeeded.

Every output is first written to a hidden temporary file beside its target; when the block ends
without an error, the files are moved into place (``os.replace``, atomic per file on one file
system). When anything fails (a computation, a renderer, a write), the temporary files and the
folders created for them are removed, so the user finds either all outputs or none.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from AnatomyCommonLib.atomic_output import output_mode
from AnatomyCommonLib.image_io import SUPPORTED_SUFFIXES, image_suffix


class StagedOutputs:
    """Context manager: ``with StagedOutputs() as staged: write(staged.path(target))``."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        self._created_dirs: list[Path] = []

    def path(self, target: str | os.PathLike) -> Path:
        """A temporary path beside ``target`` (same suffix, so writers pick the same format)."""
        target = Path(target)
        self._make_parent(target.parent)
        name = target.name
        suffix = image_suffix(name) if name.lower().endswith(SUPPORTED_SUFFIXES) else target.suffix
        handle, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=f".partial{suffix}", dir=target.parent)
        os.close(handle)
        os.chmod(tmp_name, output_mode())  # mkstemp makes 0600; a user output gets the umask's mode
        self._pending.append((Path(tmp_name), target))
        return Path(tmp_name)

    def adopt(self, written: str | os.PathLike, target: str | os.PathLike) -> None:
        """Move a file a writer made beside a staged path (e.g. a further PNG page) to ``target`` too."""
        self._pending.append((Path(written), Path(target)))

    def _make_parent(self, folder: Path) -> None:
        missing = []
        probe = folder
        while not probe.exists():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        folder.mkdir(parents=True, exist_ok=True)
        self._created_dirs.extend(reversed(missing))

    def commit(self) -> list[Path]:
        """Move every staged file into place; on a failure, undo the moves done so far."""
        moved: list[Path] = []
        try:
            for tmp, target in self._pending:
                os.replace(tmp, target)
                moved.append(target)
        except BaseException:
            for target in moved:
                target.unlink(missing_ok=True)
            self.discard()
            raise
        self._pending = []
        return moved

    def discard(self) -> None:
        """Remove the temporary files and the folders created for them (if left empty)."""
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)
        self._pending = []
        for folder in reversed(self._created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._created_dirs = []

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
