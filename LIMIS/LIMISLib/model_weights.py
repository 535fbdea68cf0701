"""LIMIS model weights: the manifest (``models.json``) and building the real models from it.

Models (see ``python -m LIMISLib models list``):

* ``grounding-dino-tiny``: the Lang2BBox base, IDEA-Research/grounding-dino-tiny from Hugging Face;
* ``limis-lang2bbox-lora``: our LoRA adapter (trained with ``train-lang2bbox``; none is published);
* ``scribbleprompt-unet``: ScribblePrompt-UNet v1, the authors' checkpoint (BBox2Mask);
* ``scribbleprompt-sam``: ScribblePrompt-SAM v1 ViT-B, optional (the authors publish it only in
  their Dropbox folder).

Checksums the authors do not publish are null in the manifest and pinned by the weights manager
at install (``installed.json``). Building a model whose files are missing raises
:class:`LIMISLib.exceptions.MissingWeightsError` naming the files, where to get them and the
command that installs them; nothing is ever downloaded without being asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from AnatomyCommonLib.weights import WeightsManager

from .exceptions import MissingWeightsError

MANIFEST = Path(__file__).with_name("models.json")

GROUNDING_DINO_BASE = "grounding-dino-tiny"
LANG2BBOX_ADAPTER = "limis-lang2bbox-lora"
SCRIBBLEPROMPT_UNET = "scribbleprompt-unet"
SCRIBBLEPROMPT_SAM = "scribbleprompt-sam"

#: What text -> box -> mask needs (the default pipeline).
PIPELINE_MODELS: tuple[str, ...] = (GROUNDING_DINO_BASE, LANG2BBOX_ADAPTER, SCRIBBLEPROMPT_UNET)


def weights_manager(cache_dir: str | Path | None = None) -> WeightsManager:
    """The weights manager over LIMIS's manifest (cache folder: the toolkit default unless given)."""
    return WeightsManager([MANIFEST], cache_dir)


def missing_models(manager: WeightsManager, names: Sequence[str] = PIPELINE_MODELS) -> list[str]:
    """The names among ``names`` that are not (completely) installed."""
    return [name for name in names if not manager.is_installed(name)]


def missing_summary(manager: WeightsManager, names: Sequence[str] = PIPELINE_MODELS) -> str:
    """One line: which files are missing and the commands that install them ("" if none)."""
    parts, commands = [], []
    for name in missing_models(manager, names):
        state = manager.status(name)
        files = ", ".join(state.missing + state.corrupt) or "files"
        parts.append(f"{name} ({files})")
        entry = manager.entry(name)
        downloadable = any(f.url for f in entry.required_files) or entry.archive_url
        commands.append(
            f"python -m LIMISLib models install {name}"
            + (" --download" if downloadable else " <file or folder>")
        )
    if not parts:
        return ""
    return (
        f"LIMIS weights missing in {manager.cache_dir}: {'; '.join(parts)}. Install with: "
        + " && ".join(commands)
        + " (see 'python -m LIMISLib models list')."
    )


def require_all(manager: WeightsManager, names: Sequence[str]) -> dict[str, Path]:
    """Folder of every model; one :class:`MissingWeightsError` listing all that are missing."""
    missing = missing_models(manager, names)
    if missing:
        raise MissingWeightsError(" ".join(manager.missing_message(name) for name in missing))
    return {name: manager.require(name) for name in names}


def build_lang2bbox(manager: WeightsManager | None = None, *, device: str = "cpu", with_adapter: bool = True):
    """The real Lang2BBox (Grounding DINO tiny + our LoRA adapter) from installed weights."""
    from .neural.grounding_dino import GroundingDinoLang2BBox

    manager = manager or weights_manager()
    names = [GROUNDING_DINO_BASE, LANG2BBOX_ADAPTER] if with_adapter else [GROUNDING_DINO_BASE]
    folders = require_all(manager, names)
    return GroundingDinoLang2BBox.from_pretrained(
        folders[GROUNDING_DINO_BASE], adapter_dir=folders.get(LANG2BBOX_ADAPTER), device=device
    )


def build_bbox2mask(
    manager: WeightsManager | None = None, *, model: str = "unet", device: str = "cpu", **settings
):
    """The real BBox2Mask (ScribblePrompt-UNet, or ``model="sam"``) from installed weights."""
    manager = manager or weights_manager()
    if model == "unet":
        from .bbox2mask import ScribblePromptBBox2Mask

        folder = require_all(manager, [SCRIBBLEPROMPT_UNET])[SCRIBBLEPROMPT_UNET]
        return ScribblePromptBBox2Mask.from_checkpoint(
            folder / "ScribblePrompt_unet_v1_nf192_res128.pt", device=device, **settings
        )
    if model == "sam":
        from .neural.scribbleprompt_sam import ScribblePromptSAMBBox2Mask

        folder = require_all(manager, [SCRIBBLEPROMPT_SAM])[SCRIBBLEPROMPT_SAM]
        return ScribblePromptSAMBBox2Mask.from_checkpoint(
            folder / "ScribblePrompt_sam_v1_vit_b_res128.pt", device=device, **settings
        )
    raise ValueError(f"Unknown BBox2Mask model {model!r}; use 'unet' or 'sam'.")


def build_limis_models(
    manager: WeightsManager | None = None, *, device: str = "cpu", bbox2mask: str = "unet"
):
    """(Lang2BBox, BBox2Mask) from installed weights; one error listing everything that is missing."""
    manager = manager or weights_manager()
    require_all(
        manager,
        [
            GROUNDING_DINO_BASE,
            LANG2BBOX_ADAPTER,
            SCRIBBLEPROMPT_UNET if bbox2mask == "unet" else SCRIBBLEPROMPT_SAM,
        ],
    )
    return build_lang2bbox(manager, device=device), build_bbox2mask(manager, model=bbox2mask, device=device)
