"""Issue 16: ``python -m DAPAtlasLib postprocess IN_DIR OUT_DIR`` on a real Dask LocalCluster of 2
worker processes writes what the sequential run writes (and what ``postprocess`` in this process
gives), isolates and names a bad case with a non-zero exit code, and ``--resume`` keeps finished
outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from postprocess_cases import phantom

from AnatomyCommonLib.image_io import read_volume, write_volume
from DAPAtlasLib.__main__ import main
from DAPAtlasLib.postprocess import postprocess
from DAPAtlasLib.simulated_model_errors import inject_model_errors

pytest.importorskip("distributed")

ERRORS = {
    "a": ["left_right_swap"],
    "b": ["gonads_in_orbit", "stray_fragment"],
    "c": ["stray_fragment"],
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("dap")
    (root / "labels").mkdir()
    p = phantom("LPS", "F")
    corrupted = {}
    for name, errors in ERRORS.items():
        corrupted[name] = inject_model_errors(p.labels, errors, sex="F").labels
        write_volume(corrupted[name], root / "labels" / f"{name}.nrrd")
    (root / "labels" / "bad.nrrd").write_bytes(b"NRRD0004\nnot really a label map\n")
    return root, corrupted


def without_timings(data):
    if isinstance(data, dict):
        return {k: without_timings(v) for k, v in data.items() if k != "seconds"}
    if isinstance(data, list):
        return [without_timings(v) for v in data]
    return data


def run(root, out, *extra):
    return main(
        ["postprocess", str(root / "labels"), str(out), "--sex", "F", "--report", f"{out}.json", *extra]
    )


def test_two_workers_write_what_the_sequential_run_writes(folders, tmp_path, capsys):
    root, corrupted = folders
    assert run(root, tmp_path / "sequential") == 1
    sequential = capsys.readouterr()
    assert run(root, tmp_path / "parallel", "--workers", "2") == 1
    parallel = capsys.readouterr()
    assert "dashboard http" in parallel.err
    last_line = parallel.err.strip().splitlines()[-1]
    assert last_line == sequential.err.strip().splitlines()[-1]
    assert last_line.startswith("error: 1 of 4 cases failed (bad: ")
    assert parallel.out == sequential.out
    assert sorted(p.name for p in (tmp_path / "parallel").iterdir()) == ["a.nrrd", "b.nrrd", "c.nrrd"]
    for name, labels in corrupted.items():
        expected = postprocess(labels, sex="F").labels  # in this process: the oracle
        for run_name in ("sequential", "parallel"):
            written = read_volume(tmp_path / run_name / f"{name}.nrrd")
            assert written.same_grid_as(labels)
            assert np.array_equal(written.array, expected.array)
    reports = [
        without_timings(json.loads((tmp_path / f"{n}.json").read_text())) for n in ("sequential", "parallel")
    ]
    assert reports[0] == reports[1]  # every rule changed the same voxels; only run times differ
    assert reports[1]["bad"]["status"] == "failed" and reports[1]["bad"]["error"]


def test_resume_on_workers_keeps_finished_outputs(folders, tmp_path, capsys):
    root, corrupted = folders
    out = tmp_path / "out"
    assert run(root, out, "--workers", "2") == 1
    before = {p.name: p.stat() for p in out.iterdir()}
    assert run(root, out, "--workers", "2") == 2  # outputs exist: refused without --resume
    assert "--resume" in capsys.readouterr().err

    fixed = tmp_path / "fixed"
    (fixed / "labels").mkdir(parents=True)
    for path in (root / "labels").iterdir():
        (fixed / "labels" / path.name).write_bytes(path.read_bytes())
    write_volume(corrupted["c"], fixed / "labels" / "bad.nrrd", overwrite=True)
    assert run(fixed, out, "--workers", "2", "--resume") == 0
    assert "3 of 4 cases finished earlier" in capsys.readouterr().err
    for name, stat in before.items():
        after = (out / name).stat()
        assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    expected = postprocess(corrupted["c"], sex="F").labels
    assert np.array_equal(read_volume(out / "bad.nrrd").array, expected.array)
