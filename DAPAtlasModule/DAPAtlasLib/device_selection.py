"""Estimate the memory an nnU-Net prediction needs *before* allocating it, and pick CPU or GPU.

The estimate follows what ``nnunetv2``'s predictor and :mod:`DAPAtlasLib.nnunet.nnunet_predictor`
allocate, phase by phase (``N_in`` = voxels of the input CT, ``N_res`` = voxels after resampling
to the model's spacing, padded to at least one patch, ``C`` = classes, 145 for DAP):

* preprocessing (host): float32 copies of the CT and a float64 copy for resampling,
  ``N_in * 16 + N_res * 12`` bytes;
* sliding window: float16 logits ``C * N_res * 2`` plus a float16 counter and the float32 input
  (``N_res * 10``), a second logits array while folds are summed (``C * N_res * 2`` more when
  ensembling), and the network's activations for one patch (float32 on CPU, float16 on GPU);
* export to the input grid (:func:`~DAPAtlasLib.nnunet.nnunet_predictor.logits_to_input_grid`): the
  logits stay, plus a few channels at a time (a float64 copy at the model's resolution and a
  float32 result at the input's, ``N_res * 8 + N_in * 4`` bytes each, about 1 GB in all) and
  ``N_in * 14`` bytes of running argmax;
* fixed: the weights of every fold and about 0.6 GB for the Python/torch runtime (1 GB of
  CUDA context and cuDNN workspace on a GPU).

On a GPU the sliding window needs the network, one patch and the input (the result arrays may
stay on the host: ``gpu_min_bytes``; on the GPU: ``gpu_full_bytes``), and the export, which runs
with torch on the same GPU, a running maximum and index at the input's resolution (``N_in * 6``)
plus a few float32 class maps (about 256 MB).

Numbers are rounded up rather than down: the goal is a clear message before a crash, not a
tight bound. Tests check the arithmetic; they never measure memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .exceptions import InsufficientMemoryError, MissingDependencyError

GB = 1024**3
RUNTIME_OVERHEAD_BYTES = int(0.6 * GB)
CUDA_OVERHEAD_BYTES = 1 * GB
#: Float64 channels resampled at once during export (see nnunet_predictor.channels_per_chunk).
EXPORT_CHUNK_BYTES = 1 << 30
#: The same on a GPU, where the export runs with torch (see nnunet_predictor.logits_to_input_grid).
EXPORT_CHUNK_BYTES_GPU = 1 << 28


def resampled_shape(
    shape_kji: Sequence[int],
    spacing_kji_mm: Sequence[float],
    target_spacing_mm: Sequence[float],
    transpose_forward,
) -> tuple[int, ...]:
    """Array shape after nnU-Net's transpose and resampling (same rounding as nnunetv2)."""
    shape = [int(shape_kji[i]) for i in transpose_forward]
    spacing = [float(spacing_kji_mm[i]) for i in transpose_forward]
    return tuple(round(s / t * n) for s, t, n in zip(spacing, target_spacing_mm, shape, strict=False))


