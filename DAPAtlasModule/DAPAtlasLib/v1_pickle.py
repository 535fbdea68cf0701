"""Reading nnU-Net v1 result files (``plans.pkl``, ``*.model.pkl``, ``*.model``) safely and today.

nnU-Net v1 stored its plans and checkpoint metadata as Python pickles written with numpy 1.x and
torch < 2. Plain ``pickle.load`` would run whatever code such a file names, and the numpy 1
module paths (``numpy.core.multiarray``) moved in numpy 2. The restricted unpickler here only
rebuilds what those files legitimately contain (dicts, lists, tuples, OrderedDict, numpy arrays
and scalars, torch tensors) and maps the old numpy paths onto the current ones; anything else is
refused with :class:`~AnatomyCommonLib.errors.CorruptWeightsError`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from .exceptions import CorruptWeightsError, InputNotFoundError

#: (module, name) pairs a v1 result file may reference; ``*`` allows any name in that module.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "complex"),
        ("builtins", "bytearray"),
        ("_codecs", "encode"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.dtypes", "*"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch", "Size"),
        ("torch", "device"),
    }
)


def _current_numpy_module(module: str) -> str:
    """numpy 1.x pickles name ``numpy.core.*``; numpy 2 moved it to ``numpy._core.*``."""
    if module == "numpy.core" or module.startswith("numpy.core."):
        return "numpy._core" + module[len("numpy.core") :]
    return module


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds only the data types found in nnU-Net v1 result files."""

    source = "a v1 result file"

    def find_class(self, module: str, name: str) -> Any:
        module = _current_numpy_module(module)
        if (module, name) in _ALLOWED_GLOBALS or (module, "*") in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise CorruptWeightsError(
            f"{self.source} refers to {module}.{name}, which an nnU-Net v1 plans or checkpoint file "
            "never contains; refusing to load it. Check that the file really is the released model."
        )


class _RestrictedPickleModule:
    """What ``torch.load(pickle_module=...)`` needs: an ``Unpickler`` class and ``load``."""

    __name__ = "DAPAtlasLib.v1_pickle"
    Unpickler = RestrictedUnpickler

    @staticmethod
    def load(file, **kwargs):
        return RestrictedUnpickler(file, **kwargs).load()


def load_v1_pickle(path: str | Path) -> Any:
    """Load ``plans.pkl`` or ``<checkpoint>.model.pkl`` with the restricted unpickler."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"nnU-Net v1 file not found: {path}")
    try:
        with open(path, "rb") as handle:
            unpickler = RestrictedUnpickler(handle)
            unpickler.source = str(path)
            return unpickler.load()
    except CorruptWeightsError:
        raise
    except Exception as error:  # truncated download, wrong file type, ...
        raise CorruptWeightsError(
            f"{path} could not be read as an nnU-Net v1 pickle ({type(error).__name__}: {error}). "
            "The file is probably incomplete; download or copy it again."
        ) from error


def load_v1_checkpoint(path: str | Path) -> dict:
    """Load a v1 ``*.model`` checkpoint (torch.save dict with ``state_dict``) on the CPU."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"nnU-Net v1 checkpoint not found: {path}")
    try:
        checkpoint = torch.load(
            path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule
        )
    except CorruptWeightsError as error:
        raise CorruptWeightsError(f"{path}: {error}") from error
    except Exception as error:
        raise CorruptWeightsError(
            f"{path} could not be read as a torch checkpoint ({type(error).__name__}: {error}). "
            "The file is probably incomplete; download or copy it again."
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CorruptWeightsError(
            f"{path} is a torch file but not an nnU-Net v1 checkpoint (no 'state_dict' entry)."
        )
    return checkpoint
