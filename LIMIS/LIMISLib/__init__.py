"""LIMIS outside Slicer: language-driven interactive segmentation.

Nothing here imports ``slicer``, ``qt`` or ``vtk`` at import time; torch, transformers and
peft are imported only by the model code that needs them.
"""

__all__: list[str] = []

# --- LIMIS models (issue 6): exported lazily, so that importing LIMISLib never imports torch.
_LAZY_MODEL_EXPORTS = {
    "ScribblePromptUNet": "neural.scribbleprompt_unet",
    "ScribblePromptBBox2Mask": "bbox2mask",
    "ScribblePromptSAMBBox2Mask": "neural.scribbleprompt_sam",
    "GroundingDinoLang2BBox": "neural.grounding_dino",
    "LoRASettings": "neural.grounding_dino",
    "enlarge_box": "bbox2mask",
    "build_lang2bbox": "model_weights",
    "build_bbox2mask": "model_weights",
    "build_limis_models": "model_weights",
    "segment_from_text": "initial_segmentation",
}
__all__ += list(_LAZY_MODEL_EXPORTS)


# --- LIMIS interaction loop (issue 7): the command language is light and imported eagerly; the
# session classes are exported lazily through the same __getattr__ as the models.
from .command_grammar import KINDS, Command, ParseContext, parse_command  # noqa: E402

_LAZY_INTERACTION_EXPORTS = {
    "InteractionSession": "session",
    "SessionConfig": "session",
    "Step": "session",
    "Reply": "session",
    "VolumeSession": "volume_session",
    "PropagationConfig": "slice_propagation",
    "AxialSliceGeometry": "slice_geometry",
    "IntensityBBox2Mask": "reference_models",
    "SemanticMatcher": "semantic_matcher",
    "replay": "session_replay",
}
_LAZY_MODEL_EXPORTS.update(_LAZY_INTERACTION_EXPORTS)
__all__ += ["KINDS", "Command", "ParseContext", "parse_command", *_LAZY_INTERACTION_EXPORTS]


def __getattr__(name: str):
    if name in _LAZY_MODEL_EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY_MODEL_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
