"""The DAP Atlas models in the shared weights manager, and turning a model name into a runnable folder.

``models.json`` (beside this file) lists the two released nnU-Net v1 models, ``dap-atlas-v2``
(recommended) and ``dap-atlas-v1``, with every file of their trainer folders. The authors publish
no checksums or sizes, so those stay ``null`` and the weights manager pins the SHA256 of each file
when it is installed (``models verify`` then checks against that). Nothing is downloaded: the
user downloads the folder from the authors' Google Drive and installs it from the folder or a zip
(``python -m DAPAtlasLib models install dap-atlas-v2 <folder or zip>``), or registers a shared
folder with ``models use-folder`` (offline sites).

:func:`resolve_model` accepts a manifest name, an nnU-Net v2 results folder or a v1 trainer
folder; v1 models are converted once (:mod:`.model_conversion`) into
``<weights cache>/converted/`` and reused from there.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from AnatomyCommonLib.weights import WeightsManager

from .exceptions import InputNotFoundError, OutputExistsError, UnsupportedFormatError
from .model_conversion import (
    InferenceSettings,
    convert_v1_to_v2,
    default_v1_checkpoint,
    is_v1_model_folder,
    is_v2_model_folder,
    read_inference_settings,
    settings_for_v1_folder,
)

log = logging.getLogger(__name__)

MANIFEST_PATH = Path(__file__).with_name("models.json")
DEFAULT_MODEL = "dap-atlas-v2"
CONVERTED_SUBFOLDER = "converted"


def weights_manager(cache_dir: str | Path | None = None) -> WeightsManager:
    """The weights manager for the DAP manifest (cache: ``$SLICER_ANATOMY_WEIGHTS_DIR`` or ~/.cache)."""
    return WeightsManager([MANIFEST_PATH], cache_dir=cache_dir)


def install_hint(name: str = DEFAULT_MODEL, manager: WeightsManager | None = None) -> str:
    """One line that tells a user how to install ``name``."""
    entry = (manager or weights_manager()).entry(name)
    return f"DAP Atlas weights '{name}' are not installed: {entry.install_hint}"


def use_downloaded_folder(name: str, folder: str | Path, manager: WeightsManager | None = None) -> Path:
    """Register the authors' unpacked download (any parent of ``Task90x_.../``) as ``name``'s location.

    The files are used in place (nothing is copied), as ``models use-folder`` does, but ``folder``
    may be the download's top folder: the one that holds the manifest's relative paths is found
    below it. Raises :class:`MissingWeightsError` naming what is missing.
    """
    from .exceptions import MissingWeightsError

    manager = manager or weights_manager()
    entry = manager.entry(name)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputNotFoundError(f"{folder} is not a folder.")
    trainer = Path(entry.extra.get("v1_trainer_folder", ""))
    candidates = [folder] if (folder / trainer).is_dir() else []
    candidates += [
        match.parents[len(trainer.parts) - 1]
        for match in sorted(folder.rglob(trainer.name))
        if match.is_dir() and match.as_posix().endswith(trainer.as_posix())
    ]
    if not candidates:
        raise MissingWeightsError(
            f"{folder} does not contain {trainer.as_posix()}; select the unpacked download of '{name}'. "
            f"{entry.install_hint}"
        )
    return manager.use_local_folder(name, candidates[0]).location


@dataclass(frozen=True)
class ResolvedModel:
    """An nnU-Net v2 folder ready for the predictor, with the toolkit's settings for it."""

    v2_dir: Path
    settings: InferenceSettings
    source: str  # what the user asked for (manifest name or folder)


def _fingerprint(v1_folder: Path, checkpoint: str) -> str:
    """Changes when the v1 files change (path, sizes, modification times of plans and checkpoints)."""
    digest = hashlib.sha1(f"{v1_folder.resolve()}|{checkpoint}".encode())
    for path in sorted([v1_folder / "plans.pkl", *v1_folder.glob(f"fold_*/{checkpoint}.model*")]):
        stat = path.stat()
        digest.update(f"{path.relative_to(v1_folder)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def converted_folder(
    v1_folder: str | Path,
    *,
    checkpoint: str | None = None,
    cache_dir: str | Path | None = None,
    label: str | None = None,
    settings: InferenceSettings | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Path:
    """The cached v2 conversion of a v1 trainer folder (converted now if absent or outdated)."""
    v1_folder = Path(v1_folder).expanduser()
    checkpoint = checkpoint or default_v1_checkpoint(v1_folder)
    root = Path(cache_dir) if cache_dir is not None else weights_manager().cache_dir
    label = label or f"{v1_folder.parent.name}-{v1_folder.name}"  # task and trainer
    target = root / CONVERTED_SUBFOLDER / f"{label}-{checkpoint}-{_fingerprint(v1_folder, checkpoint)}"
    if is_v2_model_folder(target):
        return target
    if progress is not None:
        progress(
            0.0, f"converting the nnU-Net v1 model {v1_folder.name} ({checkpoint}) to v2 (first use only)"
        )

    def step(fraction: float, message: str) -> None:  # messages only: the bar belongs to the prediction
        if progress is not None:
            progress(0.0, f"first use: {message}")

    try:
        convert_v1_to_v2(
            v1_folder,
            target,
            checkpoint=checkpoint,
            settings=settings,
            overwrite=target.exists(),  # only a damaged leftover (a valid one returned above)
            progress=step,
        )
    except OutputExistsError:
        if not is_v2_model_folder(target):  # another process finished the same conversion
            raise
    return target


def resolve_model(
    model: str | Path = DEFAULT_MODEL,
    *,
    checkpoint: str | None = None,
    manager: WeightsManager | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ResolvedModel:
    """Manifest name, v2 folder or v1 trainer folder -> :class:`ResolvedModel`.

    ``checkpoint``: for v1 sources the v1 checkpoint to convert (default: the manifest's, else
    model_final_checkpoint > model_latest > model_best); ignored for v2 folders (the predictor
    takes its own ``checkpoint`` file name). Raises :class:`MissingWeightsError` with the install
    hint when a manifest model is not installed.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        if is_v2_model_folder(path):
            return ResolvedModel(path, read_inference_settings(path), text)
        if is_v1_model_folder(path):
            target = converted_folder(
                path,
                checkpoint=checkpoint,
                cache_dir=(manager.cache_dir if manager else None),
                progress=progress,
            )
            return ResolvedModel(target, read_inference_settings(target), text)
        raise UnsupportedFormatError(
            f"{path} is neither an nnU-Net v2 results folder (dataset.json, plans.json, fold_*/) nor an "
            "nnU-Net v1 trainer folder (plans.pkl, fold_*/*.model); give one of those or a model name "
            f"({DEFAULT_MODEL}, dap-atlas-v1)."
        )
    manager = manager or weights_manager()
    if "/" in text or "\\" in text:
        raise InputNotFoundError(f"Model folder not found: {path}")
    entry = manager.entry(text)  # KeyError with close matches for typos
    root = manager.require(entry.name)  # MissingWeightsError with the install hint
    trainer = root / entry.extra.get("v1_trainer_folder", "")
    target = converted_folder(
        trainer,
        checkpoint=checkpoint or entry.extra.get("v1_checkpoint"),
        cache_dir=manager.cache_dir,
        label=f"{entry.name}-{entry.version}",
        settings=settings_for_v1_folder(trainer),
        progress=progress,
    )
    return ResolvedModel(target, read_inference_settings(target), entry.name)
