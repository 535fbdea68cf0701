"""Issue 16: ``python -m CCMetricsLib evaluate`` folder mode on a real Dask LocalCluster of 2 worker
processes gives byte-identical tables to the sequential run, isolates and names a bad case, and
``--resume`` leaves finished cases untouched."""

import shutil

import pytest
from test_folder_mode_and_aggregation import case, folder_args, make_folders, read_csv

from AnatomyCommonLib import write_volume
from CCMetricsLib.__main__ import main

pytest.importorskip("distributed")


def out_files(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def with_bad_case(tmp_path):
    make_folders(tmp_path, seeds=(1, 2, 3, 4))
    reference, _ = case(3, shape=(16, 32, 30))  # case3: prediction on another grid
    write_volume(reference, tmp_path / "model" / "case3.nii.gz", overwrite=True)


def test_two_workers_write_what_the_sequential_run_writes(tmp_path, capsys):
    with_bad_case(tmp_path)
    assert main(folder_args(tmp_path)) == 1
    sequential_err = capsys.readouterr().err
    shutil.move(tmp_path / "out", tmp_path / "sequential")

    assert main(folder_args(tmp_path, "--workers", "2")) == 1
    err = capsys.readouterr().err
    assert "dashboard http" in err  # the progress line is off (--no-progress)
    assert err.strip().splitlines()[-1] == sequential_err.strip().splitlines()[-1]
    assert "1 of 4 cases failed (case3: " in err and "(16, 32, 30)" in err
    assert out_files(tmp_path / "out") == out_files(tmp_path / "sequential")
    rows = read_csv(tmp_path / "out" / "dataset.csv")
    assert {r["case"]: r["status"] for r in rows} == {
        "case1": "ok",
        "case2": "ok",
        "case3": "failed",
        "case4": "ok",
    }


def test_resume_on_workers_skips_finished_cases(tmp_path, capsys):
    with_bad_case(tmp_path)
    assert main(folder_args(tmp_path, "--workers", "2")) == 1
    finished = {
        name: (tmp_path / "out" / "cases" / f"{name}.json").stat() for name in ("case1", "case2", "case4")
    }
    _, prediction = case(3)
    write_volume(prediction, tmp_path / "model" / "case3.nii.gz", overwrite=True)
    assert main(folder_args(tmp_path, "--workers", "2", "--resume")) == 0
    for name, before in finished.items():
        after = (tmp_path / "out" / "cases" / f"{name}.json").stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not redone
    assert [r["status"] for r in read_csv(tmp_path / "out" / "dataset.csv")] == ["ok"] * 4
    capsys.readouterr()

    # an uninterrupted sequential run of the repaired folders is the oracle
    shutil.move(tmp_path / "out", tmp_path / "resumed")
    assert main(folder_args(tmp_path)) == 0
    assert out_files(tmp_path / "resumed") == out_files(tmp_path / "out")


def test_workers_and_scheduler_together_are_refused(tmp_path, capsys):
    make_folders(tmp_path, seeds=(1,))
    assert main(folder_args(tmp_path, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")) == 2
    assert "either --workers" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_worker_killed_mid_run_loses_no_case_and_redoes_no_finished_one(tmp_path):
    """The command as a user runs it, in its own process: the worker running case5 dies (the test
    hook of AnatomyCommonLib.cluster, as an OOM kill would) after its worker finished other cases."""
    import os
    import subprocess
    import sys

    from AnatomyCommonLib.cluster import TEST_HOOKS_ENV

    make_folders(tmp_path, seeds=(1, 2, 3, 4, 5, 6))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "die-case5").touch()
    env = {**os.environ, TEST_HOOKS_ENV: str(hooks), "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "CCMetricsLib", *folder_args(tmp_path, "--workers", "2")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (hooks / "die-case5").exists()  # the worker did die
    calls = [line.split() for line in (hooks / "calls.log").read_text().splitlines()]
    runs = {name: [pid for case_name, pid in calls if case_name == name] for name, _ in calls}
    assert sorted(runs) == [f"case{n}" for n in range(1, 7)]
    assert len(runs["case5"]) == 2 and runs["case5"][0] != runs["case5"][1]  # retried on a new worker
    assert {name: len(pids) for name, pids in runs.items() if name != "case5"} == dict.fromkeys(
        ["case1", "case2", "case3", "case4", "case6"], 1
    )  # no finished case ran again, even those finished on the worker that died
    died = runs["case5"][0]
    assert any(pids == [died] for name, pids in runs.items() if name != "case5")
    assert [r["status"] for r in read_csv(tmp_path / "out" / "dataset.csv")] == ["ok"] * 6

    shutil.move(tmp_path / "out", tmp_path / "killed")  # the uninterrupted sequential run is the oracle
    assert main(folder_args(tmp_path)) == 0
    assert out_files(tmp_path / "killed") == out_files(tmp_path / "out")
