"""Whole-body DAP Atlas segmentation of a CT with the released models, through ``nnunetv2``.

>>> from DAPAtlasLib.inference import segment
>>> labels = segment("ct.nii.gz", "dap-atlas-v2")            # doctest: +SKIP
>>> labels.array.max(), labels.same_grid_as(read_volume("ct.nii.gz"))   # doctest: +SKIP

:func:`segment` (one case) and :class:`DAPSegmenter` (keeps the weights loaded for many cases)
run nnU-Net v2's predictor on the CT and return a label map (uint8 DAP ids) on the **input's
exact voxel grid**. What the wrapper adds around the predictor:

* the model: a manifest name (``dap-atlas-v2``, ``dap-atlas-v1``), an nnU-Net v2 results folder
  or a v1 trainer folder (converted once, see :mod:`.model_weights`);
* geometry: the CT array (``[k, j, i]``, which is nnU-Net's SimpleITK ``(z, y, x)`` order) is
  permuted/flipped into the voxel orientation the model was trained in (LAS for DAP) and the
  result is put back exactly (no interpolation), spacing is passed in the same axis order;
* memory: an estimate before allocating, device selection (:mod:`.device_selection`) and an
  :class:`InsufficientMemoryError` that says how much is needed and what to do;
* progress: ``progress(fraction, message)`` after loading, preprocessing, every sliding-window
  patch, export and post-processing; raising :class:`CancelledError` from it stops the run;
* the export to the input grid keeps memory at a few bytes per voxel (:mod:`.nnunet.nnunet_predictor`);
* post-processing (:mod:`DAPAtlasLib.postprocess`) afterwards, on by default for V1, off for V2;
  without it the rib order alone is still checked (rib k attaches to T_k; :func:`check_model_rib_order`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from AnatomyCommonLib.volume import Volume

from .device_selection import (
    DeviceChoice,
    MemoryEstimate,
    available_ram_bytes,
    estimate_memory,
    select_device,
)
from .exceptions import CorruptWeightsError, MissingDependencyError, MissingWeightsError
from .model_conversion import V2_CHECKPOINT, V2_CONFIGURATION, is_v2_model_folder, validate_v2_folder
from .model_weights import DEFAULT_MODEL, ResolvedModel, resolve_model
from .voxel_orientation import Reorientation, orientation_code, plan_reorientation

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]

#: Share of the progress bar per phase (load, preprocess, predict, export, post-process).
_PHASES = {"load": (0.0, 0.05), "preprocess": (0.05, 0.1), "predict": (0.1, 0.9), "export": (0.9, 0.96)}


class _Progress:
    """Monotonic, clamped progress reporting over the phases of one run."""

    def __init__(self, callback: ProgressCallback | None, postprocess: bool) -> None:
        self.callback = callback
        self.done = 0.0
        self.end_of_export = 0.96 if postprocess else 1.0
        self.stdout = sys.stdout  # the caller's: nnunetv2's prints are silenced, the callback's are not

    def __call__(self, phase: str, fraction: float, message: str) -> None:
        if self.callback is None:
            return
        start, stop = _PHASES.get(phase, (0.96, 1.0))
        if phase == "export":
            stop = self.end_of_export
        value = min(1.0, max(self.done, start + (stop - start) * min(1.0, max(0.0, fraction))))
        self.done = value
        with contextlib.redirect_stdout(self.stdout):
            self.callback(value, message)


class _LogWriter(io.TextIOBase):
    """nnunetv2 prints to stdout; send that to the log so stdout stays clean (progress protocol)."""

    def write(self, text: str) -> int:
        if text.strip():
            log.debug("nnunetv2: %s", text.rstrip())
        return len(text)


def _quiet():
    return contextlib.redirect_stdout(_LogWriter())


def _require_nnunetv2() -> None:
    try:
        import nnunetv2  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError(
            "DAP Atlas inference needs torch and nnunetv2: pip install 'slicer-anatomy-toolkit[dap]' "
            "(inside Slicer the module offers to install them)."
        ) from error


class DAPSegmenter:
    """A DAP Atlas model ready to segment CTs; loads the weights on the first case and keeps them.

    ``model``: manifest name, nnU-Net v2 results folder or v1 trainer folder. ``folds``: subset of
    the model's folds (default: all, as the authors ensemble them). ``checkpoint``: for a v2
    folder the checkpoint file (default ``checkpoint_final.pth``); for v1 sources the v1
    checkpoint to convert. ``use_mirroring``: test-time mirroring where the model allows it
    (default True; the V2 model allows none). ``voxel_orientation``: "model" (the model's
    training orientation, LAS for DAP), an axis code, or None to feed the array as stored.
    ``export_resampling``: "torch" (default; nnunetv2's torch resampling of the class maps back
    to the input grid, on the prediction device, about ten times faster) or "nnunet" (the
    plans' scipy resampling, bit-identical to ``nnUNetPredictor``'s own export).
    ``ram_limit_bytes`` (attribute): RAM this process may use at most, e.g. the memory limit of the
    Dask worker it runs on; the memory estimate of a case is checked against the smaller of it and
    the free RAM, so a case too large is refused with a message instead of the worker killed.
    """

    ram_limit_bytes: int | None = None

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        device: str = "auto",
        folds: Sequence[int | str] | None = None,
        checkpoint: str | None = None,
        use_mirroring: bool = True,
        tile_step_size: float = 0.5,
        voxel_orientation: str | None = "model",
        export_resampling: str = "torch",
        check_memory: bool = True,
        progress: ProgressCallback | None = None,
        weights_manager=None,
    ) -> None:
        _require_nnunetv2()
        from .nnunet.nnunet_predictor import EXPORT_RESAMPLING

        if export_resampling not in EXPORT_RESAMPLING:
            raise ValueError(
                f"export_resampling must be one of {', '.join(EXPORT_RESAMPLING)}, got {export_resampling!r}."
            )
        self.export_resampling = export_resampling
        given_v2 = Path(str(model)).expanduser().exists() and is_v2_model_folder(
            Path(str(model)).expanduser()
        )
        self.checkpoint = V2_CHECKPOINT
        if given_v2 and checkpoint:
            self.checkpoint = checkpoint if checkpoint.endswith(".pth") else f"{checkpoint}.pth"
        self.resolved: ResolvedModel = resolve_model(
            model, checkpoint=None if given_v2 else checkpoint, manager=weights_manager, progress=progress
        )
        self.model_dir = self.resolved.v2_dir
        available = validate_v2_folder(self.model_dir, self.checkpoint)
        if folds is None:
            self.folds = tuple(available)
        else:
            self.folds = tuple(str(f) for f in folds)
            missing = [f for f in self.folds if f not in available]
            if missing:
                raise MissingWeightsError(
                    f"{self.model_dir} has no fold(s) {', '.join(missing)} with {self.checkpoint}; "
                    f"available: {', '.join(available)}."
                )
        self.device = device
        self.use_mirroring = use_mirroring
        self.tile_step_size = tile_step_size
        self.check_memory = check_memory
        orientation = (
            self.resolved.settings.voxel_orientation if voxel_orientation == "model" else voxel_orientation
        )
        self.voxel_orientation: str | None = orientation
        self.plans = json.loads((self.model_dir / "plans.json").read_text(encoding="utf-8"))
        self.dataset_json = json.loads((self.model_dir / "dataset.json").read_text(encoding="utf-8"))
        self.num_classes = len(self.dataset_json["labels"])
        self._predictor = None
        self._predictor_device: str | None = None
        self.last_timings_s: dict[str, float] = {}

    # ------------------------------------------------------------------ properties
    @property
    def settings(self):
        return self.resolved.settings

    @property
    def configuration(self) -> dict:
        return self.plans["configurations"][V2_CONFIGURATION]

    def estimate_memory(self, shape_kji: Sequence[int], spacing_kji_mm: Sequence[float]) -> MemoryEstimate:
        """Memory estimate of predicting an array of this shape/spacing (in the model's orientation)."""
        arch = self.configuration["architecture"]["arch_kwargs"]
        n_conv = arch.get("n_conv_per_stage", arch.get("n_blocks_per_stage", 2))  # PlainConv / ResEnc
        weights = max((self.model_dir / f"fold_{f}" / self.checkpoint).stat().st_size for f in self.folds)
        return estimate_memory(
            shape_kji,
            spacing_kji_mm,
            target_spacing_mm=self.configuration["spacing"],
            transpose_forward=self.plans.get("transpose_forward", [0, 1, 2]),
            num_classes=self.num_classes,
            patch_size=self.configuration["patch_size"],
            features_per_stage=arch["features_per_stage"],
            strides=arch["strides"],
            n_conv_per_stage=int(n_conv[0] if isinstance(n_conv, list) else n_conv),
            n_folds=len(self.folds),
            weights_bytes_per_fold=weights,
        )

    # ------------------------------------------------------------------ predictor
    def _load_predictor(self, choice: DeviceChoice):
        import torch

        from .nnunet.nnunet_predictor import ProgressPredictor

        if self._predictor is not None and self._predictor_device == choice.device:
            self._predictor.perform_everything_on_device = choice.perform_everything_on_device
            return self._predictor
        with _quiet():
            predictor = ProgressPredictor(
                tile_step_size=self.tile_step_size,
                use_gaussian=True,
                use_mirroring=self.use_mirroring,
                perform_everything_on_device=choice.perform_everything_on_device,
                device=torch.device(choice.device),
                verbose=False,
                allow_tqdm=False,
            )
            try:
                predictor.initialize_from_trained_model_folder(
                    str(self.model_dir),
                    use_folds=tuple(int(f) if f.isdigit() else f for f in self.folds),
                    checkpoint_name=self.checkpoint,
                )
            except Exception as error:  # torch/pickle/nnunetv2 raise many kinds for a damaged folder
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise CorruptWeightsError(
                    f"The model in {self.model_dir} could not be loaded by nnunetv2 "
                    f"({type(error).__name__}: {first_line}). Its checkpoints do not match "
                    "plans.json/dataset.json or are damaged; convert or copy it again."
                ) from error
        predictor.perform_everything_on_device = choice.perform_everything_on_device
        self._predictor, self._predictor_device = predictor, choice.device
        return predictor

    # ------------------------------------------------------------------ segmentation
    def segment(
        self,
        ct: Volume,
        *,
        postprocess: bool | None = None,
        sex: str | None = None,
        progress: ProgressCallback | None = None,
        force: bool = False,
    ) -> Volume:
        """Label map (uint8 DAP ids) of ``ct`` on its exact grid; see :func:`segment`.

        ``force`` segments an input that does not look like a CT (:func:`.input_checks.check_ct`)
        and records the warning in ``metadata["dap_input_warnings"]``.
        """
        import torch

        from .input_checks import check_ct

        ct.require_3d("CT").require_finite("CT")
        input_warnings = check_ct(ct, force=force)
        sex = sex or ct.metadata.get("PatientSex") or None
        postprocess = self.settings.postprocess_by_default if postprocess is None else bool(postprocess)
        report = _Progress(progress, postprocess)
        timings: dict[str, float] = {}

        started = time.perf_counter()
        reorientation: Reorientation = plan_reorientation(ct, self.voxel_orientation)
        array = reorientation.apply(ct.array)
        spacing = reorientation.spacing_kji(ct.spacing_kji_mm)
        estimate = self.estimate_memory(array.shape, spacing)
        ram = None
        if self.ram_limit_bytes is not None and self.check_memory:  # e.g. a Dask worker's memory limit
            ram = min(available_ram_bytes(), self.ram_limit_bytes)
        choice = select_device(self.device, estimate, ram_bytes=ram, check_memory=self.check_memory)
        log.info("DAP Atlas inference: %s; %s", choice.reason, estimate.summary())
        report("load", 0.0, f"loading {self.settings.display_name} on {choice.device}")
        predictor = self._load_predictor(choice)
        timings["load_s"] = time.perf_counter() - started

        report("preprocess", 0.0, "preprocessing (normalising, resampling to the model's spacing)")
        started = time.perf_counter()
        image = np.asarray(array, dtype=np.float32)[None]
        properties: dict[str, Any] = {"spacing": [float(s) for s in spacing]}
        with _quiet():
            preprocessor = predictor.configuration_manager.preprocessor_class(verbose=False)
            data, _, properties = preprocessor.run_case_npy(
                image,
                None,
                properties,
                predictor.plans_manager,
                predictor.configuration_manager,
                predictor.dataset_json,
            )
        del image
        timings["preprocess_s"] = time.perf_counter() - started

        n_folds = len(self.folds)
        done = [0]

        def on_patch() -> None:
            done[0] += 1
            total = max(1, predictor.patches_per_pass) * n_folds
            report(
                "predict",
                done[0] / total,
                f"predicting patch {min(done[0], total)}/{total} on {choice.device}",
            )

        predictor.on_patch = on_patch
        report("predict", 0.0, f"predicting on {choice.device} ({n_folds} fold(s))")
        started = time.perf_counter()
        try:
            with _quiet():
                logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data))
        finally:
            predictor.on_patch = None
        del data
        timings["predict_s"] = time.perf_counter() - started

        report("export", 0.0, "resampling the prediction to the input grid")
        started = time.perf_counter()
        from .nnunet.nnunet_predictor import logits_to_input_grid

        labels_model = logits_to_input_grid(
            logits,
            properties,
            predictor.plans_manager,
            predictor.configuration_manager,
            predictor.label_manager,
            resampling=self.export_resampling,
            device=choice.device,
        )
        del logits
        labels_kji = reorientation.restore(labels_model)
        orientation = f"{orientation_code(ct.direction_ras)} -> {self.voxel_orientation or 'as stored'}"
        labels = ct.with_array(
            labels_kji.astype(np.uint8 if self.num_classes <= 256 else np.uint16, copy=False),
            dap_model=self.settings.display_name,
            dap_model_dir=str(self.model_dir),
            dap_folds=list(self.folds),
            dap_device=choice.device,
            dap_voxel_orientation=orientation,
            dap_postprocessed=False,
        )
        timings["export_s"] = time.perf_counter() - started
        report("export", 1.0, "prediction on the input grid")

        if postprocess:
            report("postprocess", 0.0, "anatomical post-processing")
            started = time.perf_counter()
            labels = run_postprocessing(
                labels,
                ct,
                sex,
                progress=lambda fraction, message: report("postprocess", fraction, message),
                force=force,
            )
            timings["postprocess_s"] = time.perf_counter() - started
            report("postprocess", 1.0, "post-processing done")
        else:  # the rib order is checked even without the rules (see check_model_rib_order)
            started = time.perf_counter()
            labels = check_model_rib_order(labels)
            timings["rib_order_s"] = time.perf_counter() - started
        labels.metadata["dap_timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        labels.metadata["dap_input_warnings"] = input_warnings
        self.last_timings_s = timings
        return labels


def check_model_rib_order(labels: Volume) -> Volume:
    """Rib k must attach to vertebra T_k: a model numbering ribs from the other end (rib 1 = most
    inferior, the released script's order) is detected and renumbered (the ``rib_order`` rule
    alone). Its report goes to ``metadata["dap_rib_order_report"]``."""
    from .postprocess import postprocess

    result = postprocess(labels, steps=["rib_order"])
    step = result.report.step("rib_order")
    out = result.labels if step.changed else labels
    out.metadata.update({k: v for k, v in labels.metadata.items() if k.startswith("dap_")})
    out.metadata["dap_rib_order_report"] = step
    return out


def run_postprocessing(
    labels: Volume,
    ct: Volume | None,
    sex: str | None,
    progress: Callable[[float, str], None] | None = None,
    *,
    force: bool = False,
) -> Volume:
    """Apply :func:`DAPAtlasLib.postprocess.postprocess` (the anatomical rules); its report goes
    to ``metadata["dap_postprocess_report"]``. ``force``: the CT was accepted with ``--force``."""
    from .postprocess import STEP_TITLES, postprocess

    def step_progress(name: str, index: int, total: int) -> None:
        if progress is not None:
            progress(index / max(1, total), f"post-processing: {STEP_TITLES.get(name, name)}")

    result = postprocess(labels, ct=ct, sex=sex, progress=step_progress, force=force)
    out = result.labels
    out.metadata.update({k: v for k, v in labels.metadata.items() if k.startswith("dap_")})
    out.metadata["dap_postprocessed"] = True
    out.metadata["dap_postprocess_report"] = result.report
    return out


def segment(
    ct: Volume | str | Path,
    model_dir: str | Path = DEFAULT_MODEL,
    device: str = "auto",
    folds: Sequence[int | str] | None = None,
    checkpoint: str | None = None,
    *,
    postprocess: bool | None = None,
    sex: str | None = None,
    progress: ProgressCallback | None = None,
    use_mirroring: bool = True,
    tile_step_size: float = 0.5,
    voxel_orientation: str | None = "model",
    export_resampling: str = "torch",
    check_memory: bool = True,
    force: bool = False,
) -> Volume:
    """Segment one CT into DAP Atlas labels; the result lies on the CT's exact voxel grid.

    ``ct``: a :class:`Volume` or an image path (NIfTI, NRRD, DICOM folder). ``model_dir``: a
    manifest name (``dap-atlas-v2`` default, ``dap-atlas-v1``), an nnU-Net v2 results folder or a
    v1 trainer folder (converted on first use). ``device``: "auto", "cpu", "cuda", "cuda:N".
    ``postprocess``: apply the anatomical rules (default: on for V1, off for V2 and other models);
    ``sex`` ("M", "F" or None: DICOM PatientSex from the CT's metadata if present) feeds the
    sex-consistency rule. ``progress(fraction, message)`` is called throughout; raise
    :class:`~AnatomyCommonLib.errors.CancelledError` from it to stop.

    Raises ``ImplausibleCTError`` when ``ct`` does not look like a CT in HU (MRI, PET) unless
    ``force``, ``MissingWeightsError`` (with the install command) when the model is not installed,
    ``InsufficientMemoryError`` when the case will not fit, ``CorruptWeightsError`` for damaged or
    mismatched model folders. Timings per phase are in ``result.metadata["dap_timings_s"]``.
    """
    if not isinstance(ct, Volume):
        from AnatomyCommonLib.image_io import read_volume

        ct = read_volume(ct, name="CT")
    segmenter = DAPSegmenter(
        model_dir,
        device=device,
        folds=folds,
        checkpoint=checkpoint,
        use_mirroring=use_mirroring,
        tile_step_size=tile_step_size,
        voxel_orientation=voxel_orientation,
        export_resampling=export_resampling,
        check_memory=check_memory,
        progress=progress,
    )
    return segmenter.segment(ct, postprocess=postprocess, sex=sex, progress=progress, force=force)
