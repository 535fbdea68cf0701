"""Issue 16: ``python -m LIMISLib evaluate-interaction`` on a real Dask LocalCluster of 2 worker
processes, one task per case, writes what the sequential run writes; a volume that cannot be read
is named and the other volumes are evaluated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from AnatomyCommonLib.image_io import write_volume
from LIMISLib.__main__ import main
from LIMISLib.interaction_dataset import interaction_jobs, phantom_sources
from LIMISLib.simulated_user import jittered_box, phantom_cases

pytest.importorskip("distributed")

ARGS = ["--structures", "liver", "kidney left", "--steps", "3", "--slices-per-case", "2", "--seed", "7"]


def test_two_workers_write_what_the_sequential_run_writes(tmp_path, capsys):
    seeds = ["--phantom-seeds", "0", "1"]
    assert main(["evaluate-interaction", *seeds, *ARGS, "--out", str(tmp_path / "seq")]) == 0
    parallel = ["--out", str(tmp_path / "par"), "--workers", "2"]
    assert main(["evaluate-interaction", *seeds, *ARGS, *parallel]) == 0
    assert "dashboard http" in capsys.readouterr().err
    steps = (tmp_path / "seq" / "steps.csv").read_text()
    assert steps.count("\n") == 1 + 2 * 2 * 2 * 4  # phantoms x structures x slices x (steps + 1)
    assert (tmp_path / "par" / "steps.csv").read_text() == steps
    assert json.loads((tmp_path / "par" / "summary.json").read_text()) == json.loads(
        (tmp_path / "seq" / "summary.json").read_text()
    )


def test_each_case_carries_the_generator_state_the_sequential_run_reaches_there():
    jobs, unreadable = interaction_jobs(phantom_sources([0]), ["liver", "kidney left"], 2, seed=3)
    assert not unreadable
    rng = np.random.default_rng(3)  # the sequential run: one stream, a first box per case in order
    expected = []
    for _, _, labels, structure, index in phantom_cases([0], ["liver", "kidney left"], slices_per_case=2):
        expected.append((structure, index, rng.bit_generator.state))
        jittered_box(labels.array[index] == label_id(structure), rng)  # LPS: axial slice = array[k]
    assert [(j.structure, j.slice_index, j.rng_state) for j in jobs.values()] == expected
    assert len(expected) == 4 and len({str(state) for *_, state in expected}) == 4


def test_a_volume_that_cannot_be_read_is_named_and_the_others_are_evaluated(tmp_path, capsys):
    phantom = make_phantom("tiny", seed=0, orientation="LPS", n_lesions=0)
    for folder in ("ct", "labels"):
        (tmp_path / folder).mkdir()
    write_volume(phantom.ct, tmp_path / "ct" / "good.nii.gz")
    write_volume(phantom.labels, tmp_path / "labels" / "good.nii.gz")
    (tmp_path / "ct" / "bad.nii.gz").write_bytes(b"not an image")
    write_volume(phantom.labels, tmp_path / "labels" / "bad.nii.gz")
    dirs = ["--ct-dir", str(tmp_path / "ct"), "--labels-dir", str(tmp_path / "labels")]
    code = main(["evaluate-interaction", *dirs, *ARGS, "--out", str(tmp_path / "out"), "--workers", "2"])
    assert code == 1
    assert "failed bad.nii.gz: " in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["cases"] == 4
    assert {line.split(",")[0] for line in (tmp_path / "out" / "steps.csv").read_text().splitlines()[1:]} == {
        "good.nii.gz"
    }