def patch_activation_elements(
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: int,
    num_classes: int,
) -> int:
    """Feature-map elements alive while one patch runs through a U-Net (generous upper bound).

    Every stage keeps its skip connection; each conv block briefly holds its conv and norm
    outputs; the decoder mirrors the encoder; the head holds the logits three times (output,
    Gaussian-weighted copy, mirroring sum).
    """
    size = [int(v) for v in patch_size]
    elements = 2 * math.prod(size)  # the input patch and its copy
    full_resolution = math.prod(size)
    for features, stride in zip(features_per_stage, strides, strict=False):
        size = [max(1, s // int(st)) for s, st in zip(size, stride, strict=False)]
        elements += int(features) * math.prod(size) * (2 * n_conv_per_stage + 2)
    return elements + 3 * num_classes * full_resolution


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory (bytes) of one prediction, per device."""

    input_shape: tuple[int, ...]
    resampled_shape: tuple[int, ...]
    num_classes: int
    n_folds: int
    host_bytes_cpu_run: int  # RAM when predicting on the CPU
    host_bytes_gpu_run: int  # RAM when predicting on a GPU
    gpu_min_bytes: int  # GPU memory with the result arrays on the host
    gpu_full_bytes: int  # GPU memory with everything on the GPU (fastest)

    def summary(self) -> str:
        shape = "x".join(str(n) for n in self.input_shape)
        resampled = "x".join(str(n) for n in self.resampled_shape)
        return (
            f"CT of {shape} voxels ({resampled} at the model's spacing), {self.num_classes} classes, "
            f"{self.n_folds} fold(s): about {self.host_bytes_cpu_run / GB:.1f} GB RAM on the CPU, or "
            f"{self.gpu_min_bytes / GB:.1f}-{self.gpu_full_bytes / GB:.1f} GB GPU memory plus "
            f"{self.host_bytes_gpu_run / GB:.1f} GB RAM on a GPU"
        )


def estimate_memory(
    shape_kji: Sequence[int],
    spacing_kji_mm: Sequence[float],
    *,
    target_spacing_mm: Sequence[float],
    transpose_forward: Sequence[int] = (0, 1, 2),
    num_classes: int,
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: int = 2,
    n_folds: int = 1,
    weights_bytes_per_fold: int = 0,
) -> MemoryEstimate:
    """Peak memory of predicting one CT (see the module docstring for every term)."""
    n_in = math.prod(int(v) for v in shape_kji)
    res_shape = resampled_shape(shape_kji, spacing_kji_mm, target_spacing_mm, transpose_forward)
    padded = [max(r, int(p)) for r, p in zip(res_shape, patch_size, strict=False)]
    n_res = math.prod(padded)
    c = int(num_classes)
    logits = c * n_res * 2
    ensemble = logits if n_folds > 1 else 0
    activations = patch_activation_elements(patch_size, features_per_stage, strides, n_conv_per_stage, c)
    weights = int(weights_bytes_per_fold) * (n_folds + 1)

    preprocess = n_in * 16 + n_res * 12
    per_channel = n_res * 8 + n_in * 4  # float64 input copy, float32 result (either export path)
    chunk_channels = max(1, min(c, EXPORT_CHUNK_BYTES // per_channel))
    export = logits + chunk_channels * per_channel + n_in * 14
    sliding_cpu = logits + ensemble + n_res * 10 + activations * 4
    sliding_gpu_host = logits + ensemble + n_res * 4  # logits come back to the host fold by fold

    host_cpu = RUNTIME_OVERHEAD_BYTES + weights + max(preprocess, sliding_cpu, export)
    host_gpu = RUNTIME_OVERHEAD_BYTES + weights + max(preprocess, sliding_gpu_host, export)
    gpu_fixed = CUDA_OVERHEAD_BYTES + int(weights_bytes_per_fold)
    gpu_predict = gpu_fixed + activations * 2 + n_res * 4
    gpu_per_channel = (n_res + n_in) * 4  # float32 class map before and after resampling
    gpu_chunk = max(1, min(c, EXPORT_CHUNK_BYTES_GPU // gpu_per_channel))
    gpu_export = gpu_fixed + n_in * 6 + gpu_chunk * gpu_per_channel  # running max (float32) + index
    gpu_min = max(gpu_predict, gpu_export)
    gpu_full = max(gpu_predict + logits + n_res * 2, gpu_export)
    return MemoryEstimate(
        input_shape=tuple(int(v) for v in shape_kji),
        resampled_shape=tuple(res_shape),
        num_classes=c,
        n_folds=int(n_folds),
        host_bytes_cpu_run=int(host_cpu),
        host_bytes_gpu_run=int(host_gpu),
        gpu_min_bytes=int(gpu_min),
        gpu_full_bytes=int(gpu_full),
    )


@dataclass(frozen=True)
class DeviceChoice:
    """Where to predict and whether the result arrays fit on that device."""

    device: str  # "cpu" or "cuda:N"
    perform_everything_on_device: bool
    reason: str


def available_ram_bytes() -> int:
    """RAM available to a new allocation (psutil; 'available' counts reclaimable cache)."""
    try:
        import psutil
    except ImportError as error:  # pragma: no cover - psutil is in the [dap] extra
        raise MissingDependencyError("Checking memory needs psutil: pip install 'psutil>=5.9,<8'") from error
    return int(psutil.virtual_memory().available)


def cuda_free_bytes(device: str = "cuda:0") -> int | None:
    """Free memory on a CUDA device, or None when torch sees no GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


_WHAT_TO_DO = (
    "Crop the CT to the body region you need (fewer voxels is the only large saving), close other "
    "programs, use fewer folds (saves one logits copy), or run on a machine with more memory."
)


def _need(what: str, needed: int, available: int) -> str:
    return f"needs about {needed / GB:.1f} GB of {what} but {available / GB:.1f} GB are available"


def select_device(
    requested: str,
    estimate: MemoryEstimate,
    *,
    ram_bytes: int | None = None,
    gpu_free_bytes: int | str | None = "query",
    check_memory: bool = True,
) -> DeviceChoice:
    """Pick the device for ``requested`` ("auto", "cpu", "cuda", "cuda:N").

    "auto" takes the GPU when PyTorch sees one with room for the network and one patch, else the
    CPU. Raises :class:`InsufficientMemoryError` (with how much is needed and what to do) when
    the case fits nowhere, and :class:`MissingDependencyError` when CUDA is requested but absent.
    ``ram_bytes``/``gpu_free_bytes`` override the measured values (tests).
    """
    requested = (requested or "auto").strip().lower()
    if requested not in ("auto", "cpu") and not requested.startswith("cuda"):
        raise ValueError(f"Unknown device {requested!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    cuda_name = requested if requested.startswith("cuda:") else "cuda:0"
    if gpu_free_bytes == "query":
        gpu_free_bytes = None if requested == "cpu" else cuda_free_bytes(cuda_name)
    ram = available_ram_bytes() if ram_bytes is None and check_memory else ram_bytes

    def cpu_choice(reason: str) -> DeviceChoice:
        if check_memory and estimate.host_bytes_cpu_run > ram:
            raise InsufficientMemoryError(
                f"Predicting on the CPU {_need('RAM', estimate.host_bytes_cpu_run, ram)} "
                f"({estimate.summary()}). {_WHAT_TO_DO}"
            )
        return DeviceChoice("cpu", False, reason)

    if requested == "cpu":
        return cpu_choice("CPU requested")
    if gpu_free_bytes is None:
        if requested.startswith("cuda"):
            raise MissingDependencyError(
                f"Device {requested!r} was requested but PyTorch sees no CUDA GPU (CPU-only torch build, "
                "missing driver, or CUDA_VISIBLE_DEVICES hides it). Use device 'cpu' or 'auto'."
            )
        return cpu_choice("no CUDA GPU available")
    gpu_fits = not check_memory or estimate.gpu_min_bytes <= gpu_free_bytes
    host_fits = not check_memory or estimate.host_bytes_gpu_run <= ram
    if gpu_fits and host_fits:
        everything = not check_memory or estimate.gpu_full_bytes <= gpu_free_bytes
        where = "on the GPU" if everything else "with result arrays in RAM (GPU memory is short)"
        return DeviceChoice(cuda_name, everything, f"GPU {cuda_name} {where}")
    problem = (
        f"the GPU {_need('GPU memory', estimate.gpu_min_bytes, gpu_free_bytes)}"
        if not gpu_fits
        else f"a GPU run {_need('RAM', estimate.host_bytes_gpu_run, ram)}"
    )
    if requested.startswith("cuda"):
        raise InsufficientMemoryError(
            f"Predicting on {cuda_name}: {problem} ({estimate.summary()}). Use device 'cpu' or 'auto', or: "
            f"{_WHAT_TO_DO}"
        )
    return cpu_choice(f"{problem}; using the CPU")
