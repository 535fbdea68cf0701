"""What the web page works on, without the page: the loaded images and the three tools' results.

Everything here is plain Python over the Libs (no trame, no MRML), so it is tested with pytest and
runs in a worker thread while the server keeps answering. The page (:mod:`anatomy_web.app`) turns
the results into MRML nodes and tables.

Roles of the loaded images (all on the CT's grid):

* ``ct`` - the CT;
* ``labels`` - a whole-body label map in DAP Atlas ids (the reference anatomy; LIMIS's atlas boxes
  come from it until the DAP rules have run);
* ``dap_input`` - the label map the DAP rules post-process (the sample: the phantom labels with the
  model-style errors of :mod:`DAPAtlasLib.simulated_model_errors`; otherwise the label map);
* ``lesions`` - the reference lesion mask (instances or binary) CC-Metrics evaluates against;
* ``prediction`` - a predicted lesion mask.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from AnatomyCommonLib.errors import AnatomyToolkitError, GeometryMismatchError
from AnatomyCommonLib.volume import Volume

from .data_folder import DataFolder, output_path

ROLES = {
    "ct": "CT",
    "labels": "label map (DAP ids)",
    "dap_input": "DAP model output (to post-process)",
    "lesions": "reference lesions",
    "prediction": "predicted lesions",
}
LABEL_ROLES = ("labels", "dap_input", "lesions", "prediction")

#: Files of the generated sample case, by role.
SAMPLE_FILES = {
    "ct": "ct.nii.gz",
    "labels": "labels.nii.gz",
    "dap_input": "dap_model_output_with_errors.nii.gz",
    "lesions": "lesions.nii.gz",
    "prediction": "prediction_perturbed.nii.gz",
}


class NothingLoadedError(AnatomyToolkitError):
    """A tool was started before the images it needs were loaded."""


@dataclass
class LimisStatus:
    """What the LIMIS panel shows after a command."""

    command: str
    reply: str
    ok: bool
    model: str
    box_source: str
    pending: str | None
    history: list[dict[str, Any]]
    slice_index: int
    changed_masks: dict[int, np.ndarray] = field(default_factory=dict)


class Workbench:
    """Loaded images and tool state of one web app (one user at a time; calls are serialised)."""

    def __init__(self, data_dir: str | Path, output_dir: str | Path, *, sample_size: str = "small") -> None:
        self.data = DataFolder(data_dir)
        self.output = Path(output_dir).resolve()
        self.sample_size = sample_size
        self.volumes: dict[str, Volume] = {}
        self.sources: dict[str, str] = {}
        self.sex: str | None = None
        self.dap_result = None  # DAPAtlasLib PostprocessResult
        self.dap_stats: list[dict[str, Any]] = []
        self.cc_comparison = None
        self.cc_regions: tuple[Volume, int] | None = None
        self.limis = None  # LIMISLib.VolumeSession
        self.limis_model = ""
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ loading
    def load_sample(self, *, seed: int = 0, sex: str = "M", n_lesions: int = 12) -> dict[str, Volume]:
        """Generate the bundled phantom case, write it under ``<output>/sample/`` and load it."""
        from AnatomyCommonLib.anatomy.phantom import make_phantom
        from AnatomyCommonLib.anatomy.phantom.sample_case import sample_perturbation_settings
        from AnatomyCommonLib.image_io import write_volume
        from CCMetricsLib.synthetic import perturb_prediction
        from CCMetricsLib.voronoi import label_components
        from DAPAtlasLib.simulated_model_errors import inject_model_errors

        phantom = make_phantom(self.sample_size, seed=seed, sex=sex, orientation="LPS", n_lesions=n_lesions)
        corrupted = inject_model_errors(phantom.labels, sex=phantom.sex)
        lesions = phantom.lesions.with_array((phantom.lesions.array > 0).astype(np.uint8))
        _, n = label_components(lesions.array > 0, 26)
        prediction, _plan = perturb_prediction(
            lesions.array, **sample_perturbation_settings(phantom, n, seed=seed)
        )
        volumes = {
            "ct": phantom.ct,
            "labels": phantom.labels,
            "dap_input": corrupted.labels,
            "lesions": lesions,
            "prediction": lesions.with_array(prediction.astype(np.uint8)),
        }
        for role, name in SAMPLE_FILES.items():
            write_volume(volumes[role], output_path(self.output, f"sample/{name}"), overwrite=True)
        self._reset(volumes, {role: f"sample/{name}" for role, name in SAMPLE_FILES.items()}, phantom.sex)
        return volumes

    def open_file(self, name: str, role: str) -> Volume:
        """Read ``name`` of the data folder as ``role``; a label role on another grid than the CT is refused.

        Opening a CT drops the images of other roles that no longer match its grid.
        """
        if role not in ROLES:
            raise KeyError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
        volume = self.data.read(name, label=role in LABEL_ROLES)
        if role != "ct":
            ct = self.volumes.get("ct")
            if ct is None:
                raise NothingLoadedError(
                    "Open a CT first (or press Load sample): the other images go on its grid."
                )
            if volume.shape != ct.shape or not np.allclose(volume.ijk_to_ras, ct.ijk_to_ras, atol=1e-3):
                raise GeometryMismatchError(
                    f"{name} ({'x'.join(map(str, volume.shape))} voxels) is not on the CT's grid "
                    f"({'x'.join(map(str, ct.shape))}); choose an image of the same case."
                )
            volumes, sources = dict(self.volumes), dict(self.sources)
            volumes[role], sources[role] = volume, name
            self._reset(volumes, sources, self.sex)
        else:
            self._reset({"ct": volume}, {"ct": name}, volume.metadata.get("PatientSex") or None)
        return volume

    def _reset(self, volumes: dict[str, Volume], sources: dict[str, str], sex: str | None) -> None:
        self.volumes, self.sources, self.sex = volumes, sources, sex
        self.dap_result, self.dap_stats = None, []
        self.cc_comparison, self.cc_regions = None, None
        self.limis, self.limis_model = None, ""

    def require(self, role: str) -> Volume:
        volume = self.volumes.get(role)
        if volume is None:
            raise NothingLoadedError(
                f"No {ROLES[role]} is loaded; press Load sample or open one from the data folder."
            )
        return volume

    def structure_centroid_ras(self, structure: str) -> tuple[float, float, float] | None:
        """RAS centroid (mm) of a structure of the label map (where to show it first), None if absent."""
        from AnatomyCommonLib.anatomy.label_schema import label_id
        from DAPAtlasLib.statistics import structure_statistics

        labels = self.volumes.get("labels")
        if labels is None:
            return None
        value = label_id(structure)
        only = labels.with_array(np.where(labels.array == value, value, 0).astype(labels.array.dtype))
        stats = structure_statistics(only)
        if not stats:
            return None
        return tuple(float(v) for v in stats[0].centroid_ras_mm)

    # ------------------------------------------------------------------ LIMIS
    def limis_session(self):
        """The LIMIS session on the CT: neural models when installed, else the weight-free baseline
        (:class:`LIMISLib.IntensityBBox2Mask`) with boxes from the atlas label map."""
        if self.limis is not None:
            return self.limis
        from LIMISLib import VolumeSession
        from LIMISLib.model_weights import PIPELINE_MODELS, missing_summary, weights_manager

        ct = self.require("ct")
        atlas = self.atlas_labels()
        manager = weights_manager()
        if missing_summary(manager, PIPELINE_MODELS):
            from LIMISLib.reference_models import IntensityBBox2Mask

            self.limis = VolumeSession(ct, IntensityBBox2Mask(), labels=atlas)
            source = "atlas box" if atlas is not None else "drawn box"
            self.limis_model = f"weight-free baseline, {source}"
        else:  # pragma: no cover - needs the installed LIMIS weights
            from LIMISLib.model_weights import build_limis_models

            lang2bbox, bbox2mask = build_limis_models(manager, device="cpu")
            self.limis = VolumeSession(ct, bbox2mask, lang2bbox=lang2bbox)
            self.limis_model = f"neural models: {bbox2mask.name}"
        return self.limis

    def atlas_labels(self) -> Volume | None:
        """The map LIMIS takes its boxes from: the DAP post-processed map once the rules ran, else the
        label map."""
        if self.dap_result is not None:
            return self.dap_result.labels
        return self.volumes.get("labels")

    def limis_command(
        self, text: str, slice_index: int | None = None, *, slice_ras: np.ndarray | None = None
    ) -> LimisStatus:
        """Run one typed command on ``slice_index``, or on the axial slice through ``slice_ras``
        (a RAS point of the slice the axial view shows)."""
        from LIMISLib import parse_command

        session = self.limis_session()
        if slice_index is None and slice_ras is not None:
            slice_index = int(session.geometry.slice_index_of_ras(np.asarray(slice_ras, dtype=float)))
        if slice_index is not None and 0 <= slice_index < session.geometry.n_slices:
            session.set_active_slice(int(slice_index))
        command = session.with_default_box(parse_command(text, session.parse_context()))
        reply = session.apply(command)
        return self._limis_status(text, reply.message, reply.ok, session.masks_to_write(reply))

    def limis_set_box(self, box_xyxy, slice_index: int) -> LimisStatus:
        """The box dragged in the view (display pixels) on ``slice_index``: a new step there."""
        session = self.limis_session()
        session.set_active_slice(int(slice_index))
        reply = session.set_box(tuple(float(v) for v in box_xyxy))
        text = "box " + " ".join(f"{v:.0f}" for v in box_xyxy)
        return self._limis_status(text, reply.message, reply.ok, session.masks_to_write(reply))

    def limis_click(self, point_ras, *, positive: bool = True) -> LimisStatus:
        """A point clicked in the axial view (RAS mm): a positive or negative click on its slice."""
        session = self.limis_session()
        pixels, _ = session.geometry.ras_to_pixel(np.asarray(point_ras, dtype=float).reshape(1, 3))
        session.set_active_slice(session.geometry.slice_index_of_ras(np.asarray(point_ras, dtype=float)))
        x, y = (float(v) for v in pixels[0])
        reply = session.click(x, y, positive=positive)
        text = f"{'positive' if positive else 'negative'} click at ({x:.0f}, {y:.0f})"
        return self._limis_status(text, reply.message, reply.ok, session.masks_to_write(reply))

    def limis_revert(self, step_index: int) -> LimisStatus:
        """Go back to a step of the active slice's history (the history item clicked)."""
        return self.limis_command(f"revert to step {int(step_index)}")

    def _limis_status(self, text: str, message: str, ok: bool, masks: dict[int, np.ndarray]) -> LimisStatus:
        session = self.limis
        active = session.active
        return LimisStatus(
            command=text,
            reply=f"{message} ({self.limis_model})",
            ok=ok,
            model=self.limis_model,
            box_source=session.box_source,
            pending=None if active is None else active.pending,
            history=self.limis_history(),
            slice_index=session.active_slice,
            changed_masks=masks,
        )

    def limis_history(self) -> list[dict[str, Any]]:
        """The active slice's steps: index, what was typed, what it did, whether it is shown."""
        session = self.limis
        active = None if session is None else session.active
        if active is None:
            return []
        return [
            {
                "index": step.index,
                "command": step.command.text or step.command.kind,
                "action": step.action,
                "area_px": step.area_px,
                "current": step.index == active.current_index,
            }
            for step in active.steps
        ]

    # ------------------------------------------------------------------ DAP Atlas
    @staticmethod
    def dap_weights_missing() -> str:
        """'' when the DAP Atlas model is installed, else the one-line install hint."""
        from DAPAtlasLib.model_weights import DEFAULT_MODEL, install_hint, weights_manager

        manager = weights_manager()
        return "" if manager.is_installed(DEFAULT_MODEL) else install_hint(DEFAULT_MODEL, manager)

    def dap_inference(self, progress: Callable[[float, str], None] | None = None) -> Volume:
        """Segment the CT with the released DAP Atlas model (one fold on a CPU); the result becomes
        the model output the rules post-process."""
        from DAPAtlasLib.device_selection import cuda_free_bytes
        from DAPAtlasLib.inference import segment
        from DAPAtlasLib.model_weights import DEFAULT_MODEL

        ct = self.require("ct")
        labels = segment(
            ct, DEFAULT_MODEL, folds=None if cuda_free_bytes() else [0], sex=self.sex, progress=progress
        )
        self.volumes["dap_input"], self.sources["dap_input"] = labels, "DAP Atlas model (this session)"
        self.dap_result, self.dap_stats = None, []
        return labels

    def dap_postprocess(self, progress: Callable[[str, int, int], None] | None = None):
        """The DAP Atlas anatomical rules on the DAP input (or the label map); per-structure statistics."""
        from DAPAtlasLib.postprocess import postprocess
        from DAPAtlasLib.statistics import statistics_rows, structure_statistics

        ct = self.require("ct")
        labels = self.volumes.get("dap_input")
        if labels is None:
            labels = self.volumes.get("labels")
        if labels is None:
            raise NothingLoadedError("No label map is loaded; press Load sample or open one as 'label map'.")
        result = postprocess(labels, ct=ct, sex=self.sex, progress=progress)
        stats = statistics_rows(structure_statistics(result.labels, ct))
        self.dap_result, self.dap_stats = result, stats
        self.limis = None  # LIMIS boxes now come from the post-processed map
        return result

    def dap_table_rows(self) -> list[dict[str, Any]]:
        """The statistics rows with ``structure``: the DAP name LIMIS understands ("kidney left")."""
        from AnatomyCommonLib.anatomy.label_schema import label_by_id

        return [{**row, "structure": label_by_id(int(row["label"])).name} for row in self.dap_stats]

    # ------------------------------------------------------------------ CC-Metrics
    def cc_evaluate(self, *, with_regions: bool = True):
        """CC-Metrics of the prediction against the reference lesions; the Voronoi region map too."""
        from CCMetricsLib import compare, voronoi_regions

        reference = self.require("lesions")
        prediction = self.require("prediction")
        ref = reference.with_array((reference.array > 0).astype(np.uint8))
        pred = prediction.with_array((prediction.array > 0).astype(np.uint8))
        tolerance = float(max(reference.spacing_mm))  # one voxel edge, as the main job does
        comparison = compare(ref, {"prediction": pred}, nsd_tolerance=tolerance, distance_worst=50.0)
        self.cc_comparison = comparison
        if with_regions:
            region_map, n = voronoi_regions(ref.array > 0, ref.spacing_kji_mm, 26)
            dtype = np.uint8 if n < 256 else np.uint16
            self.cc_regions = (ref.with_array(region_map.astype(dtype)), int(n))
        return comparison

    def cc_component_rows(self) -> list[dict[str, Any]]:
        from CCMetricsLib.mrml_nodes import component_table_rows

        return [] if self.cc_comparison is None else component_table_rows(self.cc_comparison)

    def cc_summary_rows(self) -> list[dict[str, Any]]:
        return [] if self.cc_comparison is None else self.cc_comparison.summary_rows()
