"""The simulated-user evaluation of a dataset on Dask workers: one task per case (issue 16).

A case is one structure on one axial slice of one volume (:mod:`.simulated_user`). This process
lists the cases in the order of the sequential run and, for each, records the state of the
first-box jitter generator at that case (it advances it by drawing the same box the case will
draw), so a case computed on any worker starts from the box the sequential run gives it: the
results equal :func:`.simulated_user.evaluate_interaction`'s. Only the volume's source (a phantom
seed or two file paths), the structure, the slice and that small state travel to the workers;
a worker reads or builds the volume itself (kept for its next case of the same volume) and
loads the model once.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from AnatomyCommonLib.cluster import ClusterOptions, run_cases

from .simulated_user import CaseResult, jittered_box, labelled_volume_cases, run_case
from .slice_geometry import AxialSliceGeometry

__all__ = [
    "InteractionCase",
    "InteractionJob",
    "VolumeSource",
    "evaluate_interaction_cases",
    "folder_sources",
    "interaction_jobs",
    "phantom_sources",
]


@dataclass(frozen=True)
class VolumeSource:
    """Where a worker gets a volume: a phantom (seed, size) or a CT and its label map (paths)."""

    name: str
    phantom_seed: int | None = None
    phantom_size: str = "tiny"
    ct_path: str | None = None
    labels_path: str | None = None

    def load(self):
        """(CT, label map) of this source; the label map is checked to lie on the CT's grid."""
        if self.phantom_seed is not None:
            from AnatomyCommonLib.anatomy.phantom import make_phantom

            phantom = make_phantom(self.phantom_size, seed=self.phantom_seed, orientation="LPS", n_lesions=0)
            return phantom.ct, phantom.labels
        from AnatomyCommonLib.image_io import read_labelmap, read_volume

        ct, labels = read_volume(self.ct_path), read_labelmap(self.labels_path)
        ct.require_same_grid(labels, ("the CT", "the label map"))
        return ct, labels


def phantom_sources(seeds: Iterable[int], size: str = "tiny") -> list[VolumeSource]:
    """The phantoms of ``seeds``, named as :func:`.simulated_user.phantom_cases` names them."""
    return [VolumeSource(f"phantom{int(seed)}", phantom_seed=int(seed), phantom_size=size) for seed in seeds]


def folder_sources(pairs: Iterable[tuple[Path, Path]]) -> list[VolumeSource]:
    """(CT path, label map path) pairs, named by the CT's file name."""
    return [VolumeSource(Path(ct).name, ct_path=str(ct), labels_path=str(labels)) for ct, labels in pairs]


@dataclass(frozen=True)
class InteractionJob:
    """What one case needs on a worker: small, it travels with the task."""

    source: VolumeSource
    structure: str
    slice_index: int
    rng_state: dict


def interaction_jobs(
    sources: Sequence[VolumeSource], structures: Sequence[str], slices_per_case: int, seed: int = 0
) -> tuple[dict[str, InteractionJob], dict[str, str]]:
    """{case key: job} in the sequential run's order, each with the jitter generator's state at its
    case, and {volume name: reason} of the volumes that could not be read (their cases are left out)."""
    from AnatomyCommonLib.anatomy.label_schema import label_id
    from AnatomyCommonLib.cluster import one_line_reason

    rng = np.random.default_rng(seed)
    jobs: dict[str, InteractionJob] = {}
    unreadable: dict[str, str] = {}
    for source in sources:
        try:
            ct, labels = source.load()
        except Exception as error:  # a bad volume is named; the others are evaluated
            unreadable[source.name] = one_line_reason(error)
            continue
        geometry = AxialSliceGeometry.from_volume(ct)
        for name, _, _, structure, index in labelled_volume_cases(
            source.name, ct, labels, structures, slices_per_case, label_id
        ):
            state = copy.deepcopy(rng.bit_generator.state)
            truth = geometry.extract(labels.array == label_id(structure), index).astype(bool)
            jittered_box(truth, rng)  # the draws run_case makes for this case, in the same order
            jobs[f"{name}/{structure}/slice{index}"] = InteractionJob(source, structure, int(index), state)
        del ct, labels
    return jobs, unreadable


_WORKER_LOCK = threading.Lock()
_WORKER_VOLUME: dict[VolumeSource, Any] = {}  # the last volume this process loaded (one at a time)
_WORKER_MODELS: dict[tuple[str, str], Any] = {}  # models this process loaded, by (kind, device)


def _volume(source: VolumeSource):
    with _WORKER_LOCK:
        if source not in _WORKER_VOLUME:
            _WORKER_VOLUME.clear()  # keep one volume: cases of the same volume mostly follow each other
            _WORKER_VOLUME[source] = source.load()
        return _WORKER_VOLUME[source]


def interaction_model(kind: str, device: str = "cpu"):
    """The BBox2Mask of ``kind`` ("baseline" or "neural"), loaded once per process."""
    with _WORKER_LOCK:
        key = (kind, device)
        if key not in _WORKER_MODELS:
            if kind == "baseline":
                from .reference_models import IntensityBBox2Mask

                _WORKER_MODELS[key] = IntensityBBox2Mask()
            else:
                from .model_weights import build_limis_models

                _WORKER_MODELS[key] = build_limis_models(device=device)[1]
        return _WORKER_MODELS[key]


class InteractionCase:
    """One simulated case on a worker (picklable): returns ``(CaseResult, model name)``."""

    def __init__(self, model: str, device: str, steps: int) -> None:
        self.model, self.device, self.steps = model, device, int(steps)

    def __call__(self, case: str, job: InteractionJob) -> tuple[CaseResult, str]:
        from AnatomyCommonLib.anatomy.label_schema import label_id

        from .volume_session import VolumeSession

        ct, labels = _volume(job.source)
        bbox2mask = interaction_model(self.model, self.device)
        session = VolumeSession(ct, bbox2mask)
        truth = session.geometry.extract(labels.array == label_id(job.structure), job.slice_index)
        rng = np.random.default_rng()
        rng.bit_generator.state = job.rng_state
        result = run_case(
            session, job.structure, job.slice_index, truth, steps=self.steps, rng=rng, case=job.source.name
        )
        return result, bbox2mask.name


def evaluate_interaction_cases(
    jobs: dict[str, InteractionJob], task: InteractionCase, cluster: ClusterOptions | None = None
) -> tuple[list[CaseResult], str | None, dict[str, str]]:
    """Run the cases (on ``cluster``, or here): results in case order, the model's name and
    {case: reason} of the cases that failed."""
    outcomes = run_cases(jobs, task, cluster, desc="cases")
    results, failures, model_name = [], {}, None
    for case, outcome in outcomes.items():
        if outcome.status == "ok":
            result, model_name = outcome.record
            results.append(result)
        else:
            failures[case] = outcome.error
    return results, model_name, failures
